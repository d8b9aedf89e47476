//! Every service scales out safely: 3 replicas each of accounts and
//! delegation (one PostgreSQL database per service) and 2 gateways on one
//! Redis, identity alone. Each accounts and delegation replica runs in a Tokio
//! runtime of its own, so killing it drops its listener, its connections and
//! its background tasks (outbox relay, sweeps, consumer) as a killed process
//! would.
//!
//! - Every replica of each service receives at least 20% of its service's calls.
//! - After one replica of each is killed mid-load, every call started 1 s or
//!   more after the kill succeeds, and the failures are at most the calls in
//!   flight at the kill, all UNAVAILABLE.
//! - Every outbox event takes effect once in each consumer (delegation applies
//!   accounts' BusinessRegistered once: one RelationshipRequestVisible), and
//!   duplicate publications (one event id published twice) are counted and
//!   reported; every due reminder is emitted once with 3 delegation replicas
//!   sweeping.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ccp_gateway::GatewaySettings;
use ccp_identity::config::IdentitySettings;
use ccp_identity::oidc::DevIssuer;
use ccp_identity::secrets::KeyEncryptionKey;
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, InternalTokens};
use ccp_platform::balance::{DnsResolver, UpstreamSettings};
use ccp_platform::bus::{Delivery, RedisBus, StartFrom};
use ccp_platform::cache::RedisCache;
use ccp_platform::clock::Clock;
use ccp_platform::config::Environment;
use ccp_platform::context::ServiceContext;
use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::common::v1::{DomainEvent, EventType};
use ccp_proto::delegation::v1 as del;
use ccp_proto::identity::v1 as idn;
use futures::StreamExt as _;
use prost::Message as _;
use secrecy::SecretString;
use tokio::sync::oneshot;
use tonic::Code;

use crate::harness::{DEV_SEED, Replica, http, listen, registry, start_gateway, t0};
use crate::world::{ABC, ITN, MAPLE, NORTHERN, PACIFIQUE, Who, register, relate, req, rid};

/// What every process of the test shares: the Redis prefix, the internal
/// key and the (settable) clock.
#[derive(Clone)]
struct Shared {
    redis: String,
    prefix: String,
    key: Vec<u8>,
    clock: Clock,
}

impl Shared {
    /// Returns a runtime of the process's own on the shared Redis.
    async fn context(&self) -> ServiceContext {
        ServiceContext {
            environment: Environment::Test,
            internal: Arc::new(InternalTokens::new(
                &self.key,
                Duration::from_secs(300),
                self.clock.clone(),
            )),
            clock: self.clock.clone(),
            bus: Arc::new(
                RedisBus::connect(&self.redis, self.prefix.clone())
                    .await
                    .unwrap(),
            ),
            cache: Arc::new(
                RedisCache::connect(&self.redis, self.prefix.clone())
                    .await
                    .unwrap(),
            ),
            upstream: UpstreamSettings {
                connections: 2,
                resolve_interval_ms: 1_000,
                probe_interval_ms: 50,
                ..UpstreamSettings::default()
            },
            resolver: Arc::new(DnsResolver),
        }
    }
}

/// A replica in a runtime of its own, with the count of calls it served.
struct Process {
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Process {
    /// Kills the replica: its runtime's tasks are dropped at once.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts a replica in a runtime of its own: `start` builds it on the shared
/// context and answers its address, its served-calls count and its run.
async fn start_replica<F, Fut>(shared: &Shared, start: F) -> Process
where
    F: FnOnce(ccp_platform::context::ServiceContext) -> Fut + Send + 'static,
    Fut: std::future::Future<
            Output = (
                SocketAddr,
                Arc<AtomicU64>,
                futures::future::BoxFuture<'static, ()>,
            ),
        > + Send,
{
    let runtime = runtime();
    let (tx, rx) = oneshot::channel();
    let shared = shared.clone();
    runtime.spawn(async move {
        let (addr, served, run) = start(shared.context().await).await;
        let _ = tx.send((addr, served));
        run.await;
    });
    let (addr, served) = tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .unwrap()
        .unwrap();
    Process {
        addr,
        served,
        runtime: Some(runtime),
    }
}

async fn start_accounts(
    shared: &Shared,
    settings: ccp_accounts::config::AccountsSettings,
) -> Process {
    start_replica(shared, move |ctx| async move {
        let app = ccp_accounts::Application::build(&ctx, &settings)
            .await
            .expect("accounts builds");
        let (addr, served) = (app.local_addr(), app.served_calls());
        let run: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
            let _ = app.run_until_stopped(futures::future::pending()).await;
        });
        (addr, served, run)
    })
    .await
}

async fn start_delegation(
    shared: &Shared,
    settings: ccp_delegation::config::DelegationSettings,
) -> Process {
    start_replica(shared, move |ctx| async move {
        let app = ccp_delegation::Application::build(&ctx, &settings)
            .await
            .expect("delegation builds");
        let (addr, served) = (app.local_addr(), app.served_calls());
        let run: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
            let _ = app.run_until_stopped(futures::future::pending()).await;
        });
        (addr, served, run)
    })
    .await
}

fn list(processes: &[Process]) -> String {
    processes
        .iter()
        .map(|p| http(p.addr))
        .collect::<Vec<_>>()
        .join(",")
}

/// Signs `subject` in with the development issuer through `gw`.
async fn sign_in(dev: &DevIssuer, clock: &Clock, gw: &Replica, subject: &str) -> Who {
    let id_token = dev
        .mint(subject, clock.now(), Duration::from_secs(300))
        .unwrap();
    let session = gw
        .identity()
        .sign_in(tonic::Request::new(idn::SignInRequest { id_token }))
        .await
        .unwrap()
        .into_inner();
    Who {
        token: Some(session.access_token.clone()),
        principal: session.principal.clone(),
        session: Some(session),
    }
}

/// A person with a profile, signed in as `subject`.
async fn person(dev: &DevIssuer, clock: &Clock, gw: &Replica, subject: &str) -> Who {
    let first = sign_in(dev, clock, gw, subject).await;
    let created = gw
        .identity()
        .create_profile(req(
            &first,
            idn::CreateProfileRequest {
                request_id: rid(),
                profile: Some(idn::Profile {
                    legal_name: subject.to_owned(),
                    email: format!("{subject}@example.ca"),
                    preferred_language: idn::Language::En as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let session = created.session.unwrap();
    Who {
        token: Some(session.access_token.clone()),
        principal: session.principal.clone(),
        session: Some(session),
    }
}

/// The events of `stream` still held, in order (read until caught up, bounded).
async fn events(ctx: &ServiceContext, stream: &str) -> Vec<DomainEvent> {
    let mut sub = ctx
        .bus
        .subscribe(stream, StartFrom::Beginning)
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(item) = sub.next().await {
            match item.unwrap() {
                Delivery::Event(d) => out.push(DomainEvent::decode(d.payload.as_slice()).unwrap()),
                Delivery::CaughtUp => break,
            }
        }
    })
    .await
    .expect("the stream is read in time");
    out
}

/// Returns how many publications repeated an event id already published.
fn duplicates(events: &[DomainEvent]) -> usize {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in events {
        *seen.entry(e.id.as_str()).or_default() += 1;
    }
    seen.values().map(|n| n - 1).sum()
}

/// The distinct events (by id) of `kind`.
fn distinct(events: &[DomainEvent], kind: EventType) -> Vec<&DomainEvent> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter(|e| e.r#type == kind as i32 && seen.insert(e.id.clone()))
        .collect()
}

/// One call of a load: when it started and how it ended.
struct Outcome {
    started: Instant,
    code: Code,
}

/// Most calls one load makes (a bound on its loop).
const MAX_CALLS: usize = 20_000;

/// The calls of a load: accounts and delegation reads in turn, through the
/// two gateways in turn, 16 in flight.
struct Load<'a> {
    gateways: &'a [Replica],
    who: &'a Who,
    /// Calls made at least.
    calls: usize,
}

impl Load<'_> {
    async fn call(&self, i: usize) -> Outcome {
        let gw = &self.gateways[i % self.gateways.len()];
        let started = Instant::now();
        let answer = if (i / 2).is_multiple_of(2) {
            gw.accounts()
                .get_business(req(
                    self.who,
                    acc::GetBusinessRequest {
                        name: format!("businesses/{ABC}"),
                    },
                ))
                .await
                .map(|_| ())
        } else {
            gw.delegation()
                .list_relationships(req(
                    self.who,
                    del::ListRelationshipsRequest {
                        parent: format!("businesses/{ABC}"),
                        ..Default::default()
                    },
                ))
                .await
                .map(|_| ())
        };
        Outcome {
            started,
            code: answer.map_or_else(|s| s.code(), |()| Code::Ok),
        }
    }

    /// Runs the load. With `kill_at`, calls `kill` once that many calls have
    /// ended and goes on until 2 s after it (at least `calls` in all); returns
    /// the outcomes and when the kill was, with the calls then in flight.
    async fn run(
        &self,
        kill_at: Option<usize>,
        kill: impl FnOnce(),
    ) -> (Vec<Outcome>, Option<(Instant, usize)>) {
        let started = AtomicUsize::new(0);
        let killed: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
        let go_on = |i: &usize| {
            let more = *i < self.calls
                || killed
                    .lock()
                    .unwrap()
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(2));
            futures::future::ready(more)
        };
        let mut calls = futures::stream::iter(0..MAX_CALLS)
            .take_while(go_on)
            .map(|i| {
                started.fetch_add(1, Ordering::SeqCst);
                self.call(i)
            })
            .buffer_unordered(16);
        let mut outcomes = Vec::with_capacity(self.calls);
        let mut kill = Some(kill);
        let mut record = None;
        while let Some(outcome) = calls.next().await {
            outcomes.push(outcome);
            if Some(outcomes.len()) == kill_at
                && let Some(kill) = kill.take()
            {
                // The calls started and not yet ended are in flight at the kill.
                let in_flight = started.load(Ordering::SeqCst) - outcomes.len();
                let at = Instant::now();
                kill();
                *killed.lock().unwrap() = Some(at);
                record = Some((at, in_flight));
            }
        }
        (outcomes, record)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_load_survive_a_kill_and_apply_each_event_once() {
    let begun = Instant::now();
    let Some(backend) = TestBackend::postgres().await else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL not set");
        return;
    };
    let Some(redis) = ccp_platform::testing::redis_url() else {
        eprintln!("skipped: CCP_TEST_REDIS_URL not set");
        return;
    };
    let shared = Shared {
        redis,
        prefix: ccp_platform::testing::unique_prefix(),
        key: base64::engine::general_purpose::STANDARD
            .decode(InternalTokens::generate_key())
            .unwrap(),
        clock: Clock::settable(t0()),
    };
    let ctx = shared.context().await;
    let clock = shared.clock.clone();

    // Identity, alone, in the test's runtime.
    let kek = KeyEncryptionKey::generate();
    let mut identity_settings = IdentitySettings {
        server: listen(),
        database: backend.settings("identity"),
        key_encryption_key: SecretString::from(kek.to_base64()),
        ..IdentitySettings::default()
    };
    identity_settings.dev_issuer.enabled = Some(true);
    identity_settings.dev_issuer.key =
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(DEV_SEED));
    identity_settings.machine_credentials.argon2_memory_kib = 256;
    identity_settings.machine_credentials.argon2_iterations = 1;
    let dev = DevIssuer::from_settings(&identity_settings.dev_issuer, None).unwrap();
    let identity = ccp_identity::Application::build(&ctx, &identity_settings)
        .await
        .expect("identity builds");
    let identity_url = http(identity.local_addr());
    let identity_task = tokio::spawn(identity.run_until_stopped(futures::future::pending()));

    // Three accounts replicas, then three delegation replicas, one database each service.
    let mut accounts = Vec::new();
    for _ in 0..3 {
        let settings = ccp_accounts::config::AccountsSettings {
            server: listen(),
            database: backend.settings("accounts"),
            identity_endpoint: identity_url.clone(),
            ..Default::default()
        };
        accounts.push(start_accounts(&shared, settings).await);
    }
    let mut delegation = Vec::new();
    for _ in 0..3 {
        let settings = ccp_delegation::config::DelegationSettings {
            server: listen(),
            database: backend.settings("delegation"),
            identity_endpoint: identity_url.clone(),
            accounts_endpoint: list(&accounts),
            sweep_interval_ms: 100,
            ..Default::default()
        };
        delegation.push(start_delegation(&shared, settings).await);
    }
    let settings = GatewaySettings {
        server: listen(),
        identity_endpoint: identity_url.clone(),
        accounts_endpoint: list(&accounts),
        delegation_endpoint: list(&delegation),
        rate_limit_per_second: 0,
        ..GatewaySettings::default()
    };
    let gateways = vec![
        start_gateway(&ctx, &settings).await,
        start_gateway(&ctx, &settings).await,
    ];

    // The registry, through one accounts replica.
    let mut import = tonic::Request::new(acc::ImportRegistryRequest {
        request_id: rid(),
        records: registry(),
    });
    import.metadata_mut().insert(
        INTERNAL_TOKEN_HEADER,
        ctx.internal.mint("service:test").parse().unwrap(),
    );
    let imported = AccountFactsClient::new(
        tonic::transport::Channel::from_shared(http(accounts[0].addr))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
    .import_registry(import)
    .await
    .unwrap()
    .into_inner();
    assert!(imported.rejected.is_empty(), "{:?}", imported.rejected);

    // The cast: ABC provides for three clients whose relationships expire 30
    // days and 2 minutes from now; MAPLE is sent a request before it registers.
    let gw = &gateways[0];
    let provider = person(&dev, &clock, gw, "provider-bam").await;
    register(gw, &provider, ABC).await;
    let expire = clock.now() + chrono::Duration::days(30) + chrono::Duration::minutes(2);
    let mut relationships = Vec::new();
    for (i, client) in [ITN, PACIFIQUE, NORTHERN].into_iter().enumerate() {
        let bam = person(&dev, &clock, &gateways[i % 2], &format!("client-bam-{i}")).await;
        register(&gateways[i % 2], &bam, client).await;
        let id = relate(
            &gateways[(i + 1) % 2],
            &provider,
            ABC,
            &bam,
            client,
            &[],
            &[del::Visibility::SubmittedByProvider],
            expire,
        )
        .await;
        relationships.push(format!("businesses/{client}/relationships/{id}"));
    }
    let waiting = gw
        .delegation()
        .send_relationship_request(req(
            &provider,
            del::SendRelationshipRequestRequest {
                request_id: rid(),
                parent: format!("businesses/{ABC}"),
                client: MAPLE.to_owned(),
                program_accounts: Vec::new(),
                note: "when you register".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    let maple_bam = person(&dev, &clock, &gateways[1], "maple-bam").await;
    register(&gateways[1], &maple_bam, MAPLE).await;

    println!("started and set up in {:?}", begun.elapsed());

    // 1. Every replica receives at least 20% of its service's calls.
    let before_a: Vec<u64> = accounts.iter().map(Process::served).collect();
    let before_d: Vec<u64> = delegation.iter().map(Process::served).collect();
    let phase = Instant::now();
    let load = Load {
        gateways: &gateways,
        who: &provider,
        calls: 600,
    };
    let (outcomes, _) = tokio::time::timeout(Duration::from_secs(120), load.run(None, || {}))
        .await
        .expect("the balanced load ends in time");
    assert!(outcomes.iter().all(|o| o.code == Code::Ok));
    for (name, processes, before) in [
        ("accounts", &accounts, &before_a),
        ("delegation", &delegation, &before_d),
    ] {
        let shares: Vec<u64> = processes
            .iter()
            .zip(before.iter())
            .map(|(p, b)| p.served() - b)
            .collect();
        let total: u64 = shares.iter().sum();
        println!(
            "{name}: calls served per replica {shares:?} of {total} (load of 600 calls in {:?})",
            phase.elapsed()
        );
        for share in &shares {
            assert!(
                share * 5 >= total,
                "every {name} replica serves at least 20%: {shares:?}"
            );
        }
    }

    // 2. Each outbox event takes effect once in each consumer; every due
    // reminder is emitted once, with three delegation replicas sweeping.
    let phase = Instant::now();
    clock.set(expire - chrono::Duration::days(30) + chrono::Duration::seconds(1));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = events(&ctx, "ccp.events.delegation").await;
        let reminders = distinct(&found, EventType::RelationshipExpiryReminder).len();
        let visible = distinct(&found, EventType::RelationshipRequestVisible).len();
        if reminders >= relationships.len() && visible >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reminders {reminders}, visible {visible}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more sweeps of every replica: nothing is emitted twice.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let delegation_events = events(&ctx, "ccp.events.delegation").await;
    let accounts_events = events(&ctx, "ccp.events.accounts").await;
    println!(
        "duplicate publications: accounts {} of {}, delegation {} of {}",
        duplicates(&accounts_events),
        accounts_events.len(),
        duplicates(&delegation_events),
        delegation_events.len(),
    );
    let reminders = distinct(&delegation_events, EventType::RelationshipExpiryReminder);
    let mut reminded: Vec<&str> = reminders.iter().map(|e| e.subject.as_str()).collect();
    reminded.sort_unstable();
    let mut want: Vec<&str> = relationships.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(reminded, want, "each due reminder once");
    let visible = distinct(&delegation_events, EventType::RelationshipRequestVisible);
    assert_eq!(
        visible.len(),
        1,
        "accounts' BusinessRegistered of {MAPLE} took effect once in delegation: {visible:?}"
    );
    assert!(
        visible[0].subject.ends_with(&waiting.id),
        "{:?} {waiting:?}",
        visible[0]
    );
    let registered = distinct(&accounts_events, EventType::BusinessRegistered).len();
    assert_eq!(
        registered, 5,
        "ABC, three clients and MAPLE registered once each"
    );
    println!("events and reminders checked in {:?}", phase.elapsed());

    // 3. One replica of each is killed mid-load.
    let provider = sign_in(&dev, &clock, gw, "provider-bam").await;
    let load = Load {
        gateways: &gateways,
        who: &provider,
        calls: 600,
    };
    let (victim_a, victim_d) = (accounts[1].addr, delegation[1].addr);
    let (outcomes, killed) = tokio::time::timeout(
        Duration::from_secs(120),
        load.run(Some(300), || {
            accounts[1].kill();
            delegation[1].kill();
        }),
    )
    .await
    .expect("the load ends in time");
    let (kill, in_flight) = killed.expect("the replicas were killed mid-load");
    let failures: Vec<&Outcome> = outcomes.iter().filter(|o| o.code != Code::Ok).collect();
    let late: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.started >= kill + Duration::from_secs(1))
        .collect();
    println!(
        "killed {victim_a} and {victim_d} after 300 calls: {} in flight, {} failed, {} of {} started 1 s or more after",
        in_flight,
        failures.len(),
        late.len(),
        outcomes.len()
    );
    assert!(failures.iter().all(|o| o.code == Code::Unavailable));
    assert!(
        failures.len() <= in_flight,
        "{} > {in_flight}",
        failures.len()
    );
    assert!(late.iter().all(|o| o.code == Code::Ok));

    identity_task.abort();
}
