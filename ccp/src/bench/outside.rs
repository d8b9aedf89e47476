//! `ccp bench check --out-of-process`: the gateway and the baseline each in
//! a process of its own, driven from this one.
//!
//! - The gateway: `ccp up --demo` (the four services in one process, the
//!   guide's cast loaded, the rate limit off); the questions are the cast's,
//!   answered from the gateway's caches after the first call.
//! - The baseline: `ccp bench bare-echo`, plain `tonic::transport::Server`
//!   with no layer of ours answering the same RPC with the same messages.
//! - This process only generates the load, over the same connections and
//!   streams to each, in interleaved rounds (closed loop: maximum
//!   throughput), then one open loop at a third of the gateway's median
//!   maximum alternating between the two in 100 ms slices. Every answer must
//!   be grpc-status 0, and the gateway's decisions are checked against the
//!   expected ones before and after the runs.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use ccp_proto::common::v1::Action;
use ccp_proto::gateway::v1::CheckRequest;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use super::check::{Load, closed, open_interleaved};
use super::harness::channels;
use super::load::RunReport;
use super::{BenchArgs, Report};

/// How long a child process may take to say it is ready.
const START: Duration = Duration::from_secs(120);

/// A child process of this bench, killed when dropped.
pub(super) struct Process {
    child: Child,
}

impl Process {
    /// Starts `ccp <args>` and reads its stdout until `ready` returns a value.
    pub(super) async fn start<T>(
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        ready: impl FnMut(&str) -> Option<T>,
    ) -> anyhow::Result<(Self, T)> {
        Self::start_binary(&std::env::current_exe()?, args, env, ready).await
    }

    /// Starts `binary <args>` (a `ccp`) as [`Process::start`] does.
    pub(super) async fn start_binary<T>(
        binary: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        mut ready: impl FnMut(&str) -> Option<T>,
    ) -> anyhow::Result<(Self, T)> {
        let mut command = Command::new(binary);
        command
            .args(args)
            .env("CCP_TELEMETRY__LOG_FILTER", "warn")
            .env("CCP_GATEWAY__RATE_LIMIT_PER_SECOND", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        for service in [
            "GATEWAY",
            "IDENTITY",
            "ACCOUNTS",
            "DELEGATION",
            "NOTIFICATIONS",
        ] {
            command.env(format!("CCP_{service}__SERVER__LISTEN"), "127.0.0.1:0");
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(START, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(found) = ready(&line) {
                    return anyhow::Ok(found);
                }
            }
            anyhow::bail!("`ccp {}` ended before it was ready", args.join(" "))
        })
        .await
        .with_context(|| format!("`ccp {}` was not ready within {START:?}", args.join(" ")))??;
        // Keep reading so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((Self { child }, found))
    }

    /// Returns its resident memory and its peak, in MiB (Linux `/proc`).
    pub(super) fn rss_mb(&self) -> (Option<f64>, Option<f64>) {
        let Some(pid) = self.child.id() else {
            return (None, None);
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub(super) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// Signs `user` in with the suite's development issuer; returns the principal.
async fn principal(dir: &Path, user: &str) -> anyhow::Result<String> {
    let output = Command::new(std::env::current_exe()?)
        .args(["login", "--dev", user, "-q"])
        .env("CCP_STATE_DIR", dir.join("state"))
        .env("CCP_SESSION", dir.join(format!("session-{user}.json")))
        .stdin(Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "ccp login --dev {user}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

fn question(principal: &str, action: Action, resource: &str) -> CheckRequest {
    super::revocation::check(principal, resource, action, "")
}

/// Asks every question once; returns how many answers differ from `expected`.
async fn wrong_answers(load: &Load, expected: &[bool]) -> anyhow::Result<usize> {
    let mut wrong = 0;
    for (i, allow) in expected.iter().enumerate() {
        let (answered, denies) = load.answers();
        load.call(0, i as u64)
            .await
            .with_context(|| format!("question {i}"))?;
        let denied = load.answers().1 > denies;
        anyhow::ensure!(load.answers().0 == answered + 1, "question {i} unanswered");
        if denied == *allow {
            wrong += 1;
        }
    }
    Ok(wrong)
}

pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub(super) fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// A `ccp up --demo` in a process of its own, with its endpoints by service
/// (`http://…`), its data directory and a state directory for `ccp login`.
pub(super) struct DemoSuite {
    process: Process,
    pub(super) endpoints: std::collections::BTreeMap<String, String>,
    pub(super) data: std::path::PathBuf,
    pub(super) dir: tempfile::TempDir,
}

impl DemoSuite {
    /// Starts `ccp up --demo` on spare ports and waits until the cast is loaded.
    pub(super) async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("ccp-bench-oop-")
            .tempdir()?;
        let data = dir.path().join("data");
        let state = dir.path().join("state");
        let data_arg = data.display().to_string();
        let (process, endpoints) = Process::start(
            &["up", "--demo", "--data-dir", &data_arg],
            &[("CCP_STATE_DIR", state.as_os_str())],
            {
                let mut endpoints = std::collections::BTreeMap::new();
                move |line: &str| {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    if let [service, url, ..] = words.as_slice()
                        && url.starts_with("http://")
                    {
                        endpoints.insert((*service).to_owned(), (*url).to_owned());
                    }
                    line.starts_with("Press Ctrl-C").then(|| endpoints.clone())
                }
            },
        )
        .await?;
        anyhow::ensure!(
            ["gateway", "identity", "accounts", "delegation"]
                .iter()
                .all(|s| endpoints.contains_key(*s)),
            "`ccp up` printed endpoints {endpoints:?}"
        );
        Ok(Self {
            process,
            endpoints,
            data,
            dir,
        })
    }

    /// Returns the address of `service`.
    pub(super) fn addr(&self, service: &str) -> anyhow::Result<std::net::SocketAddr> {
        self.endpoints
            .get(service)
            .map(|url| url.trim_start_matches("http://"))
            .with_context(|| format!("no {service} endpoint"))?
            .parse()
            .with_context(|| format!("the {service} address"))
    }

    /// Signs `user` in with the suite's development issuer; returns its
    /// principal and access token.
    pub(super) async fn sign_in(&self, user: &str) -> anyhow::Result<(String, String)> {
        let principal = principal(self.dir.path(), user).await?;
        let session: serde_json::Value = serde_json::from_slice(
            &tokio::fs::read(self.dir.path().join(format!("session-{user}.json"))).await?,
        )?;
        let token = session["access_token"]
            .as_str()
            .context("the session's access token")?
            .to_owned();
        Ok((principal, token))
    }

    /// An internal token of this suite (its key is in the data directory).
    pub(super) fn internal_token(&self) -> anyhow::Result<String> {
        let mut settings = crate::settings::SuiteSettings::load(None)?;
        settings.data_dir = self.data.clone();
        Ok(settings.internal_tokens()?.mint_until(
            "service:bench",
            chrono::Utc::now() + chrono::Duration::hours(1),
        ))
    }

    pub(super) async fn stop(self) {
        self.process.stop().await;
    }
}

/// Runs the scenario.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let suite = DemoSuite::start().await?;
    let (echo_process, echo) = Process::start(&["bench", "bare-echo"], &[], |line: &str| {
        line.strip_prefix("listening on ").map(str::to_owned)
    })
    .await?;
    let result = measure(args, &suite, &echo).await;
    echo_process.stop().await;
    suite.stop().await;
    result
}

async fn measure(args: &BenchArgs, suite: &DemoSuite, echo: &str) -> anyhow::Result<Report> {
    let gateway_addr = suite.addr("gateway")?;
    let echo_addr = echo.parse().context("the echo's address")?;
    let ida = suite.sign_in("ida").await?.0;
    let alice = suite.sign_in("alice").await?.0;
    let erin = suite.sign_in("erin").await?.0;
    // The cast as `ccp up --demo` loads it: Ida edits ITN's RM0001, Alice
    // manages ABC; ITN's request to ABC and Erin's to ABC are pending.
    let questions = vec![
        (question(&ida, Action::View, "888316171RM0001"), true),
        (question(&alice, Action::Manage, "123456782"), true),
        (question(&ida, Action::View, "123456782RM0001"), false),
        (question(&erin, Action::View, "123456782RM0001"), false),
    ];
    let expected: Vec<bool> = questions.iter().map(|(_, allow)| *allow).collect();
    let token = suite.internal_token()?.parse()?;
    let base = Load::new(questions.into_iter().map(|(q, _)| q).collect(), token);
    let gw = base.on(channels(gateway_addr, args.connections()).await?);
    let ec = base.on(channels(echo_addr, args.connections()).await?);

    let wrong_before = wrong_answers(&gw, &expected).await?;
    // The echo answers ALLOW to every question: only its status counts.
    for i in 0..expected.len() {
        ec.call(0, i as u64)
            .await
            .with_context(|| format!("the echo, question {i}"))?;
    }
    anyhow::ensure!(
        wrong_before == 0,
        "{wrong_before} wrong decisions before the runs"
    );

    let rounds = if args.quick { 3 } else { 5 };
    let mut echo_rounds: Vec<RunReport> = Vec::new();
    let mut gateway_rounds: Vec<RunReport> = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first, so neither always gets the cooler machine.
        if round % 2 == 0 {
            echo_rounds.push(closed(&ec, args).await);
            gateway_rounds.push(closed(&gw, args).await);
        } else {
            gateway_rounds.push(closed(&gw, args).await);
            echo_rounds.push(closed(&ec, args).await);
        }
    }
    let mut echo_rps: Vec<f64> = echo_rounds.iter().map(|r| r.rps).collect();
    let mut gateway_rps: Vec<f64> = gateway_rounds.iter().map(|r| r.rps).collect();
    let mut ratios: Vec<f64> = gateway_rps
        .iter()
        .zip(&echo_rps)
        .map(|(g, e)| if *e > 0.0 { g / e } else { 0.0 })
        .collect();
    let (ratio_min, ratio_max) = spread(&ratios);
    let ratio = median(&mut ratios);
    let gateway_max = median(&mut gateway_rps);
    let echo_max = median(&mut echo_rps);
    let rate = ((gateway_max / 3.0).round() as u64).max(1);
    let (check_open, echo_open) = open_interleaved(&gw, &ec, args, rate).await;

    let wrong_after = wrong_answers(&gw, &expected).await?;
    let errors: u64 = echo_rounds
        .iter()
        .chain(&gateway_rounds)
        .map(|r| r.errors)
        .sum::<u64>()
        + check_open.errors
        + echo_open.errors;
    let p99_ratio = if echo_open.p99_ms > 0.0 {
        check_open.p99_ms / echo_open.p99_ms
    } else {
        0.0
    };
    let json = json!({
        "scenario": "check",
        "process": "out-of-process (gateway: ccp up --demo; baseline: bare tonic echo; load: this process)",
        "quick": args.quick,
        "connections": args.connections(),
        "concurrency": args.concurrency(),
        "duration_s": args.duration().as_secs_f64(),
        "rounds": rounds,
        "echo_rps": echo_max,
        "check_rps": gateway_max,
        "ratio": ratio,
        "ratio_min": ratio_min,
        "ratio_max": ratio_max,
        "echo_rps_rounds": echo_rounds.iter().map(|r| r.rps).collect::<Vec<_>>(),
        "check_rps_rounds": gateway_rounds.iter().map(|r| r.rps).collect::<Vec<_>>(),
        "rate": rate,
        "p50_ms": check_open.p50_ms,
        "p99_ms": check_open.p99_ms,
        "echo_p50_ms": echo_open.p50_ms,
        "echo_p99_ms": echo_open.p99_ms,
        "p99_ratio": p99_ratio,
        "wrong_decisions": wrong_before + wrong_after,
        "errors": errors,
    });
    let row = |lp: String, target: &str, r: &RunReport| {
        vec![
            lp,
            target.to_owned(),
            format!("{:.0}", r.rps),
            format!("{:.3}", r.p50_ms),
            format!("{:.3}", r.p99_ms),
            r.errors.to_string(),
        ]
    };
    let mut rows = Vec::new();
    for (i, (e, g)) in echo_rounds.iter().zip(&gateway_rounds).enumerate() {
        rows.push(row(format!("closed, round {}", i + 1), "bare echo", e));
        rows.push(row(format!("closed, round {}", i + 1), "gateway Check", g));
    }
    rows.push(row(format!("open {rate}/s"), "bare echo", &echo_open));
    rows.push(row(format!("open {rate}/s"), "gateway Check", &check_open));
    Ok(Report {
        headers: vec!["loop", "target", "rps", "p50 ms", "p99 ms", "errors"],
        rows,
        notes: vec![
            format!(
                "out of process: ratio (Check/bare echo closed-loop rps, median of {rounds}) = {ratio:.2} (rounds {ratio_min:.2}–{ratio_max:.2}); p99 ratio (open loop) = {p99_ratio:.2}"
            ),
            format!(
                "decisions checked before and after: {} wrong; {errors} errors",
                wrong_before + wrong_after
            ),
        ],
        json,
    })
}
