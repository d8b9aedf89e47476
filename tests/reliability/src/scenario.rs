//! The scenarios: one fault each, injected into a fresh deployment under the
//! load, and what each one measured.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ccp_platform::auth::InternalTokens;
use ccp_platform::clock::Clock;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::backends::{PrivatePostgres, PrivateRedis};
use crate::client::{Auth, Caller, Purpose, Recorder, code_name};
use crate::deployment::Deployment;
use crate::workload::{self, LoadResults, Probe, RevocationKind, Setup};

/// A fault a scenario injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// None: the control row.
    Baseline,
    /// SIGKILL of one `ccp serve` process, then a start on the same port.
    Kill(&'static str),
    /// PostgreSQL stopped in immediate mode (no checkpoint), then started.
    PostgresImmediateRestart,
    /// Redis killed with SIGKILL and started again, empty.
    RedisEmptyRestart,
    /// Redis killed; the gateway killed and started while Redis is down;
    /// then Redis started again, empty.
    GatewayRestartDuringRedisOutage,
}

impl Fault {
    /// Returns every scenario, in the table's order.
    pub fn all() -> Vec<Self> {
        vec![
            Self::Baseline,
            Self::Kill("identity"),
            Self::Kill("accounts"),
            Self::Kill("delegation"),
            Self::Kill("gateway"),
            Self::PostgresImmediateRestart,
            Self::RedisEmptyRestart,
            Self::GatewayRestartDuringRedisOutage,
        ]
    }

    /// Returns the scenario's name in the table.
    pub fn name(&self) -> String {
        match self {
            Self::Baseline => "no fault (baseline)".to_owned(),
            Self::Kill(process) => format!("kill -9 {process}"),
            Self::PostgresImmediateRestart => "PostgreSQL immediate restart".to_owned(),
            Self::RedisEmptyRestart => "Redis kill -9, empty restart".to_owned(),
            Self::GatewayRestartDuringRedisOutage => {
                "gateway kill -9 + restart during Redis outage".to_owned()
            }
        }
    }

    /// Returns the scenario's short name (`--only`, log directories).
    pub fn slug(&self) -> String {
        match self {
            Self::Baseline => "baseline".to_owned(),
            Self::Kill(process) => format!("kill-{process}"),
            Self::PostgresImmediateRestart => "postgres-restart".to_owned(),
            Self::RedisEmptyRestart => "redis-restart".to_owned(),
            Self::GatewayRestartDuringRedisOutage => "gateway-restart-redis-down".to_owned(),
        }
    }
}

/// How much load and how many faults.
#[derive(Debug, Clone, Copy)]
pub struct Form {
    /// `quick` or `full`.
    pub name: &'static str,
    /// Writes per scenario.
    pub writes: usize,
    /// Load duration per scenario (writes are spread over it).
    pub load: Duration,
    /// How long a killed thing stays down.
    pub down: Duration,
    /// Faults per scenario (the same fault, spread over the load).
    pub faults: usize,
}

impl Form {
    /// The CI form: every scenario once, in a few minutes.
    pub fn quick() -> Self {
        Self {
            name: "quick",
            writes: 45,
            load: Duration::from_secs(8),
            down: Duration::from_secs(1),
            faults: 1,
        }
    }

    /// The long form: more writes, a longer load, each fault three times.
    pub fn full() -> Self {
        Self {
            name: "full",
            writes: 600,
            load: Duration::from_secs(45),
            down: Duration::from_secs(2),
            faults: 3,
        }
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// Writes sent.
    pub writes: usize,
    /// Writes acknowledged (answered OK).
    pub acked: u64,
    /// Acknowledged writes not readable afterwards (NOT_FOUND).
    pub lost: u64,
    /// Acknowledged writes that could not be read back (other errors).
    pub unverified: u64,
    /// Revocations acknowledged.
    pub revocations: u64,
    /// Revocations never acknowledged within the bound.
    pub revocations_failed: u64,
    /// Probes sent with revoked tokens and grants.
    pub probes: u64,
    /// Revoked tokens accepted (OK) more than 250 ms after the ack or carrying its revision.
    pub revoked_accepted: u64,
    /// ALLOW answers more than 250 ms after the revoking ack or carrying its revision.
    pub stale_allows: u64,
    /// Codes of the calls not in flight on a killed process.
    pub codes: BTreeMap<&'static str, u64>,
    /// Codes of the calls in flight on a killed process (sent before the kill, answered after).
    pub in_flight: BTreeMap<&'static str, u64>,
    /// What else was seen: breakdowns by revocation kind, a sample message
    /// of each error code, how processes behaved.
    pub notes: Vec<String>,
    /// The scenario could not be run or measured.
    pub error: Option<String>,
    /// Wall time of the scenario, seconds.
    pub seconds: f64,
}

impl Outcome {
    /// Returns INTERNAL and UNKNOWN answers not in flight on a killed process.
    pub fn internal_or_unknown(&self) -> u64 {
        self.codes.get("INTERNAL").copied().unwrap_or(0)
            + self.codes.get("UNKNOWN").copied().unwrap_or(0)
    }
}

/// The suite's PostgreSQL and Redis.
#[derive(Debug)]
pub struct Backends {
    /// PostgreSQL.
    pub postgres: PrivatePostgres,
    /// Redis.
    pub redis: PrivateRedis,
}

impl Backends {
    /// Starts both.
    pub async fn start() -> anyhow::Result<Self> {
        let (postgres, redis) = tokio::try_join!(PrivatePostgres::start(), PrivateRedis::start())?;
        Ok(Self { postgres, redis })
    }
}

/// Runs one scenario on a fresh deployment; failures to run it are kept in
/// the outcome's `error`.
pub async fn run(
    backends: &mut Backends,
    fault: Fault,
    index: usize,
    form: &Form,
    log_dir: &Path,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        scenario: fault.name(),
        writes: form.writes,
        ..Outcome::default()
    };
    let logs = log_dir.join(fault.slug());
    match Deployment::start(&backends.postgres.admin_url(), &backends.redis.url(), &logs).await {
        Err(err) => outcome.error = Some(format!("deployment did not start: {err:#}")),
        Ok(deployment) => {
            if let Err(err) = measure(backends, &deployment, fault, index, form, &mut outcome).await
            {
                outcome.error = Some(format!("{err:#} (logs in {})", logs.display()));
            }
            if let Err(err) = deployment.stop().await {
                let stop = format!("stopping the deployment: {err:#}");
                outcome.error = Some(match outcome.error.take() {
                    Some(e) => format!("{e}; {stop}"),
                    None => stop,
                });
            }
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

async fn measure(
    backends: &mut Backends,
    deployment: &Deployment,
    fault: Fault,
    index: usize,
    form: &Form,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let recorder = Arc::new(Recorder::default());
    let gateway = Caller::new(&deployment.url("gateway")?, recorder.clone())?;
    let internal_auth = ccp_platform::config::InternalAuthSettings {
        key: SecretString::from(deployment.internal_key.clone()),
        ..Default::default()
    };
    let key = internal_auth
        .key_bytes()?
        .ok_or_else(|| anyhow::anyhow!("no internal key"))?;
    let internal = InternalTokens::new(&key, Duration::from_secs(900), Clock::system());
    let accounts = Caller::new(&deployment.url("accounts")?, recorder.clone())?
        .with_internal_token(internal.mint("service:reliability"));
    let mut settings = ccp::settings::SuiteSettings::default();
    settings.common.environment = ccp_platform::config::Environment::Test;
    settings.identity.dev_issuer.enabled = Some(true);
    settings.identity.dev_issuer.key = SecretString::from(deployment.dev_key.clone());
    let label = fault.slug();
    let setup = Setup {
        gateway: &gateway,
        accounts: &accounts,
        settings: &settings,
        label: &label,
    };
    let bn9 = ccp::bench::harness::bn9(31_000_000 + u32::try_from(index).unwrap_or(0) * 7_919);
    let cast = Arc::new(setup.cast(&bn9, 2).await?);

    // The load: writes spread over the load time, checks, revocations.
    let t0 = Instant::now();
    let write_deadline = t0 + form.load + Duration::from_secs(60);
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(LoadResults::default());
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..3 {
        let (g, cast, results, next, label) = (
            gateway.clone(),
            cast.clone(),
            results.clone(),
            next.clone(),
            label.clone(),
        );
        let (writes, load) = (form.writes, form.load);
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= writes {
                    break;
                }
                let offset = load.mul_f64(i as f64 / writes as f64);
                tokio::time::sleep_until(t0 + offset).await;
                match workload::write(&g, &cast, &label, i, write_deadline).await {
                    Ok(acked) => results
                        .acked
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(acked),
                    Err(status) => results
                        .unacked
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(status.code()),
                }
            }
        }));
    }
    let mut checkers = Vec::new();
    for _ in 0..2 {
        let (g, cast, stop) = (gateway.clone(), cast.clone(), stop.clone());
        checkers.push(tokio::spawn(async move {
            let limit = t0 + workload::PROBE_LIMIT;
            while !stop.load(Ordering::Acquire) && Instant::now() < limit {
                let _ =
                    workload::check(&g, Purpose::Check, Auth::bearer(&cast.bam.token), &cast.bn9)
                        .await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    let mut revokers = Vec::new();
    let spawn_revocation = |set: usize, at: Instant| {
        let (g, cast, stop, results) =
            (gateway.clone(), cast.clone(), stop.clone(), results.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            workload::revoke_and_probe(g, cast, set, write_deadline, stop, results).await;
        })
    };
    // The first set is revoked before any fault, the second as the first fault begins.
    revokers.push(spawn_revocation(0, t0 + form.load.mul_f64(0.15)));

    let mut fault_error = None;
    for k in 0..form.faults.max(1) {
        if fault == Fault::Baseline {
            break;
        }
        let at = t0
            + form
                .load
                .mul_f64(0.3 + 0.6 * k as f64 / form.faults.max(1) as f64);
        tokio::time::sleep_until(at).await;
        if k == 0 {
            revokers.push(spawn_revocation(
                1,
                Instant::now() + Duration::from_millis(100),
            ));
        }
        if let Err(err) = inject(
            backends,
            deployment,
            fault,
            form.down,
            &recorder,
            &mut outcome.notes,
        )
        .await
        {
            fault_error = Some(err);
            break;
        }
    }
    if fault == Fault::Baseline {
        revokers.push(spawn_revocation(1, t0 + form.load.mul_f64(0.3)));
    }
    // The load runs its time, and at least 2 s past the last recovery.
    let end = (t0 + form.load).max(Instant::now() + Duration::from_secs(2));
    tokio::time::sleep_until(end).await;
    stop.store(true, Ordering::Release);
    for task in writers.into_iter().chain(checkers).chain(revokers) {
        task.await?;
    }
    if let Some(err) = fault_error {
        return Err(err.context("injecting the fault"));
    }

    // Every acknowledged write read back, all processes up.
    let acked = results
        .acked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let readback = workload::read_back(&gateway, &cast, &acked).await?;
    outcome.acked = acked.len() as u64;
    outcome.lost = readback.lost;
    outcome.unverified = readback.unverified;
    outcome.revocations = results
        .revocations
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len() as u64;
    outcome.revocations_failed = results
        .revocations_failed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len() as u64;
    let probes = results.probes();
    outcome.probes = probes.len() as u64;
    outcome.revoked_accepted = probes.iter().filter(|p| p.revoked_token_accepted()).count() as u64;
    outcome.stale_allows = probes.iter().filter(|p| p.stale_allow()).count() as u64;

    for (what, count) in [
        (
            "revoked tokens accepted",
            Probe::revoked_token_accepted as fn(&Probe) -> bool,
        ),
        ("stale allows", Probe::stale_allow),
    ] {
        let by_kind = breakdown(&probes, count);
        if !by_kind.is_empty() {
            outcome.notes.push(format!("{what}: {by_kind}"));
        }
    }
    let unacked = results
        .unacked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if !unacked.is_empty() {
        let codes: Vec<&str> = unacked.iter().map(|c| code_name(*c)).collect();
        outcome
            .notes
            .push(format!("writes never acknowledged: {}", codes.join(", ")));
    }

    let kills = recorder.kills();
    let mut samples: BTreeMap<(bool, &'static str), String> = BTreeMap::new();
    for call in recorder.calls() {
        if call.purpose == Purpose::Setup {
            continue;
        }
        let in_flight = kills.iter().any(|kill| kill.caught(&call));
        let name = code_name(call.code);
        let map = if in_flight {
            &mut outcome.in_flight
        } else {
            &mut outcome.codes
        };
        *map.entry(name).or_default() += 1;
        if let Some(message) = call.message
            && call.code != tonic::Code::Unauthenticated
        {
            samples.entry((in_flight, name)).or_insert(message);
        }
    }
    for ((in_flight, code), message) in samples {
        let message: String = message.chars().take(160).collect();
        outcome.notes.push(format!(
            "{code}{}: \"{message}\"",
            if in_flight {
                " (in flight on a killed process)"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// Injects `fault` once and recovers from it; notes what it saw.
async fn inject(
    backends: &mut Backends,
    deployment: &Deployment,
    fault: Fault,
    down: Duration,
    recorder: &Recorder,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    match fault {
        Fault::Baseline => Ok(()),
        Fault::Kill(process) => {
            recorder.kill(deployment.kill(process).await?);
            tokio::time::sleep(down).await;
            deployment.restart(process).await
        }
        Fault::PostgresImmediateRestart => {
            backends.postgres.stop_immediate().await?;
            tokio::time::sleep(down).await;
            backends.postgres.start_server().await
        }
        Fault::RedisEmptyRestart => {
            backends.redis.kill().await;
            tokio::time::sleep(down).await;
            backends.redis.start_empty().await;
            Ok(())
        }
        Fault::GatewayRestartDuringRedisOutage => {
            backends.redis.kill().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            recorder.kill(deployment.kill("gateway").await?);
            // The gateway is started while Redis is down; Redis comes back
            // `down` after it listens, or after a bounded wait when it cannot
            // start without Redis.
            match tokio::time::timeout(Duration::from_secs(20), deployment.restart("gateway")).await
            {
                Ok(Ok(())) => {
                    notes.push("the gateway started while Redis was down".to_owned());
                    tokio::time::sleep(down).await;
                }
                Ok(Err(_)) => {
                    let said = deployment.last_log_line("gateway");
                    let note = format!(
                        "the gateway did not start while Redis was down (it said: {})",
                        said.as_deref().unwrap_or("nothing")
                    );
                    // Once per scenario, however many times the fault is injected.
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                Err(_) => notes
                    .push("the gateway did not listen within 20 s while Redis was down".to_owned()),
            }
            backends.redis.start_empty().await;
            if !deployment.is_running("gateway").await {
                deployment.restart("gateway").await?;
            }
            Ok(())
        }
    }
}

/// Returns how many probes `count` picks, by revocation kind and revision
/// (`sign-out 12 (with revision 3)`), empty when none.
fn breakdown(probes: &[Probe], count: fn(&Probe) -> bool) -> String {
    let mut parts = Vec::new();
    for (kind, name) in [
        (RevocationKind::SignOut, "sign-out"),
        (RevocationKind::CredentialRevoked, "credential revoked"),
        (RevocationKind::MemberRemoved, "member removed"),
    ] {
        let picked: Vec<&Probe> = probes
            .iter()
            .filter(|p| p.kind == kind && count(p))
            .collect();
        if picked.is_empty() {
            continue;
        }
        let with_revision = picked.iter().filter(|p| p.with_revision).count();
        let latest = picked
            .iter()
            .map(|p| p.after_ack)
            .max()
            .unwrap_or_default()
            .as_millis();
        parts.push(format!(
            "{name} {} (with revision {with_revision}; last {latest} ms after the ack)",
            picked.len()
        ));
    }
    parts.join(", ")
}
