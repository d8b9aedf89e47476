//! `ccp bench check`: gateway Check against the bare tonic echo, same client,
//! same run. Closed loop for the maximum throughput of both, then open loop
//! at a third of the gateway's maximum against both, interleaved in 100 ms
//! slices so that both see the same machine (BENCHMARKS.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ccp_platform::auth::INTERNAL_TOKEN_HEADER;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use ccp_proto::gateway::v1::{CheckRequest, Decision};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use super::echo::EchoServer;
use super::harness::{DatasetSize, Embedded, Seeder, bench_settings, channels};
use super::load::{ClosedLoop, OpenLoop, RunReport, closed_loop, open_loop_interleaved};
use super::mix::{Question, mix};
use super::{BenchArgs, Report};

/// Runs the scenario.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let mut settings = bench_settings();
    let cleanup = if args.distributed {
        Some(super::distributed::configure(&mut settings, args.database_url.as_deref()).await?)
    } else {
        None
    };
    let result = async {
        let context = if args.distributed {
            ServiceContext::from_settings(&settings.common).await?
        } else {
            ServiceContext::in_memory(Clock::system())
        };
        let embedded = Embedded::start(settings.clone(), context).await?;
        let result = measure(args, &embedded).await;
        let stopped = embedded.stop().await;
        let report = result?;
        stopped?;
        anyhow::Ok(report)
    }
    .await;
    // Drop the run's databases and Redis keys, also when it failed.
    let cleaned = match cleanup {
        Some(cleanup) => cleanup.run().await,
        None => Ok(()),
    };
    let report = result?;
    cleaned?;
    Ok(report)
}

/// The questions and the metadata every call carries (an internal caller).
#[derive(Clone)]
pub(super) struct Load {
    requests: Arc<Vec<CheckRequest>>,
    token: MetadataValue<tonic::metadata::Ascii>,
    channels: Arc<Vec<Channel>>,
    denies: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
}

impl Load {
    pub(super) async fn call(&self, worker: usize, seq: u64) -> Result<(), tonic::Status> {
        let channel = self.channels[worker % self.channels.len()].clone();
        let body = self.requests[(seq as usize) % self.requests.len()].clone();
        let mut request = tonic::Request::new(body);
        request
            .metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, self.token.clone());
        let response = AuthorizationClient::new(channel).check(request).await?;
        self.answered.fetch_add(1, Ordering::Relaxed);
        if response.get_ref().decision != Decision::Allow as i32 {
            self.denies.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Returns the load of `requests`, each call carrying internal `token`.
    pub(super) fn new(
        requests: Vec<CheckRequest>,
        token: MetadataValue<tonic::metadata::Ascii>,
    ) -> Self {
        Self {
            requests: Arc::new(requests),
            token,
            channels: Arc::new(Vec::new()),
            denies: Arc::new(AtomicU64::new(0)),
            answered: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Returns how many calls were answered and how many of those were DENY.
    pub(super) fn answers(&self) -> (u64, u64) {
        (
            self.answered.load(Ordering::Relaxed),
            self.denies.load(Ordering::Relaxed),
        )
    }

    pub(super) fn on(&self, channels: Vec<Channel>) -> Self {
        Self {
            channels: Arc::new(channels),
            denies: Arc::new(AtomicU64::new(0)),
            answered: Arc::new(AtomicU64::new(0)),
            ..self.clone()
        }
    }
}

pub(super) async fn closed(load: &Load, args: &BenchArgs) -> RunReport {
    let load = load.clone();
    let concurrency = args.concurrency();
    closed_loop(
        ClosedLoop {
            concurrency,
            warmup: args.warmup(),
            duration: args.duration(),
            max_requests: args.max_requests(),
        },
        move |worker, seq| {
            let load = load.clone();
            async move { load.call(worker, seq).await }
        },
    )
    .await
}

/// How long the interleaved open loop stays on one target before switching.
const OPEN_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// One open loop at `rate` alternating between the gateway and the echo in
/// slices of [`OPEN_SLICE`], so both see the same machine (a neighbour's
/// build step lands on both alike); each gets `args.duration()` of measured
/// time. Returns (gateway, echo).
pub(super) async fn open_interleaved(
    gateway: &Load,
    echo: &Load,
    args: &BenchArgs,
    rate: u64,
) -> (RunReport, RunReport) {
    let targets = [gateway.clone(), echo.clone()];
    let mut reports = open_loop_interleaved(
        OpenLoop {
            rate,
            warmup: args.warmup(),
            duration: args.duration(),
            max_in_flight: 10_000,
        },
        OPEN_SLICE,
        targets.len(),
        move |target, seq| {
            let load = targets[target % 2].clone();
            let workers = load.channels.len();
            async move { load.call(seq as usize % workers, seq).await }
        },
    )
    .await
    .into_iter();
    let empty = || RunReport {
        requests: 0,
        errors: 0,
        seconds: 0.0,
        rps: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
        max_ms: 0.0,
    };
    let gw = reports.next().unwrap_or_else(empty);
    let ec = reports.next().unwrap_or_else(empty);
    (gw, ec)
}

async fn measure(args: &BenchArgs, embedded: &Embedded) -> anyhow::Result<Report> {
    let seed_started = std::time::Instant::now();
    let seeder = Seeder::new(embedded).await?;
    let size = if args.quick {
        DatasetSize {
            clients: 8,
            members_per_client: 3,
            broker_employees: 6,
            related: 6,
            assignments_per_employee: 3,
        }
    } else {
        DatasetSize {
            clients: 30,
            members_per_client: 4,
            broker_employees: 12,
            related: 24,
            assignments_per_employee: 8,
        }
    };
    let data = seeder.dataset(size).await?;
    let seed_secs = seed_started.elapsed().as_secs_f64();
    let questions: Vec<Question> = mix(&data, 16_384, 0x00C0_FFEE);
    let expected_denies = questions.iter().filter(|q| !q.expect_allow).count();
    let gateway = embedded.gateway().await?;
    let echo = EchoServer::start().await?;
    let token = seeder.internal().mint("service:bench").parse()?;
    let base = Load {
        requests: Arc::new(questions.iter().map(|q| q.request.clone()).collect()),
        token,
        channels: Arc::new(Vec::new()),
        denies: Arc::new(AtomicU64::new(0)),
        answered: Arc::new(AtomicU64::new(0)),
    };
    let gw = base.on(channels(gateway.addr, args.connections()).await?);
    let ec = base.on(channels(echo.addr, args.connections()).await?);

    // Warm the caches: every distinct question once, and check answers match.
    let mut unexpected = 0u64;
    let mut distinct: Vec<&Question> = Vec::new();
    for q in &questions {
        if !distinct
            .iter()
            .any(|d| d.request.principal == q.request.principal && d.request.item == q.request.item)
        {
            distinct.push(q);
        }
    }
    for q in &distinct {
        let mut request = tonic::Request::new(q.request.clone());
        request
            .metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, gw.token.clone());
        let response = AuthorizationClient::new(gw.channels[0].clone())
            .check(request)
            .await?;
        if (response.get_ref().decision == Decision::Allow as i32) != q.expect_allow {
            unexpected += 1;
            tracing::warn!(question = ?q.request, answer = ?response.get_ref(), "unexpected decision");
        }
    }

    let echo_closed = closed(&ec, args).await;
    let before = gateway.facts.stats();
    let check_closed = closed(&gw, args).await;
    let after = gateway.facts.stats();
    // Over every answered call of the closed loop (warm-up included).
    let gw_denies = gw.denies.load(Ordering::Relaxed);
    let answered = gw.answered.load(Ordering::Relaxed);
    let rate = ((check_closed.rps / 3.0).round() as u64).max(1);
    let (check_open, echo_open) = open_interleaved(&gw, &ec, args, rate).await;
    let final_stats = gateway.facts.stats();

    echo.stop().await?;
    gateway.stop().await?;

    let hits = after.hits - before.hits;
    let misses = after.misses - before.misses;
    let hit_rate = if hits + misses > 0 {
        hits as f64 / (hits + misses) as f64
    } else {
        0.0
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let sent = answered.max(1);
    let errors = echo_closed.errors + check_closed.errors + check_open.errors + echo_open.errors;
    let json = json!({
        "scenario": "check",
        "mode": if args.distributed { "distributed" } else { "embedded" },
        "process": "in-process (gateway, echo and load generator share one runtime)",
        "quick": args.quick,
        "connections": args.connections(),
        "concurrency": args.concurrency(),
        "duration_s": args.duration().as_secs_f64(),
        "echo_rps": echo_closed.rps,
        "check_rps": check_closed.rps,
        "ratio": ratio(check_closed.rps, echo_closed.rps),
        "closed_p50_ms": check_closed.p50_ms,
        "closed_p99_ms": check_closed.p99_ms,
        "echo_closed_p99_ms": echo_closed.p99_ms,
        "rate": rate,
        "p50_ms": check_open.p50_ms,
        "p99_ms": check_open.p99_ms,
        "p999_ms": check_open.p999_ms,
        "max_ms": check_open.max_ms,
        "echo_p50_ms": echo_open.p50_ms,
        "echo_p99_ms": echo_open.p99_ms,
        "echo_p999_ms": echo_open.p999_ms,
        "p99_ratio": ratio(check_open.p99_ms, echo_open.p99_ms),
        "open_check_rps": check_open.rps,
        "open_echo_rps": echo_open.rps,
        "hit_rate": hit_rate,
        "facts_hits": hits,
        "facts_misses": misses,
        "facts_misses_total": final_stats.misses,
        "deny_share": gw_denies as f64 / sent as f64,
        "expected_deny_share": expected_denies as f64 / questions.len().max(1) as f64,
        "distinct_questions": distinct.len(),
        "unexpected_decisions": unexpected,
        "principals": super::mix::questions_by_principal(&data).len(),
        "seed_s": seed_secs,
        "errors": errors,
    });
    let table = vec![
        vec![
            "closed loop".into(),
            "echo".into(),
            format!("{:.0}", echo_closed.rps),
            format!("{:.3}", echo_closed.p50_ms),
            format!("{:.3}", echo_closed.p99_ms),
            "".into(),
            echo_closed.errors.to_string(),
        ],
        vec![
            "closed loop".into(),
            "gateway Check".into(),
            format!("{:.0}", check_closed.rps),
            format!("{:.3}", check_closed.p50_ms),
            format!("{:.3}", check_closed.p99_ms),
            format!("{:.3}", check_closed.p999_ms),
            check_closed.errors.to_string(),
        ],
        vec![
            format!("open {rate}/s"),
            "echo".into(),
            format!("{:.0}", echo_open.rps),
            format!("{:.3}", echo_open.p50_ms),
            format!("{:.3}", echo_open.p99_ms),
            format!("{:.3}", echo_open.p999_ms),
            echo_open.errors.to_string(),
        ],
        vec![
            format!("open {rate}/s"),
            "gateway Check".into(),
            format!("{:.0}", check_open.rps),
            format!("{:.3}", check_open.p50_ms),
            format!("{:.3}", check_open.p99_ms),
            format!("{:.3}", check_open.p999_ms),
            check_open.errors.to_string(),
        ],
    ];
    Ok(Report {
        headers: vec![
            "loop", "target", "rps", "p50 ms", "p99 ms", "p99.9 ms", "errors",
        ],
        rows: table,
        notes: vec![
            format!(
                "ratio (Check/echo closed-loop rps) = {:.2}   p99 ratio (open loop) = {:.2}",
                ratio(check_closed.rps, echo_closed.rps),
                ratio(check_open.p99_ms, echo_open.p99_ms)
            ),
            format!(
                "facts cache hit rate {:.4} ({hits} hits, {misses} misses); denials {:.1}%; {unexpected} unexpected decisions",
                hit_rate,
                100.0 * gw_denies as f64 / sent as f64
            ),
        ],
        json,
    })
}
