//! The facts cache (R-GW-2, R-GW-4, R-GW-5) against the in-memory and the
//! Redis shared level, with the facts services replaced by the in-test double.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ccp_gateway::facts::{FactsError, Trust};
use ccp_platform::auth::Principal;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_platform::revision::Revision;
use ccp_proto::common::v1::EventType;
use ccp_types::Bn9;

use crate::helpers::*;

fn trusted() -> Arc<Trust> {
    let trust = Arc::new(Trust::default());
    trust.set(true);
    trust
}

fn person() -> Principal {
    Principal::Person(uuid::Uuid::new_v4())
}

#[tokio::test]
async fn r_gw_2_concurrent_misses_for_one_key_make_one_lookup() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let upstream = Upstream::with_internal(ctx.internal.clone());
        let p = person();
        upstream.set_roles(&p.to_string(), vec![membership(CLIENT, true, &[], 1)]);
        upstream.delay_ms.store(200, Ordering::SeqCst);
        let server = spawn_upstream(upstream.clone()).await;
        let cache = facts_cache(&ctx, &server, trusted(), Duration::from_secs(60));
        let lookups = (0..32).map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.role_facts(&p, None).await.unwrap() })
        });
        for facts in futures::future::join_all(lookups).await {
            assert!(facts.unwrap().memberships[&Bn9::try_new(CLIENT).unwrap()].business_manager);
        }
        assert_eq!(upstream.role_calls.load(Ordering::SeqCst), 1, "{name}");
        assert!(
            upstream.internal_ok.load(Ordering::SeqCst),
            "{name}: internal token presented"
        );
    }
}

/// The embedded mode's cache is the process's own (no Redis): nothing reads it but this
/// gateway, which keeps its facts in its own level already, so it writes nothing there (a
/// second copy of every fact was most of a 50k-client broker's listing memory).
#[tokio::test]
async fn r_gw_2_a_cache_no_other_replica_reads_holds_no_second_copy() {
    let local = ccp_platform::cache::MemoryCache::process_local(1_000);
    let shared = ccp_platform::cache::MemoryCache::new(1_000);
    for (cache, copies) in [(local, 0), (shared, 1)] {
        let ctx = ServiceContext {
            cache: Arc::new(cache.clone()),
            ..ServiceContext::in_memory(Clock::settable(t0()))
        };
        let upstream = Upstream::with_internal(ctx.internal.clone());
        let p = person();
        upstream.set_roles(&p.to_string(), vec![membership(CLIENT, true, &[], 1)]);
        let server = spawn_upstream(upstream.clone()).await;
        let facts = facts_cache(&ctx, &server, trusted(), Duration::from_secs(60));
        for _ in 0..3 {
            let roles = facts.role_facts(&p, None).await.unwrap();
            assert!(roles.memberships[&Bn9::try_new(CLIENT).unwrap()].business_manager);
        }
        assert_eq!(
            upstream.role_calls.load(Ordering::SeqCst),
            1,
            "cached in process"
        );
        assert_eq!(cache.entry_count(), copies, "shared: {}", copies == 1);
    }
}

#[tokio::test]
async fn r_gw_2_cached_pair_facts_expire_at_the_relationship_expiry_in_both_levels() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let upstream = Upstream::with_internal(ctx.internal.clone());
        let expiry = t0() + chrono::Duration::seconds(30);
        upstream.set_pair(PROVIDER, CLIENT, vec![business_relationship(expiry)]);
        let server = spawn_upstream(upstream.clone()).await;
        // Two replicas sharing the second level; a TTL far beyond the expiry.
        let a = facts_cache(&ctx, &server, trusted(), Duration::from_secs(3600));
        let b = facts_cache(&ctx, &server, trusted(), Duration::from_secs(3600));
        let (provider, client) = (
            Bn9::try_new(PROVIDER).unwrap(),
            Bn9::try_new(CLIENT).unwrap(),
        );
        a.pair_facts(&provider, &client, None).await.unwrap();
        a.pair_facts(&provider, &client, None).await.unwrap();
        b.pair_facts(&provider, &client, None).await.unwrap();
        assert_eq!(
            upstream.pair_calls.load(Ordering::SeqCst),
            1,
            "{name}: shared level serves b"
        );
        ctx.clock.set(expiry - chrono::Duration::milliseconds(1));
        a.pair_facts(&provider, &client, None).await.unwrap();
        assert_eq!(
            upstream.pair_calls.load(Ordering::SeqCst),
            1,
            "{name}: still cached"
        );
        ctx.clock.set(expiry);
        a.pair_facts(&provider, &client, None).await.unwrap();
        b.pair_facts(&provider, &client, None).await.unwrap();
        assert_eq!(
            upstream.pair_calls.load(Ordering::SeqCst),
            2,
            "{name}: both levels expired at the relationship's expiry; one refetch served both"
        );
    }
}

#[tokio::test]
async fn r_gw_2_an_event_evicts_exactly_the_named_facts_on_every_replica() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let upstream = Upstream::with_internal(ctx.internal.clone());
        let (p, q) = (person(), person());
        upstream.set_roles(&p.to_string(), vec![membership(CLIENT, true, &[], 1)]);
        upstream.set_roles(&q.to_string(), vec![membership(CLIENT, true, &[], 1)]);
        let server = spawn_upstream(upstream.clone()).await;
        let replicas: Vec<_> = (0..2)
            .map(|_| {
                let (cache, trust, _consumer) = consuming_replica(&ctx, &server);
                (cache, trust)
            })
            .collect();
        for (_, trust) in &replicas {
            wait_for("the consumer is live", || trust.is_trusted()).await;
        }
        for (cache, _) in &replicas {
            cache.role_facts(&p, None).await.unwrap();
            cache.role_facts(&q, None).await.unwrap();
        }
        let calls = upstream.role_calls.load(Ordering::SeqCst);
        assert!(calls <= 4, "{name}");
        // p loses BAM; the event names p only.
        upstream.set_roles(
            &p.to_string(),
            vec![membership(CLIENT, false, &[("123456782RM0001", 1)], 2)],
        );
        let ev = event(EventType::MemberRolesChanged, &[p.to_string()], &[]);
        ctx.bus
            .publish("ccp.events.accounts", &prost::Message::encode_to_vec(&ev))
            .await
            .unwrap();
        for (cache, _) in &replicas {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let facts = cache.role_facts(&p, None).await.unwrap();
                if !facts.memberships[&Bn9::try_new(CLIENT).unwrap()].business_manager {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name}: eviction not seen"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let after_p = upstream.role_calls.load(Ordering::SeqCst);
        for (cache, _) in &replicas {
            cache.role_facts(&q, None).await.unwrap();
        }
        assert_eq!(
            upstream.role_calls.load(Ordering::SeqCst),
            after_p,
            "{name}: q stays cached"
        );
    }
}

/// A principal's assignment facts are kept per client (bounded however many
/// clients its groups hold), and an event naming the principal evicts all of
/// them on every replica: in process, and in the shared level, where a replica
/// that never cached them (started after the event) does not read the old ones.
#[tokio::test]
async fn r_gw_2_assignment_facts_are_kept_per_client_and_an_event_naming_the_principal_evicts_them_all()
 {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let upstream = Upstream::with_internal(ctx.internal.clone());
        let (p, q) = (person(), person());
        let reader = ccp_proto::common::v1::Role::Reader as i32;
        let editor = ccp_proto::common::v1::Role::Editor as i32;
        // A third client, read before the event and by no replica after it.
        const THIRD: &str = "888316171";
        upstream.set_assignments(
            &p.to_string(),
            vec![
                (PROVIDER, CLIENT, reader),
                (PROVIDER, OTHER, reader),
                (PROVIDER, THIRD, reader),
            ],
        );
        upstream.set_assignments(&q.to_string(), vec![(PROVIDER, CLIENT, reader)]);
        let server = spawn_upstream(upstream.clone()).await;
        let replicas = [
            consuming_replica(&ctx, &server),
            consuming_replica(&ctx, &server),
        ];
        for (_, trust, _) in &replicas {
            wait_for("the consumer is live", || trust.is_trusted()).await;
        }
        let (provider, client, other, third) = (
            Bn9::try_new(PROVIDER).unwrap(),
            Bn9::try_new(CLIENT).unwrap(),
            Bn9::try_new(OTHER).unwrap(),
            Bn9::try_new(THIRD).unwrap(),
        );
        let role = |facts: &ccp_gateway::decide::AssignmentFacts, c: &Bn9| {
            facts.role(&provider, c).map(|r| match r {
                ccp_gateway::decide::Role::Reader => reader,
                ccp_gateway::decide::Role::Editor => editor,
                other => panic!("an assignment of {other:?}"),
            })
        };
        for (cache, _, _) in &replicas {
            for c in [&client, &other, &third] {
                let facts = cache.assignment_facts(&p, c, None).await.unwrap();
                assert_eq!(role(&facts, c), Some(reader), "{name}");
                assert_eq!(facts.assignments.len(), 1, "{name}: only {c}");
            }
            cache.assignment_facts(&q, &client, None).await.unwrap();
        }
        assert_eq!(
            upstream.assignment_calls.load(Ordering::SeqCst),
            4,
            "{name}: one read per (principal, client); the second replica's from the shared level"
        );
        // p loses CLIENT and becomes Editor of OTHER; the event names p only.
        upstream.set_assignments(&p.to_string(), vec![(PROVIDER, OTHER, editor)]);
        let ev = event(EventType::AssignmentChanged, &[p.to_string()], &[]);
        ctx.bus
            .publish("ccp.events.delegation", &prost::Message::encode_to_vec(&ev))
            .await
            .unwrap();
        for (cache, _, _) in &replicas {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let facts = cache.assignment_facts(&p, &client, None).await.unwrap();
                if role(&facts, &client).is_none() {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name}: eviction not seen"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let facts = cache.assignment_facts(&p, &other, None).await.unwrap();
            assert_eq!(
                role(&facts, &other),
                Some(editor),
                "{name}: every client of p"
            );
        }
        // A replica started after the event, trusted at once, reads p's new facts,
        // also of the client no replica read since: the old ones stay in the shared
        // level only under a generation that is gone.
        let late = facts_cache(&ctx, &server, trusted(), Duration::from_secs(3600));
        let facts = late.assignment_facts(&p, &third, None).await.unwrap();
        assert_eq!(role(&facts, &third), None, "{name}: late replica");
        let before = upstream.assignment_calls.load(Ordering::SeqCst);
        let facts = late.assignment_facts(&p, &other, None).await.unwrap();
        assert_eq!(role(&facts, &other), Some(editor), "{name}: late replica");
        // q was not named: still cached, in process and in the shared level.
        for (cache, _, _) in &replicas {
            cache.assignment_facts(&q, &client, None).await.unwrap();
        }
        late.assignment_facts(&q, &client, None).await.unwrap();
        assert_eq!(
            upstream.assignment_calls.load(Ordering::SeqCst),
            before,
            "{name}: the late replica's reads came from the shared level"
        );
        for (_, _, consumer) in replicas {
            consumer.abort();
        }
    }
}

#[tokio::test]
async fn r_gw_4_a_revision_newer_than_the_cached_facts_is_read_again() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let upstream = Upstream::with_internal(ctx.internal.clone());
        let p = person();
        upstream.set_roles(
            &p.to_string(),
            vec![membership(CLIENT, false, &[("123456782RM0001", 1)], 5)],
        );
        let server = spawn_upstream(upstream.clone()).await;
        let cache = facts_cache(&ctx, &server, trusted(), Duration::from_secs(3600));
        cache.role_facts(&p, None).await.unwrap();
        let old = Revision::new("accounts", CLIENT, 5);
        cache.role_facts(&p, Some(&old)).await.unwrap();
        assert_eq!(
            upstream.role_calls.load(Ordering::SeqCst),
            1,
            "{name}: revision 5 is proven"
        );
        upstream.set_roles(
            &p.to_string(),
            vec![membership(CLIENT, false, &[("123456782RM0001", 2)], 6)],
        );
        let new = Revision::new("accounts", CLIENT, 6);
        let facts = cache.role_facts(&p, Some(&new)).await.unwrap();
        assert_eq!(
            facts.memberships[&Bn9::try_new(CLIENT).unwrap()].revision,
            6,
            "{name}"
        );
        assert_eq!(upstream.role_calls.load(Ordering::SeqCst), 2, "{name}");
        // Now cached at revision 6, for calls with and without the token.
        cache.role_facts(&p, Some(&new)).await.unwrap();
        let facts = cache.role_facts(&p, None).await.unwrap();
        assert_eq!(
            facts.memberships[&Bn9::try_new(CLIENT).unwrap()].revision,
            6,
            "{name}"
        );
        assert_eq!(upstream.role_calls.load(Ordering::SeqCst), 2, "{name}");
    }
}

#[tokio::test]
async fn r_gw_5_facts_unavailable_and_not_cached_fail_closed() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let upstream = Upstream::with_internal(ctx.internal.clone());
        let (p, q) = (person(), person());
        upstream.set_roles(&p.to_string(), vec![membership(CLIENT, true, &[], 1)]);
        let mut server = spawn_upstream(upstream.clone()).await;
        let cache = facts_cache(&ctx, &server, trusted(), Duration::from_secs(3600));
        cache.role_facts(&p, None).await.unwrap();
        server.stop().await;
        assert!(
            cache.role_facts(&p, None).await.is_ok(),
            "{name}: cached facts still answer"
        );
        assert!(
            matches!(
                cache.role_facts(&q, None).await,
                Err(FactsError::Unavailable(_))
            ),
            "{name}: uncached facts fail closed"
        );
        // Untrusted (the bus is broken): not even the cached facts are used.
        cache.trust().set(false);
        assert!(
            matches!(
                cache.role_facts(&p, None).await,
                Err(FactsError::Unavailable(_))
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn r_gw_2_cached_facts_are_not_trusted_while_the_bus_is_broken() {
    if ccp_platform::testing::redis_url().is_none() {
        eprintln!("skipped: CCP_TEST_REDIS_URL not set");
        return;
    }
    // A private Redis that this test stops and restarts (never the shared one).
    let mut redis = ccp_platform::testing::redis_server_on_spare_port().await;
    let mut ctx = ServiceContext::in_memory(Clock::settable(t0()));
    let prefix = ccp_platform::testing::unique_prefix();
    ctx.cache = Arc::new(
        ccp_platform::cache::RedisCache::connect(redis.url(), prefix.clone())
            .await
            .unwrap(),
    );
    ctx.bus = Arc::new(
        ccp_platform::bus::RedisBus::connect(redis.url(), prefix)
            .await
            .unwrap(),
    );
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let p = person();
    upstream.set_roles(&p.to_string(), vec![membership(CLIENT, true, &[], 1)]);
    let server = spawn_upstream(upstream.clone()).await;
    let (cache, trust, consumer) = consuming_replica(&ctx, &server);
    wait_for("the consumer is live", || trust.is_trusted()).await;
    cache.role_facts(&p, None).await.unwrap();
    cache.role_facts(&p, None).await.unwrap();
    assert_eq!(upstream.role_calls.load(Ordering::SeqCst), 1);

    redis.stop().await;
    wait_for("the consumer notices the outage", || !trust.is_trusted()).await;
    // A revoked grant while the bus is down: the change is read through, never served stale.
    upstream.set_roles(&p.to_string(), vec![]);
    let facts = cache.role_facts(&p, None).await.unwrap();
    assert!(facts.memberships.is_empty(), "read through while untrusted");
    assert_eq!(upstream.role_calls.load(Ordering::SeqCst), 2);
    cache.role_facts(&p, None).await.unwrap();
    assert_eq!(
        upstream.role_calls.load(Ordering::SeqCst),
        3,
        "nothing kept while untrusted"
    );

    redis.start().await;
    wait_for("the consumer catches up again", || trust.is_trusted()).await;
    cache.role_facts(&p, None).await.unwrap();
    let calls = upstream.role_calls.load(Ordering::SeqCst);
    cache.role_facts(&p, None).await.unwrap();
    assert_eq!(
        upstream.role_calls.load(Ordering::SeqCst),
        calls,
        "caching resumes"
    );
    consumer.abort();
}

/// Revocations from the bus only (the double has no identity facts API).
pub fn revocations(
    tokens: ccp_gateway::tokens::Authenticator,
) -> ccp_gateway::revocations::Revocations {
    ccp_gateway::revocations::Revocations::new(
        Arc::new(ccp_gateway::revocations::NoRevocations),
        tokens,
        ccp_gateway::revocations::RevocationTiming::default(),
    )
}

/// A gateway replica's facts cache with its own event consumer (the trust
/// it grants, and the consumer's task): not trusted until the consumer is live.
fn consuming_replica(
    ctx: &ServiceContext,
    upstream: &UpstreamServer,
) -> (
    ccp_gateway::facts::FactsCache,
    Arc<Trust>,
    tokio::task::JoinHandle<()>,
) {
    let trust = Arc::new(Trust::default());
    let cache = facts_cache(ctx, upstream, trust.clone(), Duration::from_secs(3600));
    let tokens = authenticator(ctx);
    let consumer = tokio::spawn(ccp_gateway::events::run(
        ctx.bus.clone(),
        cache.clone(),
        tokens.clone(),
        revocations(tokens),
    ));
    (cache, trust, consumer)
}

pub fn authenticator(ctx: &ServiceContext) -> ccp_gateway::tokens::Authenticator {
    ccp_gateway::tokens::Authenticator::new(
        Arc::new(ccp_platform::auth::AccessTokenVerifier::new(
            ctx.clock.clone(),
        )),
        ctx.clock.clone(),
        100,
    )
}

#[tokio::test]
async fn r_gw_2_a_slow_replica_cannot_bring_an_evicted_fact_back_through_the_shared_level() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let upstream = Upstream::with_internal(ctx.internal.clone());
        let p = person();
        upstream.set_roles(&p.to_string(), vec![membership(CLIENT, true, &[], 1)]);
        let server = spawn_upstream(upstream.clone()).await;
        let a = facts_cache(&ctx, &server, trusted(), Duration::from_secs(3600));
        let b = facts_cache(&ctx, &server, trusted(), Duration::from_secs(3600));
        // b starts a fetch that reads the old facts and answers late.
        upstream.delay_ms.store(300, Ordering::SeqCst);
        let slow = {
            let b = b.clone();
            tokio::spawn(async move { b.role_facts(&p, None).await.unwrap() })
        };
        wait_for("b's fetch has read", || {
            upstream.role_calls.load(Ordering::SeqCst) == 1
        })
        .await;
        upstream.delay_ms.store(0, Ordering::SeqCst);
        // The grant is revoked; a has seen the event (b has not yet).
        upstream.set_roles(&p.to_string(), vec![]);
        a.evict(&[ccp_gateway::facts::FactsKey::Role(p)]).await;
        // b's late answer lands in the shared level after a's eviction.
        slow.await.unwrap();
        let facts = a.role_facts(&p, None).await.unwrap();
        assert!(
            facts.memberships.is_empty(),
            "{name}: a refuses the shared value b fetched before the change"
        );
    }
}

#[tokio::test]
async fn r_gw_5_the_decision_api_fails_closed_when_facts_cannot_be_had() {
    let ctx = ServiceContext::in_memory(Clock::settable(t0()));
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let mut server = spawn_upstream(upstream).await;
    let minter = ccp_platform::auth::TokenMinter::new(ctx.clock.clone()).unwrap();
    let gateway = spawn_gateway(&ctx, settings(&server), &minter).await;
    server.stop().await;
    let mut api = gateway.authorization().await;
    let err = api
        .check(gateway.internal(ccp_proto::gateway::v1::CheckRequest {
            principal: person().to_string(),
            item: Some(ccp_proto::gateway::v1::CheckItem {
                action: 1,
                resource: CLIENT.into(),
                submitted_by: String::new(),
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let token = minter.person(uuid::Uuid::new_v4()).unwrap();
    let mut accounts =
        ccp_proto::accounts::v1::accounts_client::AccountsClient::new(gateway.channel().await);
    let err = accounts
        .get_business(gateway.bearer(
            &token,
            ccp_proto::accounts::v1::GetBusinessRequest {
                name: format!("businesses/{CLIENT}"),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
}
