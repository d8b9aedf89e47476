//! `ccp bench`: the project's own benchmarks. Each scenario starts what it
//! measures, measures a baseline in the same run, and reports ratios (see
//! BENCHMARKS.md for the targets). Load goes to loopback only; every loop is
//! bounded in time and count.

pub mod check;
pub mod distributed;
pub mod echo;
pub mod harness;
pub mod load;
pub mod mix;
pub mod outside;
pub mod proxy;
pub mod revocation;
pub mod scale;

use std::time::Duration;

use clap::{Args, ValueEnum};

/// A scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Gateway Check vs the bare tonic echo: closed-loop throughput, open-loop latency.
    Check,
    /// A read (GetBusiness) through the gateway vs directly to accounts.
    Proxy,
    /// Three gateway replicas on one Redis: how fast a revocation is seen by all.
    Revocation,
    /// Services on PostgreSQL bulk-loaded with 1k then 1M relationships:
    /// Check p99 (cold and warm) at each size, ListAccessible of a broker
    /// with 50k clients, the process's resident memory.
    Scale,
    /// Serves the bare tonic echo until stopped (the baseline process of
    /// `check --out-of-process`; prints `listening on ADDR`).
    #[value(hide = true)]
    BareEcho,
}

/// `ccp bench <scenario> [options]`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to measure.
    pub scenario: Scenario,
    /// The short form (each scenario under 45 s on a 2-core machine).
    #[arg(long)]
    pub quick: bool,
    /// Also print one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// `check`: run the services on PostgreSQL and the gateway on Redis
    /// (CCP_BENCH_DATABASE_URL / CCP_BENCH_REDIS_URL, else the test URLs).
    #[arg(long)]
    pub distributed: bool,
    /// `check`: the gateway (`ccp up --demo`) and a bare tonic echo each in a
    /// process of its own, this process only generating the load; `proxy`:
    /// the services in `ccp up --demo`, GetBusiness direct and through the
    /// gateway from this process.
    #[arg(long)]
    pub out_of_process: bool,
    /// HTTP/2 connections per target (default 2).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Closed-loop workers (default 32; `proxy`: 4; `scale`: 1, one Check at a time).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Warm-up of each run, ms (default 2000; quick 500).
    #[arg(long)]
    pub warmup_ms: Option<u64>,
    /// Measured time of each run, ms (default 10000; quick 3000).
    #[arg(long)]
    pub duration_ms: Option<u64>,
    /// `revocation`: rounds (default 100; quick 20).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// `scale`, `check --distributed`: the PostgreSQL server to create the
    /// run's databases on (else CCP_BENCH_DATABASE_URL, else
    /// CCP_TEST_DATABASE_URL), e.g. postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long)]
    pub database_url: Option<String>,
    /// `scale`: relationships of the small size (default 1000).
    #[arg(long)]
    pub small: Option<u64>,
    /// `scale`: relationships of the large size (default 1000000; quick 100000).
    #[arg(long)]
    pub large: Option<u64>,
    /// `scale`: clients of the broker whose ListAccessible is paged (default
    /// 50000; quick 5000, so the quick form stays under 45 s).
    #[arg(long)]
    pub broker_clients: Option<u64>,
    /// `scale`: Check questions per size, each asked cold then warm (default 800).
    #[arg(long)]
    pub checks: Option<usize>,
    /// `scale`: the measured gateway's `facts_max_message_bytes` (largest
    /// facts response it accepts; default: the gateway's own, 64 MiB).
    #[arg(long)]
    pub gateway_max_message_bytes: Option<usize>,
    /// The `ccp` binary that child processes run (`scale`'s own-process gateway); this
    /// process's own when unset (a test harness sets the built `ccp`).
    #[arg(skip)]
    pub ccp_binary: Option<std::path::PathBuf>,
}

impl BenchArgs {
    /// Returns the connections per target.
    pub fn connections(&self) -> usize {
        self.connections.unwrap_or(2).clamp(1, 64)
    }

    /// Returns the closed-loop workers.
    pub fn concurrency(&self) -> usize {
        let default = match self.scenario {
            Scenario::Proxy => 4,
            Scenario::Scale => 1,
            Scenario::Check | Scenario::Revocation | Scenario::BareEcho => 32,
        };
        self.concurrency.unwrap_or(default).clamp(1, 1024)
    }

    /// Returns the warm-up of each run.
    pub fn warmup(&self) -> Duration {
        Duration::from_millis(
            self.warmup_ms
                .unwrap_or(if self.quick { 500 } else { 2_000 })
                .min(60_000),
        )
    }

    /// Returns the measured time of each run.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(
            self.duration_ms
                .unwrap_or(if self.quick { 3_000 } else { 10_000 })
                .clamp(10, 600_000),
        )
    }

    /// Returns the bound on requests of one closed-loop run.
    pub fn max_requests(&self) -> u64 {
        50_000_000
    }

    /// Returns the small size of `scale` (relationships).
    pub fn small(&self) -> u64 {
        self.small.unwrap_or(1_000).clamp(1, 10_000_000)
    }

    /// Returns the large size of `scale` (relationships).
    pub fn large(&self) -> u64 {
        self.large
            .unwrap_or(if self.quick { 100_000 } else { 1_000_000 })
            .clamp(1, 20_000_000)
    }

    /// Returns the clients of the `scale` broker.
    pub fn broker_clients(&self) -> u64 {
        self.broker_clients
            .unwrap_or(if self.quick { 5_000 } else { 50_000 })
            .clamp(1, 1_000_000)
    }

    /// Returns the Check questions per size of `scale`.
    pub fn checks(&self) -> usize {
        self.checks.unwrap_or(800).clamp(4, 100_000)
    }

    /// Returns the revocation rounds.
    pub fn rounds(&self) -> usize {
        self.rounds
            .unwrap_or(if self.quick { 20 } else { 100 })
            .clamp(1, 10_000)
    }
}

/// What a scenario reports: a table for people, a JSON object for tools.
#[derive(Debug, Clone)]
pub struct Report {
    /// Column names.
    pub headers: Vec<&'static str>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
    /// The JSON object.
    pub json: serde_json::Value,
}

impl Report {
    /// Returns the table as text.
    pub fn table(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.len());
                }
            }
        }
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut out = vec![line(self.headers.clone())];
        out.push(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        for row in &self.rows {
            out.push(line(row.iter().map(String::as_str).collect()));
        }
        out.extend(self.notes.iter().cloned());
        out.join("\n")
    }
}

/// Runs a scenario and returns its report.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    match args.scenario {
        Scenario::Check if args.out_of_process => outside::run(args).await,
        Scenario::Proxy if args.out_of_process => proxy::run_out_of_process(args).await,
        Scenario::Check => check::run(args).await,
        Scenario::BareEcho => anyhow::bail!("bare-echo serves; it reports nothing"),
        Scenario::Proxy => proxy::run(args).await,
        Scenario::Revocation => revocation::run(args).await,
        Scenario::Scale => scale::run(args).await,
    }
}

/// Runs a scenario and prints its table, then (with `--json`) the JSON object
/// on the last line.
pub async fn run_and_print(args: &BenchArgs) -> anyhow::Result<()> {
    if args.scenario == Scenario::BareEcho {
        return echo::serve_until_stopped().await;
    }
    let report = run(args).await?;
    println!("{}", report.table());
    if args.json {
        println!("{}", serde_json::to_string(&report.json)?);
    }
    Ok(())
}
