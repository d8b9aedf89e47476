//! `ccp-reliability`: runs CCP's reliability suite and prints its summary
//! table (see docs/reliability.md). Exit 0 when the bar is met, 1 otherwise.

use std::path::PathBuf;

use ccp_reliability::scenario::{Fault, Form};
use clap::Parser;

/// Injects faults into a distributed CCP deployment under load, on
/// PostgreSQL and Redis it starts itself, and prints one summary table.
#[derive(Debug, Parser)]
#[command(name = "ccp-reliability", version, about)]
struct Cli {
    /// The long form (600 writes, a 45 s load and three faults per scenario);
    /// the default is the quick form CI runs.
    #[arg(long)]
    full: bool,
    /// Only these scenarios (baseline, kill-identity, kill-accounts,
    /// kill-delegation, kill-gateway, postgres-restart, redis-restart,
    /// gateway-restart-redis-down); repeatable.
    #[arg(long, value_name = "SCENARIO")]
    only: Vec<String>,
    /// Writes per scenario (overrides the form's).
    #[arg(long)]
    writes: Option<usize>,
    /// Where the processes' logs go (default: a new temporary directory, kept).
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Also print the report as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut form = if cli.full {
        Form::full()
    } else {
        Form::quick()
    };
    if let Some(writes) = cli.writes {
        form.writes = writes.clamp(1, 100_000);
    }
    let mut faults = Vec::new();
    for slug in &cli.only {
        let fault = Fault::all()
            .into_iter()
            .find(|f| f.slug() == *slug)
            .ok_or_else(|| anyhow::anyhow!("no scenario {slug}"))?;
        faults.push(fault);
    }
    let log_dir = match cli.log_dir {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("ccp-reliability-logs-")
            .tempdir()?
            .keep(),
    };
    eprintln!("reliability: process logs in {}", log_dir.display());
    let report = ccp_reliability::run(form, &faults, &log_dir).await?;
    println!("{}\n\n{}", report.table(), report.notes());
    if cli.json {
        println!("{}", serde_json::to_string(&report.json())?);
    }
    let mut broken = report.violations();
    broken.extend(report.revocation_failures());
    if broken.is_empty() {
        Ok(())
    } else {
        eprintln!(
            "reliability: the bar is not met:\n  {}",
            broken.join("\n  ")
        );
        std::process::exit(1);
    }
}
