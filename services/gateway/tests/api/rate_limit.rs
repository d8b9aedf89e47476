//! The per-principal rate limit across gateway replicas: two gateways on one
//! Redis (a server, or a 3-master Redis Cluster) share each principal's
//! budget (the configured limit in total, not twice), and with Redis
//! unreachable, or lost mid-way, each gateway limits on its own and still
//! refuses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ccp_platform::auth::TokenMinter;
use ccp_platform::cache::RedisCache;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_platform::testing::{
    redis_cluster_on_spare_ports, redis_server_on_spare_port, redis_url, unique_prefix,
};
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use tonic::Code;

use crate::helpers::*;

const PER_SECOND: u32 = 5;
const BURST: u32 = 10;
/// Calls made by one principal, alternating between the gateways.
const CALLS: usize = 40;

/// Two gateways on `ctx` in front of one double, limiting each principal to
/// [`PER_SECOND`] with a burst of [`BURST`].
struct Pair {
    _server: UpstreamServer,
    gateways: [TestGateway; 2],
    minter: TokenMinter,
}

async fn pair(ctx: &ServiceContext) -> Pair {
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let server = spawn_upstream(upstream).await;
    let minter = TokenMinter::new(ctx.clock.clone()).unwrap();
    let mut s = settings(&server);
    s.rate_limit_per_second = PER_SECOND;
    s.rate_limit_burst = BURST;
    // The longest wait allowed: on a loaded machine (every test binary at once) Redis may take
    // more than the default 20 ms to answer, and each gateway would then count alone; these tests
    // are about one budget shared, and about a Redis that refuses connections, not a slow one.
    s.rate_limit_shared_timeout_ms = 1_000;
    let a = spawn_gateway(ctx, s.clone(), &minter).await;
    let b = spawn_gateway(ctx, s, &minter).await;
    Pair {
        _server: server,
        gateways: [a, b],
        minter,
    }
}

/// What [`Pair::alternate`] saw: calls allowed and refused by each gateway,
/// and how long the calls took.
#[derive(Debug)]
struct Tally {
    allowed: [u32; 2],
    refused: [u32; 2],
    elapsed: Duration,
}

impl Tally {
    fn allowed(&self) -> u32 {
        self.allowed[0] + self.allowed[1]
    }

    /// The most one budget may allow over the calls: the burst, plus the
    /// sustained rate over the time they took, plus one call of slack for
    /// the instants at the edges.
    fn budget(&self) -> u32 {
        let refilled = (f64::from(PER_SECOND) * self.elapsed.as_secs_f64()).ceil();
        BURST + refilled as u32 + 1
    }
}

impl Pair {
    /// A fresh principal makes [`CALLS`] calls, alternating between the two
    /// gateways, as fast as they answer (bounded: 60 s).
    async fn alternate(&self) -> Tally {
        let token = self.minter.person(uuid::Uuid::new_v4()).unwrap();
        let mut clients = [
            IdentityClient::new(self.gateways[0].channel().await),
            IdentityClient::new(self.gateways[1].channel().await),
        ];
        let mut tally = Tally {
            allowed: [0; 2],
            refused: [0; 2],
            elapsed: Duration::ZERO,
        };
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(60), async {
            for i in 0..CALLS {
                let g = i % 2;
                let r = clients[g]
                    .get_my_profile(self.gateways[g].bearer(&token, idn::GetMyProfileRequest {}))
                    .await;
                match r {
                    Ok(_) => tally.allowed[g] += 1,
                    Err(e) if e.code() == Code::ResourceExhausted => tally.refused[g] += 1,
                    Err(e) => panic!("call {i} to gateway {g}: {e:?}"),
                }
            }
        })
        .await
        .expect("the calls end within 60 s");
        tally.elapsed = started.elapsed();
        tally
    }
}

/// Asserts that each gateway limited the principal on its own: each allowed
/// at least its burst and at most one budget, and refused some.
fn assert_limited_locally(tally: &Tally) {
    for g in 0..2 {
        assert!(
            tally.allowed[g] >= BURST && tally.allowed[g] <= tally.budget(),
            "gateway {g} alone: {tally:?}"
        );
        assert!(tally.refused[g] > 0, "gateway {g} refused none: {tally:?}");
    }
}

/// Asserts that the two gateways counted the principal in one budget.
fn assert_shared(tally: &Tally) {
    assert!(
        tally.allowed() >= BURST && tally.allowed() <= tally.budget(),
        "one budget for both gateways: {tally:?} (budget {})",
        tally.budget()
    );
    assert!(
        tally.refused[0] > 0 && tally.refused[1] > 0,
        "both gateways refused some: {tally:?}"
    );
}

fn context_on(cache: RedisCache) -> ServiceContext {
    let mut ctx = ServiceContext::in_memory(Clock::settable(t0()));
    ctx.cache = Arc::new(cache);
    ctx
}

#[tokio::test]
async fn r_gw_5_two_gateways_on_one_redis_allow_a_principal_the_configured_limit_in_total() {
    let Some(url) = redis_url() else {
        eprintln!("skipped: CCP_TEST_REDIS_URL not set");
        return;
    };
    one_budget_for_both_gateways(RedisCache::connect(url, unique_prefix()).await.unwrap()).await;
}

#[tokio::test]
async fn r_gw_5_two_gateways_on_one_redis_cluster_allow_a_principal_the_configured_limit_in_total()
{
    // A private cluster, but gated like the other Redis tests.
    if redis_url().is_none() {
        eprintln!("skipped: CCP_TEST_REDIS_URL not set");
        return;
    }
    let cluster = redis_cluster_on_spare_ports().await;
    let cache = RedisCache::connect(cluster.target(), unique_prefix())
        .await
        .unwrap();
    one_budget_for_both_gateways(cache).await;
}

/// Two gateways on `cache` allow each of two principals one budget in total.
async fn one_budget_for_both_gateways(cache: RedisCache) {
    let ctx = context_on(cache);
    let pair = pair(&ctx).await;
    let tally = pair.alternate().await;
    eprintln!("shared: {tally:?}, budget {}", tally.budget());
    assert_shared(&tally);
    // Another principal has a budget of its own.
    assert_shared(&pair.alternate().await);
}

#[tokio::test]
async fn r_gw_5_with_redis_unreachable_each_gateway_still_limits_on_its_own() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache =
        RedisCache::connect_lazy(format!("redis://127.0.0.1:{port}"), unique_prefix()).unwrap();
    let pair = pair(&context_on(cache)).await;
    let tally = pair.alternate().await;
    eprintln!("unreachable: {tally:?}, budget {}", tally.budget());
    assert_limited_locally(&tally);
}

#[tokio::test]
async fn r_gw_5_when_redis_is_lost_the_gateways_fall_back_to_their_own_limits() {
    let mut redis = redis_server_on_spare_port().await;
    let ctx = context_on(
        RedisCache::connect(redis.url(), unique_prefix())
            .await
            .unwrap(),
    );
    let pair = pair(&ctx).await;
    assert_shared(&pair.alternate().await);
    redis.stop().await;
    let tally = pair.alternate().await;
    eprintln!("after the loss: {tally:?}, budget {}", tally.budget());
    assert_limited_locally(&tally);
}
