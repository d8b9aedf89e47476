//! Access tokens at the gateway: identity's keys fetched with GetSigningKeys
//! (from the in-test identity double), refreshed on an unknown `kid` at a
//! bounded rate, and token attacks refused.

use std::sync::atomic::Ordering;

use base64::Engine as _;
use ccp_platform::auth::{AccessTokenSigner, Principal, TokenMinter, jwks_json};
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

#[tokio::test]
async fn token_attacks_fail_at_the_gateway() {
    let ctx = ServiceContext::in_memory(Clock::settable(t0()));
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let server = spawn_upstream(upstream).await;
    let minter = TokenMinter::new(ctx.clock.clone()).unwrap();
    let gateway = spawn_gateway(&ctx, settings(&server), &minter).await;
    let who = Principal::Person(uuid::Uuid::new_v4());
    let good = minter.claims(who);
    profile(&gateway, &minter.sign(&good).unwrap())
        .await
        .unwrap();

    let mut attacks = Vec::new();
    // Expired, not yet valid, wrong audience, wrong issuer.
    let mut c = good.clone();
    c.exp = ctx.clock.now().timestamp() - 1;
    attacks.push(("expired", minter.sign(&c).unwrap()));
    let mut c = good.clone();
    c.nbf = ctx.clock.now().timestamp() + 60;
    attacks.push(("not yet valid", minter.sign(&c).unwrap()));
    let mut c = good.clone();
    c.aud = "someone-else".into();
    attacks.push(("audience", minter.sign(&c).unwrap()));
    let mut c = good.clone();
    c.iss = "evil".into();
    attacks.push(("issuer", minter.sign(&c).unwrap()));
    // Another key claiming the published kid.
    let forger = AccessTokenSigner::from_seed(minter.signer().kid(), &[9; 32]).unwrap();
    attacks.push(("forged key", forger.sign(&good).unwrap()));
    // alg none, and a payload swapped under a valid signature.
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let header = serde_json::json!({"alg": "none", "kid": minter.signer().kid(), "typ": "JWT"});
    let payload = serde_json::to_value(&good).unwrap();
    attacks.push(("alg none", format!("{}.{}.", b64(&header), b64(&payload))));
    let valid = minter.sign(&good).unwrap();
    let parts: Vec<&str> = valid.split('.').collect();
    let mut other = good.clone();
    other.sub = format!("person:{}", uuid::Uuid::new_v4());
    other.pid = Some(other.sub.trim_start_matches("person:").to_owned());
    attacks.push((
        "swapped payload",
        format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_value(&other).unwrap()),
            parts[2]
        ),
    ));
    // A person token claiming a credential's business.
    let mut c = good.clone();
    c.bn = Some(CLIENT.into());
    attacks.push(("person with bn", minter.sign(&c).unwrap()));
    for (what, token) in attacks {
        let err = profile(&gateway, &token).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{what}");
    }
}
