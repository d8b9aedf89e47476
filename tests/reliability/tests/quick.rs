//! The reliability suite's quick form, as CI runs it (R-GW-4, R-GW-5,
//! R-EV-1): every fault once on a fresh deployment, on PostgreSQL and Redis
//! the suite starts itself. It fails loudly in CI when their binaries are
//! missing, and skips with a message elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ccp_reliability::backends::missing_binaries;
use ccp_reliability::scenario::Form;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_4_r_gw_5_r_ev_1_reliability_quick_form_on_private_postgres_and_redis() {
    let missing = missing_binaries();
    if !missing.is_empty() {
        let in_ci = std::env::var("CI").is_ok_and(|ci| !ci.is_empty());
        assert!(
            !in_ci,
            "CI is set but the reliability suite cannot run: {} missing",
            missing.join(", ")
        );
        eprintln!("skipped: {} missing", missing.join(", "));
        return;
    }
    let logs = tempfile::Builder::new()
        .prefix("ccp-reliability-logs-")
        .tempdir()
        .unwrap();
    let report = ccp_reliability::run(Form::quick(), &[], logs.path())
        .await
        .unwrap();
    println!("{}\n\n{}", report.table(), report.notes());
    println!("{}", report.json());

    // No acknowledged write lost, no INTERNAL/UNKNOWN answer caused by a
    // fault (calls in flight on a killed process excepted), every scenario
    // run and every revocation acknowledged.
    let mut failures = report.violations();
    // R-GW-4: no revoked token accepted and no stale allow (an ALLOW more
    // than 250 ms after the revoking write's acknowledgement, or carrying
    // its revision), whatever happened to Redis or the gateway.
    failures.extend(report.revocation_failures());
    if !failures.is_empty() {
        // Keep the process logs for a look.
        let kept = logs.keep();
        panic!(
            "the reliability bar is not met (process logs in {}):\n  {}",
            kept.display(),
            failures.join("\n  ")
        );
    }
}
