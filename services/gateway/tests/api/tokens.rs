//! Access tokens at the gateway: identity's keys fetched with GetSigningKeys
//! (from the in-test identity double), refreshed on an unknown `kid` at a
//! bounded rate, and token attacks refused.

use std::sync::atomic::Ordering;

use ccp_platform::auth::{TokenMinter, jwks_json};
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use tonic::Code;

use crate::helpers::*;

async fn profile(gateway: &TestGateway, token: &str) -> Result<(), tonic::Status> {
    let mut identity = IdentityClient::new(gateway.channel().await);
    identity
        .get_my_profile(gateway.bearer(token, idn::GetMyProfileRequest {}))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn r_id_3_keys_are_fetched_from_identity_and_refreshed_when_they_rotate() {
    let ctx = ServiceContext::in_memory(Clock::settable(t0()));
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let old = TokenMinter::new(ctx.clock.clone()).unwrap();
    *upstream.jwks.lock().unwrap() = old.signer().jwks_json();
    let server = spawn_upstream(upstream.clone()).await;
    let mut s = settings(&server);
    s.key_refresh_interval_ms = 0;
    let gateway = spawn_gateway_with_remote_keys(&ctx, s).await;
    profile(&gateway, &old.person(uuid::Uuid::new_v4()).unwrap())
        .await
        .unwrap();
    // Identity rotates: the new key is published beside the old one.
    let new = TokenMinter::new(ctx.clock.clone()).unwrap();
    let (o, n) = (old.signer(), new.signer());
    *upstream.jwks.lock().unwrap() = jwks_json([
        (o.kid(), o.public_key().as_slice()),
        (n.kid(), n.public_key().as_slice()),
    ]);
    profile(&gateway, &new.person(uuid::Uuid::new_v4()).unwrap())
        .await
        .unwrap();
    profile(&gateway, &old.person(uuid::Uuid::new_v4()).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn r_gw_4_a_withdrawn_signing_key_stops_verifying_within_the_key_max_age() {
    let ctx = ServiceContext::in_memory(Clock::settable(t0()));
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let old = TokenMinter::new(ctx.clock.clone()).unwrap();
    *upstream.jwks.lock().unwrap() = old.signer().jwks_json();
    let server = spawn_upstream(upstream.clone()).await;
    let bound = std::time::Duration::from_millis(400);
    let mut s = settings(&server);
    s.key_max_age_ms = 400;
    let gateway = spawn_gateway_with_remote_keys(&ctx, s).await;
    let token = old.person(uuid::Uuid::new_v4()).unwrap();
    profile(&gateway, &token).await.unwrap();
    profile(&gateway, &token).await.unwrap(); // now a cached token
    // An emergency withdrawal: identity publishes only its successor.
    let successor = TokenMinter::new(ctx.clock.clone()).unwrap();
    *upstream.jwks.lock().unwrap() = successor.signer().jwks_json();
    let withdrawn = std::time::Instant::now();
    loop {
        let began = std::time::Instant::now();
        match profile(&gateway, &token).await {
            Err(err) => {
                assert_eq!(err.code(), Code::Unauthenticated);
                break;
            }
            Ok(_) => assert!(
                began - withdrawn <= bound,
                "a token signed with a withdrawn key verified {:?} after the withdrawal",
                began - withdrawn
            ),
        }
        assert!(
            withdrawn.elapsed() < std::time::Duration::from_secs(5),
            "never refused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    eprintln!("withdrawn key refused after {:?}", withdrawn.elapsed());
    profile(&gateway, &successor.person(uuid::Uuid::new_v4()).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn r_id_3_unknown_kids_refresh_the_keys_at_a_bounded_rate() {
    let ctx = ServiceContext::in_memory(Clock::settable(t0()));
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let minter = TokenMinter::new(ctx.clock.clone()).unwrap();
    *upstream.jwks.lock().unwrap() = minter.signer().jwks_json();
    let server = spawn_upstream(upstream.clone()).await;
    let mut s = settings(&server);
    s.key_refresh_interval_ms = 60_000;
    let gateway = spawn_gateway_with_remote_keys(&ctx, s).await;
    profile(&gateway, &minter.person(uuid::Uuid::new_v4()).unwrap())
        .await
        .unwrap();
    let fetched = upstream.key_calls.load(Ordering::SeqCst);
    assert_eq!(fetched, 1);
    for _ in 0..20 {
        let stranger = TokenMinter::new(ctx.clock.clone()).unwrap();
        let err = profile(&gateway, &stranger.person(uuid::Uuid::new_v4()).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    assert_eq!(
        upstream.key_calls.load(Ordering::SeqCst),
        fetched,
        "no fetch storm"
    );
}

/// Identity's revocations, unreachable until `up` is set.
struct Flaky {
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[tonic::async_trait]
impl ccp_gateway::revocations::RevocationSource for Flaky {
    async fn list(&self, after: i64) -> Result<idn::ListRevocationsResponse, tonic::Status> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("identity is down"));
        }
        Ok(idn::ListRevocationsResponse {
            revocations: vec![],
            cursor: after,
            more: false,
        })
    }
}

#[tokio::test]
async fn r_gw_4_the_gateway_is_not_serving_and_refuses_tokens_until_the_revocations_are_loaded() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let ctx = ServiceContext::in_memory(Clock::settable(t0()));
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let server = spawn_upstream(upstream.clone()).await;
    let minter = TokenMinter::new(ctx.clock.clone()).unwrap();
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = ccp_gateway::Application::build_with_sources(
        &ctx,
        &settings(&server),
        std::sync::Arc::new(ccp_platform::auth::StaticKeySource(
            minter.signer().jwks_json(),
        )),
        std::sync::Arc::new(Flaky { up: up.clone() }),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let status = |h: &mut HealthClient<tonic::transport::Channel>| {
        let mut h = h.clone();
        async move {
            h.check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
        }
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(status(&mut health).await, ServingStatus::NotServing as i32);
    let token = minter.person(uuid::Uuid::new_v4()).unwrap();
    let mut identity = IdentityClient::new(channel);
    let mut call = tonic::Request::new(idn::GetMyProfileRequest {});
    call.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let refused = identity.get_my_profile(call).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    up.store(true, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status(&mut health).await != ServingStatus::Serving as i32 {
        assert!(std::time::Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
}
