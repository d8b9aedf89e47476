//! `ccp registry import` against a running embedded suite: the demo registry
//! is accepted, bad rows are rejected with the field named, imports are
//! idempotent upserts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ccp::embedded::Suite;
use ccp::registry_cmd::import_file;
use ccp::settings::SuiteSettings;
use ccp_platform::context::ServiceContext;

#[tokio::test]
async fn registry_import_loads_the_demo_registry_and_reports_rejected_rows() {
    let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let mut settings = SuiteSettings {
        data_dir: dir.path().to_owned(),
        ..SuiteSettings::default()
    };
    settings.on_spare_loopback_ports();
    settings.resolve_internal_key(true).unwrap();
    let ctx = ServiceContext::from_settings(&settings.common)
        .await
        .unwrap();
    let suite = Suite::start(settings.clone(), ctx)
        .await
        .expect("suite starts");
    let endpoint = format!("http://{}", suite.endpoints().accounts);

    let demo =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/registry.json");
    let report = import_file(settings.clone(), &demo, Some(endpoint.clone()))
        .await
        .unwrap();
    assert_eq!(report.accepted, 5);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    // Again: an idempotent upsert.
    let report = import_file(settings.clone(), &demo, Some(endpoint.clone()))
        .await
        .unwrap();
    assert_eq!(report.accepted, 5);

    let csv = dir.path().join("registry.csv");
    std::fs::write(
        &csv,
        "bn9,legal_name,line1,line2,city,province,postal_code,country,program_accounts,known_facts\n\
         876543216,Maple Leaf Imports Ltd.,1 Harbour Road,,Vancouver,BC,V6C 3T4,CA,RM0001=Maple Leaf Imports,daily_notice_total|AMOUNT|512.00|Total?|Total ?\n\
         123456789,Bad Check Digit Ltd.,1 Main St,,Ottawa,ON,K1A 0B1,CA,RM0001=Bad,\n\
         555123405,Wrong Program Inc.,1 Main St,,Ottawa,ON,K1A 0B1,CA,RT0001=Payroll,\n",
    )
    .unwrap();
    let report = import_file(settings, &csv, Some(endpoint)).await.unwrap();
    assert_eq!(report.accepted, 1);
    let reasons: Vec<(i32, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, 1);
    assert!(reasons[0].1.starts_with("bn9:"), "{reasons:?}");
    assert!(
        reasons[1].1.starts_with("program_accounts[0].reference:"),
        "{reasons:?}"
    );
    suite.stop().await.expect("suite stops");
}
