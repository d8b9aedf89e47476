//! Smoke test of `ccp bench`: each quick scenario runs in-process with the
//! shortest durations and reports sane fields (rates positive, no errors,
//! p50 ≤ p99). No timing is asserted. `revocation` runs when Redis is
//! configured (`CCP_TEST_REDIS_URL` or `CCP_BENCH_REDIS_URL`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ccp::bench::{BenchArgs, Scenario};
use serde_json::Value;

fn args(scenario: Scenario) -> BenchArgs {
    BenchArgs {
        scenario,
        quick: true,
        json: true,
        distributed: false,
        connections: Some(1),
        concurrency: Some(4),
        warmup_ms: Some(50),
        duration_ms: Some(300),
        rounds: Some(2),
    }
}

fn num(json: &Value, key: &str) -> f64 {
    json.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{key} missing or not a number in {json}"))
}

async fn run(scenario: Scenario) -> Value {
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        ccp::bench::run(&args(scenario)),
    )
    .await
    .expect("the scenario stops by itself")
    .expect("the scenario runs");
    assert!(!report.table().is_empty());
    // The JSON line is one object that round-trips.
    let line = serde_json::to_string(&report.json).unwrap();
    assert!(!line.contains('\n'));
    serde_json::from_str(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_sane_fields() {
    let json = run(Scenario::Check).await;
    for key in ["echo_rps", "check_rps", "ratio", "rate"] {
        assert!(num(&json, key) > 0.0, "{key} > 0 in {json}");
    }
    assert!(num(&json, "p50_ms") <= num(&json, "p99_ms"), "{json}");
    assert!(num(&json, "p99_ms") <= num(&json, "p999_ms"), "{json}");
    assert!(num(&json, "echo_p99_ms") > 0.0 && num(&json, "p99_ratio") > 0.0);
    let hit_rate = num(&json, "hit_rate");
    assert!((0.0..=1.0).contains(&hit_rate), "{json}");
    assert_eq!(num(&json, "errors"), 0.0, "{json}");
    assert_eq!(num(&json, "unexpected_decisions"), 0.0, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_reports_sane_fields() {
    let json = run(Scenario::Proxy).await;
    for key in ["direct_rps", "gateway_rps", "ratio_p50"] {
        assert!(num(&json, key) > 0.0, "{key} > 0 in {json}");
    }
    assert!(num(&json, "direct_p50_ms") <= num(&json, "direct_p99_ms"));
    assert!(num(&json, "gateway_p50_ms") <= num(&json, "gateway_p99_ms"));
    assert_eq!(num(&json, "errors"), 0.0, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reports_sane_fields_when_redis_is_configured() {
    if ccp::bench::distributed::redis_url().is_none() {
        eprintln!("skipped: no Redis configured (CCP_TEST_REDIS_URL)");
        return;
    }
    let json = run(Scenario::Revocation).await;
    assert_eq!(num(&json, "rounds"), 2.0);
    assert!(num(&json, "p50_ms") > 0.0 && num(&json, "p50_ms") <= num(&json, "p99_ms"));
    assert!(num(&json, "p99_ms") <= num(&json, "max_ms"));
    assert_eq!(num(&json, "stale_allows_with_token"), 0.0, "{json}");
    assert_eq!(num(&json, "allows_after_expiry"), 0.0, "{json}");
    assert_eq!(num(&json, "errors"), 0.0, "{json}");
}
