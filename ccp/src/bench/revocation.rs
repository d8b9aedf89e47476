//! `ccp bench revocation`: the embedded services plus three gateway replicas
//! in this process sharing one Redis cache and bus (a unique key prefix).
//! Each round revokes a member's role through one replica (SetMemberRoles,
//! forwarded) and probes every replica until each denies; a Check carrying
//! the write's revision token must deny at once. Then a relationship reaches
//! its expiry instant under a settable clock and every replica is probed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use ccp_platform::auth::INTERNAL_TOKEN_HEADER;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::common::v1::{Action, Role};
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use ccp_proto::gateway::v1::{CheckItem, CheckRequest, Decision};
use chrono::Utc;
use serde_json::json;
use tonic::transport::Channel;

use super::harness::{Embedded, Gateway, SETTLE, Seeder, bench_settings, channels};
use super::{BenchArgs, Report};

/// Longest a replica is probed for one round before it counts as never denying.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// A settable clock that follows real time plus an offset (so services and
/// timeouts behave normally) until a test jumps it.
struct TrackingClock {
    clock: Clock,
    offset_us: Arc<AtomicI64>,
    ticker: tokio::task::JoinHandle<()>,
}

impl TrackingClock {
    fn start() -> Self {
        let clock = Clock::settable(Utc::now());
        let offset_us = Arc::new(AtomicI64::new(0));
        let (c, o) = (clock.clone(), offset_us.clone());
        let ticker = tokio::spawn(async move {
            loop {
                let offset = chrono::Duration::microseconds(o.load(Ordering::Acquire));
                c.set(Utc::now() + offset);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        Self {
            clock,
            offset_us,
            ticker,
        }
    }

    /// Moves the clock to `instant` (and keeps it following real time from there).
    fn jump_to(&self, instant: chrono::DateTime<Utc>) {
        let offset = instant - Utc::now();
        self.offset_us
            .store(offset.num_microseconds().unwrap_or(0), Ordering::Release);
        self.clock.set(instant);
    }
}

/// Runs the scenario.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let mut settings = bench_settings();
    let keys = super::distributed::configure_redis(&mut settings)?;
    let clock = TrackingClock::start();
    let result = async {
        let mut context = ServiceContext::from_settings(&settings.common).await?;
        context.clock = clock.clock.clone();
        let embedded = Embedded::start(settings, context).await?;
        let result = measure(args, &embedded, &clock).await;
        let stopped = embedded.stop().await;
        let report = result?;
        stopped?;
        anyhow::Ok(report)
    }
    .await;
    clock.ticker.abort();
    // Delete the run's Redis keys (cache entries, event streams), also when it failed.
    let deleted = keys.delete().await;
    let report = result?;
    deleted?;
    Ok(report)
}

struct Prober {
    channels: Vec<Channel>,
    token: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl Prober {
    async fn allows(&self, replica: usize, request: CheckRequest) -> anyhow::Result<bool> {
        let mut req = tonic::Request::new(request);
        req.metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, self.token.clone());
        let response = AuthorizationClient::new(self.channels[replica].clone())
            .check(req)
            .await?;
        Ok(response.get_ref().decision == Decision::Allow as i32)
    }

    /// Polls `replica` until its answer is `allow`; returns how long it took
    /// from `since`, or None after `limit`.
    async fn until(
        &self,
        replica: usize,
        request: &CheckRequest,
        allow: bool,
        since: Instant,
        limit: Duration,
    ) -> anyhow::Result<Option<Duration>> {
        loop {
            if self.allows(replica, request.clone()).await? == allow {
                return Ok(Some(since.elapsed()));
            }
            if since.elapsed() > limit {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
}

/// A Check question from an internal caller about `principal`.
pub(super) fn check(
    principal: &str,
    resource: &str,
    action: Action,
    revision: &str,
) -> CheckRequest {
    CheckRequest {
        principal: principal.to_owned(),
        item: Some(CheckItem {
            action: action as i32,
            resource: resource.to_owned(),
            submitted_by: String::new(),
        }),
        revision: revision.to_owned(),
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn measure(
    args: &BenchArgs,
    embedded: &Embedded,
    clock: &TrackingClock,
) -> anyhow::Result<Report> {
    let seeder = Seeder::new(embedded).await?;
    let mut client = seeder.business("revoking-importer").await?;
    let person = seeder.person("revoked-member").await?;
    let program = client.programs[0].clone();
    let other = client.programs[1].clone();
    seeder
        .join(&mut client, person, &program, Role::Editor)
        .await?;
    let mut member = client.members[0].clone();
    let full = [
        (program.clone(), Role::Editor),
        (other.clone(), Role::Reader),
    ];
    let reduced = [(other.clone(), Role::Reader)];
    seeder.set_roles(&client, &mut member, &full, None).await?;

    let mut replicas: Vec<Gateway> = Vec::new();
    for _ in 0..3 {
        replicas.push(embedded.gateway().await?);
    }
    let mut probe_channels = Vec::new();
    for r in &replicas {
        probe_channels.extend(channels(r.addr, 1).await?);
    }
    let prober = Arc::new(Prober {
        channels: probe_channels.clone(),
        token: seeder.internal().mint("service:bench").parse()?,
    });
    let question = check(&member.person.principal, &program, Action::View, "");

    let mut rounds_ms = Vec::new();
    let mut per_replica_ms = Vec::new();
    let mut stale_with_token = 0u64;
    let mut timeouts = 0u64;
    for round in 0..args.rounds() {
        // Every replica allows (and has the facts cached).
        for r in 0..replicas.len() {
            prober
                .until(r, &question, true, Instant::now(), SETTLE)
                .await?
                .ok_or_else(|| anyhow::anyhow!("replica {r} never allowed again"))?;
            prober.allows(r, question.clone()).await?;
        }
        let via = probe_channels[round % probe_channels.len()].clone();
        let started = Instant::now();
        let revision = seeder
            .set_roles(&client, &mut member, &reduced, Some(via))
            .await?;
        let with_token = check(&member.person.principal, &program, Action::View, &revision);
        for r in 0..replicas.len() {
            if prober.allows(r, with_token.clone()).await? {
                stale_with_token += 1;
            }
        }
        let mut probes = Vec::new();
        for r in 0..replicas.len() {
            let (prober, question) = (prober.clone(), question.clone());
            probes.push(tokio::spawn(async move {
                prober
                    .until(r, &question, false, started, PROBE_LIMIT)
                    .await
            }));
        }
        let mut worst: f64 = 0.0;
        for probe in probes {
            let ms = match probe.await?? {
                Some(d) => d.as_secs_f64() * 1000.0,
                None => {
                    timeouts += 1;
                    PROBE_LIMIT.as_secs_f64() * 1000.0
                }
            };
            per_replica_ms.push(ms);
            worst = worst.max(ms);
        }
        rounds_ms.push(worst);
        seeder.set_roles(&client, &mut member, &full, None).await?;
    }
    rounds_ms.sort_by(f64::total_cmp);
    per_replica_ms.sort_by(f64::total_cmp);

    // Expiry: a broker employee acts for the client until the relationship's
    // end; at that instant every replica must deny, whatever is cached.
    let mut broker = seeder.business("expiring-broker").await?;
    let employee = seeder.person("expiring-employee").await?;
    let broker_program = broker.programs[0].clone();
    seeder
        .join(&mut broker, employee, &broker_program, Role::Editor)
        .await?;
    let expire = clock.clock.now() + chrono::Duration::seconds(120);
    seeder.relate(&broker, &client, expire).await?;
    let employee = broker.members[0].person.clone();
    seeder
        .assign(&broker, &employee, &client, Role::Editor)
        .await?;
    // A new submission (EDIT without `submitted_by`): an Expired user may
    // still VIEW what the broker submitted (R-AZ-4), never this.
    let acting = check(&employee.principal, &program, Action::Edit, "");
    let mut allowed_before = 0u64;
    for r in 0..replicas.len() {
        if prober
            .until(r, &acting, true, Instant::now(), SETTLE)
            .await?
            .is_some()
        {
            allowed_before += 1;
        }
    }
    clock.jump_to(expire);
    let mut allows_after_expiry = 0u64;
    let mut expiry_probes = 0u64;
    for _ in 0..100 {
        for r in 0..replicas.len() {
            expiry_probes += 1;
            if prober.allows(r, acting.clone()).await? {
                allows_after_expiry += 1;
            }
        }
    }

    for r in replicas {
        r.stop().await?;
    }
    let (p50, p99, max) = (
        quantile(&rounds_ms, 0.5),
        quantile(&rounds_ms, 0.99),
        rounds_ms.last().copied().unwrap_or(0.0),
    );
    let json = json!({
        "scenario": "revocation",
        "quick": args.quick,
        "replicas": 3,
        "rounds": rounds_ms.len(),
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max,
        "replica_p50_ms": quantile(&per_replica_ms, 0.5),
        "replica_p99_ms": quantile(&per_replica_ms, 0.99),
        "timeouts": timeouts,
        "stale_allows_with_token": stale_with_token,
        "allows_before_expiry": allowed_before,
        "allows_after_expiry": allows_after_expiry,
        "expiry_probes": expiry_probes,
        "errors": timeouts,
    });
    Ok(Report {
        headers: vec!["measure", "value"],
        rows: vec![
            vec!["rounds".into(), rounds_ms.len().to_string()],
            vec!["all replicas deny, p50 ms".into(), format!("{p50:.2}")],
            vec!["all replicas deny, p99 ms".into(), format!("{p99:.2}")],
            vec!["all replicas deny, max ms".into(), format!("{max:.2}")],
            vec![
                "stale allows with the revision token".into(),
                stale_with_token.to_string(),
            ],
            vec![
                "allows at/after the expiry instant".into(),
                format!("{allows_after_expiry} of {expiry_probes}"),
            ],
        ],
        notes: vec![
            "latency counted from the start of the revoking write (forwarded by one replica) \
             until each of the 3 replicas denies; per round the slowest replica"
                .to_owned(),
        ],
        json,
    })
}
