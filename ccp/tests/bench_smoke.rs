//! Smoke test of `ccp bench`: each quick scenario runs in-process with the
//! shortest durations and reports sane fields (rates positive, no errors,
//! p50 ≤ p99). No timing is asserted. `revocation` runs when Redis is
//! configured (`CCP_TEST_REDIS_URL` or `CCP_BENCH_REDIS_URL`); `scale` runs
//! with tiny sizes when PostgreSQL is (`CCP_TEST_DATABASE_URL`), and both
//! fail loudly in CI when theirs is not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ccp::bench::{BenchArgs, Scenario};
use serde_json::Value;

fn args(scenario: Scenario) -> BenchArgs {
    BenchArgs {
        scenario,
        quick: true,
        json: true,
        distributed: false,
        out_of_process: false,
        connections: Some(1),
        concurrency: Some(4),
        warmup_ms: Some(50),
        duration_ms: Some(300),
        rounds: Some(2),
        database_url: None,
        small: None,
        large: None,
        broker_clients: None,
        checks: None,
        gateway_max_message_bytes: None,
        ccp_binary: Some(env!("CARGO_BIN_EXE_ccp").into()),
    }
}

fn num(json: &Value, key: &str) -> f64 {
    json.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{key} missing or not a number in {json}"))
}

async fn run(scenario: Scenario) -> Value {
    run_with(args(scenario)).await
}

async fn run_with(args: BenchArgs) -> Value {
    let report = tokio::time::timeout(std::time::Duration::from_secs(120), ccp::bench::run(&args))
        .await
        .expect("the scenario stops by itself")
        .expect("the scenario runs");
    assert!(!report.table().is_empty());
    // The JSON line is one object that round-trips.
    let line = serde_json::to_string(&report.json).unwrap();
    assert!(!line.contains('\n'));
    serde_json::from_str(&line).unwrap()
}

/// Runs `ccp bench <scenario> --out-of-process --quick --json` with short
/// rounds and returns its JSON line, once it says it ran out of process.
fn out_of_process(scenario: &str, concurrency: &str) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ccp"))
        .args([
            "bench",
            scenario,
            "--out-of-process",
            "--quick",
            "--json",
            "--connections",
            "1",
            "--concurrency",
            concurrency,
            "--warmup-ms",
            "50",
            "--duration-ms",
            "300",
        ])
        .env_remove("CCP_STATE_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(
        json["process"]
            .as_str()
            .unwrap()
            .starts_with("out-of-process"),
        "{json}"
    );
    json
}

/// The out-of-process form runs the built `ccp` three times over (the
/// gateway's `ccp up --demo`, the bare echo, and the load generator).
#[test]
fn check_out_of_process_reports_both_processes_and_checks_decisions() {
    let json = out_of_process("check", "4");
    for key in ["echo_rps", "check_rps", "ratio", "rate", "p99_ratio"] {
        assert!(num(&json, key) > 0.0, "{key} > 0 in {json}");
    }
    assert_eq!(num(&json, "wrong_decisions"), 0.0, "{json}");
    assert_eq!(num(&json, "errors"), 0.0, "{json}");
    assert_eq!(json["check_rps_rounds"].as_array().unwrap().len(), 3);
}

/// The proxy's out-of-process form: `ccp up --demo` in its own process, the
/// load here; both paths answer and the rounds are interleaved.
#[test]
fn proxy_out_of_process_reports_direct_and_gateway_rounds() {
    let json = out_of_process("proxy", "2");
    for key in ["direct_rps", "gateway_rps", "ratio_p50", "ratio_rps"] {
        assert!(num(&json, key) > 0.0, "{key} > 0 in {json}");
    }
    assert_eq!(num(&json, "errors"), 0.0, "{json}");
    assert_eq!(json["gateway_rps_rounds"].as_array().unwrap().len(), 3);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_reports_sane_fields_when_postgres_is_configured() {
    // Panics when CI is set and CCP_TEST_DATABASE_URL is not.
    let Some(url) = ccp_platform::testing::postgres_url() else {
        eprintln!("skipped: no PostgreSQL configured (CCP_TEST_DATABASE_URL)");
        return;
    };
    let json = run_with(BenchArgs {
        database_url: Some(url.clone()),
        small: Some(40),
        large: Some(400),
        broker_clients: Some(60),
        checks: Some(32),
        concurrency: Some(2),
        ..args(Scenario::Scale)
    })
    .await;
    assert_eq!(num(&json, "small"), 40.0, "{json}");
    // The bulk relationships plus the seeded broker–importer one.
    assert_eq!(num(&json, "large"), 401.0, "{json}");
    for key in [
        "p99_ms_small",
        "p99_ms_large",
        "p99_ms_small_warm",
        "p99_ms_large_warm",
        "list_ms",
        "rss_mb",
        "load_s_small",
        "load_s_large",
    ] {
        assert!(num(&json, key) > 0.0, "{key} > 0 in {json}");
    }
    assert!(
        num(&json, "p50_ms_small") <= num(&json, "p99_ms_small"),
        "{json}"
    );
    assert!(
        num(&json, "p50_ms_large") <= num(&json, "p99_ms_large"),
        "{json}"
    );
    assert_eq!(num(&json, "checks"), 32.0, "{json}");
    assert_eq!(num(&json, "checks_large"), 32.0, "{json}");
    assert_eq!(num(&json, "list_resources"), num(&json, "list_expected"));
    assert_eq!(json["employee_list_ok"], Value::Bool(true), "{json}");
    assert!(num(&json, "employee_list_ms") > 0.0, "{json}");
    assert_eq!(num(&json, "unexpected_decisions"), 0.0, "{json}");
    assert_eq!(num(&json, "errors"), 0.0, "{json}");
    // The gateway in its own process listed the same and was measured alone.
    assert_eq!(json["gateway_process_error"], Value::Null, "{json}");
    assert!(num(&json, "gateway_process_rss_mb") > 0.0, "{json}");
    assert!(num(&json, "gateway_process_list_ms") > 0.0, "{json}");
    // Every query the listings and checks ran was explained, by index at this size.
    assert!(num(&json, "explain_queries") >= 5.0, "{json}");
    // The facts RPCs a cold Check needs were called directly, each answered.
    let direct = json["facts_direct_large"]
        .as_array()
        .expect("facts_direct_large");
    let rpcs: Vec<&str> = direct.iter().filter_map(|d| d["rpc"].as_str()).collect();
    assert_eq!(
        rpcs,
        ["GetRoleFacts", "GetAssignmentFacts", "GetPairFacts"],
        "{json}"
    );
    for d in direct {
        assert!(num(d, "calls") > 0.0 && num(d, "p50_ms") > 0.0, "{d}");
    }
    assert_eq!(num(&json, "facts_direct_errors"), 0.0, "{json}");
    assert!(
        num(&json, "cold_p50_over_slowest_facts_p50") > 0.0,
        "{json}"
    );
    // The group employee's cold Checks were asked and answered as expected
    // (a wrong answer counts in unexpected_decisions above).
    assert!(num(&json, "employee_first_check_ms") > 0.0, "{json}");
    assert_eq!(num(&json, "employee_checks"), 8.0, "{json}");
    assert!(
        num(&json, "employee_check_p50_ms") <= num(&json, "employee_check_p99_ms"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_databases_and_redis_keys_are_removed_at_the_end() {
    use ccp::bench::distributed::{BenchDatabases, configure_redis};
    if let Some(url) = ccp_platform::testing::postgres_url() {
        let dbs = BenchDatabases::create(&url, &["accounts", "delegation"])
            .await
            .unwrap();
        let accounts = dbs.url("accounts").unwrap();
        let db = sea_orm_migration::sea_orm::Database::connect(&accounts)
            .await
            .expect("the bench database exists");
        let _ = db.close().await;
        dbs.drop_all().await.unwrap();
        assert!(
            sea_orm_migration::sea_orm::Database::connect(&accounts)
                .await
                .is_err(),
            "{accounts} was dropped"
        );
    } else {
        eprintln!("skipped: no PostgreSQL configured (CCP_TEST_DATABASE_URL)");
    }
    if ccp_platform::testing::redis_url().is_some() {
        let mut settings = ccp::settings::SuiteSettings::default();
        let keys = configure_redis(&mut settings).unwrap();
        let client = redis::Client::open(settings.common.redis.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for i in 0..3 {
            let _: () = redis::cmd("SET")
                .arg(format!("{}k{i}", settings.common.redis.key_prefix))
                .arg("v")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        assert_eq!(keys.delete().await.unwrap(), 3);
        let left: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", settings.common.redis.key_prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
    } else {
        eprintln!("skipped: no Redis configured (CCP_TEST_REDIS_URL)");
    }
}
