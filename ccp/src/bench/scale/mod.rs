//! `ccp bench scale`: does the Check path hold up when the services' tables
//! are big? The services run on PostgreSQL (a fresh database per service,
//! dropped at the end, also on failure). A few real principals are seeded
//! through the services' RPCs (a broker with a BAM and an employee assigned
//! through a client group, an importer, a stranger); then bulk rows go
//! straight into the accounts and delegation schemas with server-side
//! `INSERT … SELECT … FROM generate_series` (BN9s with their Luhn check digit
//! computed in SQL), one transaction per service, followed by `VACUUM
//! (ANALYZE)` (as a bulk load would be: statistics for the planner, hint bits
//! and visibility map set, so no autovacuum starts on the fresh rows while
//! the checks run):
//!
//! 1. the small size (1k relationships), then Check p99 cold (questions whose
//!    principals and pairs were never asked: every fact is read from the
//!    services) and warm (the same questions again, five times: every fact
//!    cached);
//! 2. the large size (1M relationships in all, 100k with `--quick`), same
//!    measurement on principals never asked before; then the facts RPCs a
//!    cold Check needs (`GetRoleFacts`, `GetAssignmentFacts`,
//!    `GetPairFacts`), called directly on accounts and delegation about
//!    businesses nobody asked about yet, so the cold Check's p50 can be set
//!    against the slowest of them;
//! 3. ListAccessible paged to the end for the broker with 50k clients (5k
//!    with `--quick`): its BAM, then its employee, assigned to every client
//!    through one client group;
//! 4. the process's resident memory (VmRSS: the services, the gateway and
//!    this harness share the process).
//!
//! Every answer is checked against the decision the bulk data implies.

mod calls;
mod data;
mod direct;
mod explain;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ccp_platform::context::ServiceContext;
use ccp_proto::common::v1::Action;
use serde_json::json;

use crate::bench::distributed::{BenchDatabases, database_url};
use crate::bench::harness::{Embedded, Gateway, Seeder, bench_settings, channels};
use crate::bench::mix::Rng;
use crate::bench::{BenchArgs, Report};

/// The seed of the large size's cold questions.
const LARGE_SEED: u64 = 0x1A26E;

/// The seed of the businesses whose facts are read directly.
const DIRECT_SEED: u64 = 0xD12EC7;

use calls::{
    Caller, LIST_PAGE, Listing, Pass, database_mb, kinds_json, list, listing_note, pass, rss_mb,
    warm,
};
use data::{Block, Dbs, load_size, q, questions, seed};

/// The listings through a gateway in a process of its own, and its memory after them.
struct OwnProcess {
    bam: Listing,
    employee: Listing,
    rss_mb: Option<f64>,
    peak_mb: Option<f64>,
}

/// Starts `ccp serve gateway` on the embedded services (the run's internal key, the facts
/// limit of the in-process gateway), lists for each of `principals` through it and reads its
/// resident memory before stopping it.
#[allow(clippy::too_many_arguments)] // one call site; the listing's own parameters
async fn own_process_listings(
    embedded: &Embedded,
    args: &BenchArgs,
    internal_key: &str,
    facts_max_message_bytes: usize,
    token: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    principals: [&String; 2],
    max_pages: u64,
    deadline: Duration,
) -> anyhow::Result<OwnProcess> {
    let endpoints = embedded.suite.endpoints();
    let url = |addr: std::net::SocketAddr| std::ffi::OsString::from(format!("http://{addr}"));
    let env: Vec<(&str, std::ffi::OsString)> = vec![
        ("CCP_ENVIRONMENT", "test".into()),
        ("CCP_INTERNAL_AUTH__KEY", internal_key.into()),
        ("CCP_GATEWAY__IDENTITY_ENDPOINT", url(endpoints.identity)),
        ("CCP_GATEWAY__ACCOUNTS_ENDPOINT", url(endpoints.accounts)),
        (
            "CCP_GATEWAY__ACCOUNTS_FACTS_ENDPOINT",
            url(endpoints.accounts_facts),
        ),
        (
            "CCP_GATEWAY__DELEGATION_ENDPOINT",
            url(endpoints.delegation),
        ),
        (
            "CCP_GATEWAY__FACTS_MAX_MESSAGE_BYTES",
            facts_max_message_bytes.to_string().into(),
        ),
        ("CCP_TELEMETRY__METRICS_LISTEN", "".into()),
    ];
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let binary = match &args.ccp_binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()?,
    };
    let (process, addr) = crate::bench::outside::Process::start_binary(
        &binary,
        &["serve", "gateway"],
        &env,
        |line: &str| {
            line.strip_prefix("gateway listening on http://")
                .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
        },
    )
    .await?;
    let result = async {
        let caller = Caller {
            channels: Arc::new(channels(addr, args.connections()).await?),
            token: token.clone(),
        };
        let bam = list(&caller, principals[0], max_pages, deadline).await;
        let employee = list(&caller, principals[1], max_pages, deadline).await;
        let (rss_mb, peak_mb) = process.rss_mb();
        anyhow::Ok(OwnProcess {
            bam,
            employee,
            rss_mb,
            peak_mb,
        })
    }
    .await;
    process.stop().await;
    result
}

/// The delegation sweep's reminder queries (sea-orm, so not recorded), as of now.
fn reminder_queries() -> Vec<ccp_platform::db::recorder::Recorded> {
    ccp_delegation::store::REMINDER_COLUMNS
        .into_iter()
        .map(|column| {
            let statement = sea_orm_migration::sea_orm::QueryTrait::build(
                &ccp_delegation::store::due_reminders_query(column, chrono::Utc::now(), "", 100),
                sea_orm_migration::sea_orm::DbBackend::Postgres,
            );
            ccp_platform::db::recorder::Recorded {
                sql: statement.sql,
                values: statement.values.map(|v| v.0).unwrap_or_default(),
            }
        })
        .collect()
}

/// Runs the scenario.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let url = database_url(args.database_url.as_deref()).ok_or_else(|| {
        anyhow::anyhow!(
            "`ccp bench scale` needs PostgreSQL: pass --database-url \
             postgres://USER@HOST:PORT/postgres or set CCP_TEST_DATABASE_URL (or \
             CCP_BENCH_DATABASE_URL), e.g. CCP_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres; \
             the run creates a database per service there and drops them at the end"
        )
    })?;
    let dbs = BenchDatabases::create(&url, &["identity", "accounts", "delegation"]).await?;
    let result = run_on(args, &dbs).await;
    // Drop the run's databases, also when it failed.
    let dropped = dbs.drop_all().await;
    let report = result?;
    dropped?;
    Ok(report)
}

async fn run_on(args: &BenchArgs, dbs: &BenchDatabases) -> anyhow::Result<Report> {
    let mut settings = bench_settings();
    settings.identity.database = dbs.settings("identity")?;
    settings.accounts.database = dbs.settings("accounts")?;
    settings.delegation.database = dbs.settings("delegation")?;
    settings.identity.key_encryption_key =
        secrecy::SecretString::from(ccp_platform::auth::InternalTokens::generate_key());
    // A known internal key: the gateway measured in a process of its own calls the services
    // with it. No Redis: the in-memory bus and cache, as before.
    let internal_key = ccp_platform::auth::InternalTokens::generate_key();
    settings.common.internal_auth.key = internal_key.clone().into();
    settings.common.environment = ccp_platform::config::Environment::Test;
    let context = ServiceContext::from_settings(&settings.common).await?;
    let embedded = Embedded::start(settings, context).await?;
    let result = async {
        let bulk = Dbs {
            accounts: ccp_platform::db::connect(&dbs.settings("accounts")?).await?,
            delegation: ccp_platform::db::connect(&dbs.settings("delegation")?).await?,
        };
        let report = measure(args, &embedded, &bulk, &internal_key).await;
        let _ = bulk.accounts.close().await;
        let _ = bulk.delegation.close().await;
        report
    }
    .await;
    let stopped = embedded.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}

async fn measure(
    args: &BenchArgs,
    embedded: &Embedded,
    bulk: &Dbs,
    internal_key: &str,
) -> anyhow::Result<Report> {
    let run_started = Instant::now();
    let seeder = Seeder::new(embedded).await?;
    let seeded = seed(&seeder).await?;
    let seed_s = run_started.elapsed().as_secs_f64();
    let stranger = seeded.stranger.programs[0].clone();

    let small = Block::new(0, args.small(), 3);
    let broker_clients = args.broker_clients();
    let large_rels = args
        .large()
        .saturating_sub(args.small())
        .saturating_sub(broker_clients);
    // About one business per 5 relationships in all (200k for 1M), and at
    // least one per client of the broker.
    let large = Block::new(
        small.n,
        large_rels,
        (args.large() / 5)
            .saturating_sub(small.n)
            .max(broker_clients),
    );
    let broker_clients = broker_clients.min(large.n);

    // The process before the measured gateway replica starts: the services
    // (seeded, the small size not yet loaded) and this harness.
    let rss_baseline = rss_mb();
    let mut gateway_settings = embedded.settings.clone();
    if let Some(limit) = args.gateway_max_message_bytes {
        gateway_settings.gateway.facts_max_message_bytes = limit;
    }
    let max_message_bytes = gateway_settings.gateway.facts_max_message_bytes;
    let gateway = Gateway::start(
        embedded.suite.context(),
        &gateway_settings,
        embedded.suite.endpoints(),
    )
    .await?;
    let caller = Caller {
        channels: Arc::new(channels(gateway.addr, args.connections()).await?),
        token: seeder.internal().mint("service:bench").parse()?,
    };
    let workers = args.concurrency();
    // Open the measured gateway's channels to accounts and delegation with a
    // question nobody else asks (the stranger's BAM about the importer: no
    // relationship), so the first cold Check does not pay the connections.
    let opening = Arc::new(vec![q(
        seeded.stranger.bam.principal.clone(),
        Action::View,
        seeded.importer.programs[0].clone(),
        String::new(),
        false,
    )]);
    let opened = pass(&caller, &opening, 1).await;

    // Small size.
    let (load_small_s, rows_small) = load_size(bulk, &small, None, &seeded).await?;
    let qs_small = Arc::new(questions(&small, args.checks(), 0x5CA1E, &stranger));
    let small_cold = pass(&caller, &qs_small, workers).await;
    let small_warm = pass(&caller, &warm(&qs_small), workers).await;

    // Large size: new businesses, relationships and people, plus the
    // broker's clients; questions only about people never asked before.
    let (load_large_s, rows_large) =
        load_size(bulk, &large, Some((broker_clients, &seeded)), &seeded).await?;
    let db_mb = database_mb(bulk).await;
    let qs_large = Arc::new(questions(&large, args.checks(), LARGE_SEED, &stranger));
    // The facts queries of the large cold pass and the listings are EXPLAINed below.
    ccp_platform::db::recorder::start();
    let large_cold = pass(&caller, &qs_large, workers).await;
    let large_warm = pass(&caller, &warm(&qs_large), workers).await;
    let rss_checks = rss_mb();
    // The facts RPCs a cold Check needs, called directly about businesses
    // of the large size nobody asked about yet (the cold pass's excluded).
    let asked: std::collections::HashSet<u64> = data::draw(
        &large,
        args.checks().div_ceil(4) as u64,
        &mut Rng::new(LARGE_SEED),
    )
    .into_iter()
    .collect();
    let fresh_businesses: Vec<u64> = data::draw(
        &large,
        (args.checks().div_ceil(4) as u64).saturating_mul(2),
        &mut Rng::new(DIRECT_SEED),
    )
    .into_iter()
    .filter(|p| !asked.contains(p))
    .take(args.checks().div_ceil(4))
    .collect();
    let endpoints = embedded.suite.endpoints();
    let facts_endpoints = Arc::new(direct::FactsEndpoints {
        accounts: channels(endpoints.accounts_facts, 1).await?.remove(0),
        delegation: channels(endpoints.delegation, 1).await?.remove(0),
        token: seeder.internal().mint("service:bench").parse()?,
    });
    let direct = direct::direct_facts(&facts_endpoints, &large, &fresh_businesses, workers).await;
    let slowest_direct_p50 = direct.iter().map(|d| d.p50_ms).fold(0.0_f64, f64::max);

    // The broker's employee, assigned through a group of every broker client,
    // asks about clients of the group, cold (its facts never read before), one
    // at a time: its first Check, then one per client spread over the group.
    let employee_asks = |c: u64| {
        let mut q = data::q(
            seeded.employee.principal.clone(),
            Action::View,
            large.program(c, 1),
            String::new(),
            true,
        );
        q.kind = "employee view group client".to_owned();
        q
    };
    let samples = (args.checks().div_ceil(4) as u64).clamp(1, broker_clients.max(1));
    let employee_first = pass(&caller, &Arc::new(vec![employee_asks(0)]), 1).await;
    let employee_checks = pass(
        &caller,
        &Arc::new(
            (1..=samples)
                .map(|i| employee_asks(i * broker_clients.saturating_sub(1) / samples))
                .collect(),
        ),
        1,
    )
    .await;

    // ListAccessible, paged to the end. The broker's BAM acts for every
    // client (through ListClients, paged): its own business (BN9 + 2
    // programs), then each client's BN9 and its 2 program accounts. The
    // broker's employee (Editor of RM0001, assigned to every client through
    // the one client group): its business and program, then the same.
    let per_client = 3;
    let expected_bam = 3 + per_client * (broker_clients + 1);
    let expected_employee = 2 + per_client * (broker_clients + 1);
    let max_pages = expected_bam / LIST_PAGE as u64 + 20;
    let deadline = if args.quick {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(600)
    };
    // A fresh internal token for each listing: a full run outlives one (`token_ttl_secs`, 300 s).
    let fresh = || -> anyhow::Result<Caller> {
        Ok(Caller {
            channels: caller.channels.clone(),
            token: seeder.internal().mint("service:bench").parse()?,
        })
    };
    let bam = list(&fresh()?, &seeded.broker.bam.principal, max_pages, deadline).await;
    let employee = list(&fresh()?, &seeded.employee.principal, max_pages, deadline).await;
    let rss = rss_mb();
    let mut recorded = ccp_platform::db::recorder::take();
    recorded.extend(reminder_queries());
    let plans = explain::explain(&recorded, &[&bulk.accounts, &bulk.delegation]).await;
    let facts = gateway.facts.stats();
    gateway.stop().await?;

    // The same listings through a gateway in a process of its own (`ccp serve gateway` on the
    // same services, caches empty): its resident memory after them is the gateway's alone.
    let own = own_process_listings(
        embedded,
        args,
        internal_key,
        max_message_bytes,
        &fresh()?.token,
        [&seeded.broker.bam.principal, &seeded.employee.principal],
        max_pages,
        deadline,
    )
    .await;

    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let unexpected = opened.unexpected
        + employee_first.unexpected
        + employee_checks.unexpected
        + small_cold.unexpected
        + small_warm.unexpected
        + large_cold.unexpected
        + large_warm.unexpected
        + u64::from(bam.complete && !bam.ok(expected_bam))
        + u64::from(employee.complete && !employee.ok(expected_employee));
    let errors = opened.errors
        + employee_first.errors
        + employee_checks.errors
        + small_cold.errors
        + small_warm.errors
        + large_cold.errors
        + large_warm.errors
        + direct.iter().map(|d| d.errors).sum::<u64>()
        + u64::from(!bam.complete)
        // The employee's listing failing with an error is reported on its own
        // (`employee_list_error`); stopping short without one is an error here.
        + u64::from(!employee.complete && employee.error.is_none());
    let small_total = small.rels;
    let large_total = small.rels + large.rels + broker_clients + 1;
    let businesses_small = small.n + 3;
    let businesses_large = small.n + large.n + 3;
    let r1 = |x: Option<f64>| x.map(|v| (v * 10.0).round() / 10.0);
    // Resources listed per second of a complete walk, end to end.
    let per_s = |complete: bool, resources: u64, ms: f64| {
        (complete && ms > 0.0).then(|| (resources as f64 * 1000.0 / ms).round())
    };
    let json = json!({
        "scenario": "scale",
        "quick": args.quick,
        "small": small_total,
        "large": large_total,
        "businesses_small": businesses_small,
        "businesses_large": businesses_large,
        "checks": qs_small.len(),
        "checks_large": qs_large.len(),
        "checks_warm": small_warm.answered,
        "concurrency": workers,
        "seed_s": seed_s,
        "load_s_small": load_small_s,
        "load_s_large": load_large_s,
        "rows_small": rows_small,
        "rows_large": rows_large,
        "rows_per_s_large": ratio(rows_large as f64, load_large_s),
        "p99_ms_small": small_cold.p99_ms,
        "p99_ms_large": large_cold.p99_ms,
        "p99_ratio": ratio(large_cold.p99_ms, small_cold.p99_ms),
        "p50_ms_small": small_cold.p50_ms,
        "p90_ms_small": small_cold.p90_ms,
        "p90_ms_large": large_cold.p90_ms,
        "db_mb_large": db_mb,
        "cold_by_kind_small": kinds_json(&small_cold),
        "cold_by_kind_large": kinds_json(&large_cold),
        "p50_ms_large": large_cold.p50_ms,
        "facts_direct_large": direct.iter().map(direct::RpcLatency::json).collect::<Vec<_>>(),
        "facts_direct_slowest_p50_ms": slowest_direct_p50,
        "cold_p50_over_slowest_facts_p50": ratio(large_cold.p50_ms, slowest_direct_p50),
        "facts_direct_errors": direct.iter().map(|d| d.errors).sum::<u64>(),
        "employee_first_check_ms": employee_first.max_ms,
        "employee_checks": employee_checks.answered,
        "employee_check_p50_ms": employee_checks.p50_ms,
        "employee_check_p99_ms": employee_checks.p99_ms,
        "max_ms_small": small_cold.max_ms,
        "max_ms_large": large_cold.max_ms,
    });
    let more = json!({
        "p99_ms_small_warm": small_warm.p99_ms,
        "p99_ms_large_warm": large_warm.p99_ms,
        "p99_ratio_warm": ratio(large_warm.p99_ms, small_warm.p99_ms),
        "p50_ms_small_warm": small_warm.p50_ms,
        "p50_ms_large_warm": large_warm.p50_ms,
    });
    let list = json!({
        "broker_clients": broker_clients + 1,
        "list_ms": bam.complete.then_some(bam.ms),
        "list_pages": bam.pages,
        "list_resources": bam.resources,
        "list_expected": expected_bam,
        "list_first_page_ms": bam.first_page_ms,
        "list_resources_per_s": per_s(bam.complete, bam.resources, bam.ms),
        "list_error": bam.error,
        "employee_list_ok": employee.ok(expected_employee),
        "employee_list_ms": employee.complete.then_some(employee.ms),
        "employee_list_pages": employee.pages,
        "employee_list_resources": employee.resources,
        "employee_list_expected": expected_employee,
        "employee_list_first_page_ms": employee.first_page_ms,
        "employee_list_resources_per_s": per_s(employee.complete, employee.resources, employee.ms),
        "employee_list_error": employee.error,
        "gateway_max_message_bytes": max_message_bytes,
        "rss_mb": r1(rss),
        "rss_baseline_mb": r1(rss_baseline),
        "rss_after_checks_mb": r1(rss_checks),
        "rss_delta_mb": r1(rss.zip(rss_baseline).map(|(a, b)| a - b)),
        "facts_hits": facts.hits,
        "facts_misses": facts.misses,
        "unexpected_decisions": unexpected,
        "errors": errors,
        "pass_s_small_cold": small_cold.seconds,
        "pass_s_large_cold": large_cold.seconds,
        "total_s": run_started.elapsed().as_secs_f64(),
    });
    let own_json = match &own {
        Ok(own) => json!({
            "gateway_process_rss_mb": r1(own.rss_mb),
            "gateway_process_rss_peak_mb": r1(own.peak_mb),
            "gateway_process_list_ms": own.bam.complete.then_some(own.bam.ms),
            "gateway_process_list_resources_per_s": per_s(own.bam.complete, own.bam.resources, own.bam.ms),
            "gateway_process_list_first_page_ms": own.bam.first_page_ms,
            "gateway_process_employee_list_ms": own.employee.complete.then_some(own.employee.ms),
            "gateway_process_employee_list_resources_per_s": per_s(own.employee.complete, own.employee.resources, own.employee.ms),
            "gateway_process_employee_list_first_page_ms": own.employee.first_page_ms,
            "gateway_process_error": null,
        }),
        Err(err) => json!({"gateway_process_error": format!("{err:#}")}),
    };
    let own_complete = own
        .as_ref()
        .is_ok_and(|own| own.bam.ok(expected_bam) && own.employee.ok(expected_employee));
    let mut json = json;
    if let Some(object) = json.as_object_mut() {
        for part in [more, list, plans.json(), own_json] {
            if let serde_json::Value::Object(fields) = part {
                object.extend(fields);
            }
        }
        object.insert(
            "errors".to_owned(),
            json!(errors + u64::from(!own_complete)),
        );
    }
    let row = |name: &str, rels: u64, businesses: u64, load: f64, cold: &Pass, warm: &Pass| {
        vec![
            name.to_owned(),
            rels.to_string(),
            businesses.to_string(),
            format!("{load:.1}"),
            cold.answered.to_string(),
            format!("{:.3}", cold.p50_ms),
            format!("{:.3}", cold.p99_ms),
            format!("{:.3}", warm.p50_ms),
            format!("{:.3}", warm.p99_ms),
            (cold.unexpected + warm.unexpected).to_string(),
            (cold.errors + warm.errors).to_string(),
        ]
    };
    Ok(Report {
        headers: vec![
            "size",
            "relationships",
            "businesses",
            "load s",
            "checks",
            "cold p50 ms",
            "cold p99 ms",
            "warm p50 ms",
            "warm p99 ms",
            "unexpected",
            "errors",
        ],
        rows: vec![
            row(
                "small",
                small_total,
                businesses_small,
                load_small_s,
                &small_cold,
                &small_warm,
            ),
            row(
                "large",
                large_total,
                businesses_large,
                load_large_s,
                &large_cold,
                &large_warm,
            ),
        ],
        notes: vec![
            format!(
                "p99 ratio large/small: cold {:.2}, warm {:.2} (target: within 20%, i.e. ≤ 1.20; BENCHMARKS.md)",
                ratio(large_cold.p99_ms, small_cold.p99_ms),
                ratio(large_warm.p99_ms, small_warm.p99_ms)
            ),
            format!(
                "cold Check p50 at the large size {:.3} ms; the facts RPCs it needs, called directly on people and pairs never asked: {} (cold p50 / slowest p50 = {:.2}; target ≤ 1.5)",
                large_cold.p50_ms,
                direct
                    .iter()
                    .map(|d| format!("{} p50 {:.3} ms", d.rpc, d.p50_ms))
                    .collect::<Vec<_>>()
                    .join(", "),
                ratio(large_cold.p50_ms, slowest_direct_p50)
            ),
            format!(
                "the broker's employee, cold, about clients of its {}-client group: first Check {:.2} ms, then {} Checks p50 {:.3} ms, p99 {:.3} ms",
                broker_clients + 1,
                employee_first.max_ms,
                employee_checks.answered,
                employee_checks.p50_ms,
                employee_checks.p99_ms
            ),
            listing_note("the broker's BAM", &bam, expected_bam),
            listing_note(
                "the broker's employee (assigned through one client group)",
                &employee,
                expected_employee,
            ),
            format!(
                "EXPLAIN ANALYZE of the {} facts queries run at the large size: slowest {:.2} ms; sequential scans over {} rows: {}",
                plans.explained,
                plans.max_ms,
                explain::SCAN_LIMIT,
                if plans.seq_scans.is_empty() {
                    "none".to_owned()
                } else {
                    plans.seq_scans.join("; ")
                }
            ),
            format!(
                "bulk load: small {rows_small} rows in {load_small_s:.1} s, large {rows_large} rows in {load_large_s:.1} s ({:.0} rows/s, incl. VACUUM ANALYZE); databases {:.0} MiB",
                ratio(rows_large as f64, load_large_s),
                db_mb.unwrap_or(0.0)
            ),
            match &own {
                Ok(own) => format!(
                    "gateway in its own process (`ccp serve gateway`): resident {:.0} MiB after both listings (peak {:.0} MiB); BAM's listing {:.0} ms, employee's {:.0} ms",
                    own.rss_mb.unwrap_or(0.0),
                    own.peak_mb.unwrap_or(0.0),
                    own.bam.ms,
                    own.employee.ms
                ),
                Err(err) => format!("gateway in its own process: failed: {err:#}"),
            },
            format!(
                "resident memory (whole process: services, gateway, harness): {:.0} MiB at the end, {:.0} MiB after the checks, {:.0} MiB before the measured gateway started",
                rss.unwrap_or(0.0),
                rss_checks.unwrap_or(0.0),
                rss_baseline.unwrap_or(0.0)
            ),
        ],
        json,
    })
}
