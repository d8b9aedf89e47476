//! CCP's reliability suite. It owns PostgreSQL and Redis of its own on spare
//! loopback ports, a fresh distributed deployment per scenario (`ccp serve`
//! processes of the built binary), the bounded write + check load, the
//! faults it injects (kill -9 of each process, PostgreSQL immediate restart,
//! Redis kill and empty restart, gateway restart during a Redis outage) and
//! the one summary table it prints, kept in `docs/reliability.md`.
//!
//! It never touches a server it did not start, and every loop in it is
//! bounded in count and time.

pub mod backends;
pub mod client;
pub mod deployment;
pub mod scenario;
pub mod workload;

use std::path::Path;
use std::time::Duration;

use scenario::{Backends, Fault, Form, Outcome};

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The form it ran.
    pub form: Form,
    /// One outcome per scenario, in order.
    pub outcomes: Vec<Outcome>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

/// Runs `faults` (every scenario when empty) in `form`; process logs go under `log_dir`.
pub async fn run(form: Form, faults: &[Fault], log_dir: &Path) -> anyhow::Result<Report> {
    let started = std::time::Instant::now();
    let missing = backends::missing_binaries();
    anyhow::ensure!(
        missing.is_empty(),
        "the reliability suite needs {}",
        missing.join(", ")
    );
    // Fail before starting anything when the `ccp` binary is not built.
    ccp_e2e::ccp_binary()?;
    let mut backends = Backends::start().await?;
    let faults = if faults.is_empty() {
        Fault::all()
    } else {
        faults.to_vec()
    };
    let mut outcomes = Vec::with_capacity(faults.len());
    for (index, fault) in faults.into_iter().enumerate() {
        eprintln!("reliability: {} …", fault.name());
        let outcome = scenario::run(&mut backends, fault, index, &form, log_dir).await;
        eprintln!(
            "reliability: {} done in {:.1} s{}",
            outcome.scenario,
            outcome.seconds,
            outcome
                .error
                .as_deref()
                .map(|e| format!(" — error: {e}"))
                .unwrap_or_default()
        );
        outcomes.push(outcome);
    }
    Ok(Report {
        form,
        outcomes,
        elapsed: started.elapsed(),
    })
}

fn codes(map: &std::collections::BTreeMap<&'static str, u64>) -> String {
    if map.is_empty() {
        return "—".to_owned();
    }
    map.iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// Returns the summary table (Markdown), one row per scenario.
    pub fn table(&self) -> String {
        let mut lines = vec![
            "| scenario | writes acked | lost | revoked accepted | stale allows | codes seen | in flight on killed process |".to_owned(),
            "|---|---|---|---|---|---|---|".to_owned(),
        ];
        for o in &self.outcomes {
            let scenario = match &o.error {
                Some(_) => format!("{} (**error**)", o.scenario),
                None => o.scenario.clone(),
            };
            lines.push(format!(
                "| {scenario} | {}/{} | {}{} | {} | {} | {} | {} |",
                o.acked,
                o.writes,
                o.lost,
                if o.unverified > 0 {
                    format!(" ({} unverified)", o.unverified)
                } else {
                    String::new()
                },
                o.revoked_accepted,
                o.stale_allows,
                codes(&o.codes),
                codes(&o.in_flight),
            ));
        }
        lines.join("\n")
    }

    /// Returns the notes printed under the table: the form, the revocations
    /// and probes behind the counts, errors.
    pub fn notes(&self) -> String {
        let mut lines = vec![format!(
            "{} form: {} writes and a {} s load per scenario, each fault {}× for {} s; whole run {:.0} s.",
            self.form.name,
            self.form.writes,
            self.form.load.as_secs(),
            self.form.faults,
            self.form.down.as_secs_f64(),
            self.elapsed.as_secs_f64()
        )];
        for o in &self.outcomes {
            lines.push(format!(
                "- {}: {} revocations acknowledged ({} not), {} probes, {:.0} s{}",
                o.scenario,
                o.revocations,
                o.revocations_failed,
                o.probes,
                o.seconds,
                o.error
                    .as_deref()
                    .map(|e| format!("; error: {e}"))
                    .unwrap_or_default()
            ));
            for note in &o.notes {
                lines.push(format!("  - {note}"));
            }
        }
        lines.join("\n")
    }

    /// Returns the report as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "form": self.form.name,
            "seconds": self.elapsed.as_secs_f64(),
            "scenarios": self.outcomes.iter().map(|o| serde_json::json!({
                "scenario": o.scenario,
                "writes": o.writes,
                "acked": o.acked,
                "lost": o.lost,
                "unverified": o.unverified,
                "revocations": o.revocations,
                "revocations_failed": o.revocations_failed,
                "probes": o.probes,
                "revoked_accepted": o.revoked_accepted,
                "stale_allows": o.stale_allows,
                "codes": o.codes,
                "in_flight_on_killed": o.in_flight,
                "internal_or_unknown": o.internal_or_unknown(),
                "notes": o.notes,
                "error": o.error,
                "seconds": o.seconds,
            })).collect::<Vec<_>>(),
        })
    }

    /// Returns what breaks the suite's bar, except what revocations let
    /// through (see [`Report::revocation_failures`]): lost writes, INTERNAL
    /// or UNKNOWN answers not in flight on a killed process, revocations
    /// never acknowledged, scenarios that did not run.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.outcomes {
            if let Some(err) = &o.error {
                out.push(format!("{}: {err}", o.scenario));
            }
            if o.lost > 0 {
                out.push(format!(
                    "{}: {} acknowledged writes lost",
                    o.scenario, o.lost
                ));
            }
            if o.unverified > 0 {
                out.push(format!(
                    "{}: {} acknowledged writes could not be read back",
                    o.scenario, o.unverified
                ));
            }
            if o.internal_or_unknown() > 0 {
                out.push(format!(
                    "{}: {} INTERNAL/UNKNOWN answers not in flight on a killed process",
                    o.scenario,
                    o.internal_or_unknown()
                ));
            }
            if o.error.is_none() && (o.revocations_failed > 0 || o.revocations < 6) {
                out.push(format!(
                    "{}: only {} of 6 revocations acknowledged",
                    o.scenario, o.revocations
                ));
            }
        }
        out
    }

    /// Returns the scenarios that accepted revoked tokens or answered stale
    /// allows (R-GW-4), with the counts.
    pub fn revocation_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.outcomes {
            if o.revoked_accepted > 0 {
                out.push(format!(
                    "{}: {} revoked tokens accepted",
                    o.scenario, o.revoked_accepted
                ));
            }
            if o.stale_allows > 0 {
                out.push(format!("{}: {} stale allows", o.scenario, o.stale_allows));
            }
        }
        out
    }
}
