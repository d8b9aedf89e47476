//! Each service's migrations on SQLite and PostgreSQL: every schema migrates
//! in its own PostgreSQL schema with its own migration table, side by side in
//! one database, and migrating again is a no-op.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ccp_platform::config::DatabaseSettings;
use ccp_platform::testing::TestBackend;
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

async fn migrate_twice<M: MigratorTrait>(settings: &DatabaseSettings) -> DatabaseConnection {
    let db = ccp_platform::db::connect_and_migrate::<M>(settings)
        .await
        .expect("first migration");
    assert!(M::get_pending_migrations(&db).await.unwrap().is_empty());
    let again = ccp_platform::db::connect_and_migrate::<M>(settings)
        .await
        .expect("second migration");
    assert!(M::get_applied_migrations(&again).await.unwrap().len() == M::migrations().len());
    db
}

async fn tables_in_schema(db: &DatabaseConnection, schema: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = '{schema}' ORDER BY 1"
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn check(backend: &TestBackend) {
    let identity =
        migrate_twice::<ccp_identity::store::Migrator>(&backend.settings("identity")).await;
    let accounts =
        migrate_twice::<ccp_accounts::store::Migrator>(&backend.settings("accounts")).await;
    let delegation =
        migrate_twice::<ccp_delegation::store::Migrator>(&backend.settings("delegation")).await;
    if let TestBackend::Postgres(_) = backend {
        for (db, schema) in [
            (&identity, "identity"),
            (&accounts, "accounts"),
            (&delegation, "delegation"),
        ] {
            let tables = tables_in_schema(db, schema).await;
            assert!(
                tables.contains(&format!("seaql_migrations_{schema}")),
                "{schema}: {tables:?}"
            );
            assert!(
                tables.contains(&"audit_events".to_owned()),
                "{schema}: {tables:?}"
            );
            let foreign: Vec<_> = tables
                .iter()
                .filter(|t| t.starts_with("seaql_migrations_") && !t.ends_with(schema))
                .collect();
            assert!(
                foreign.is_empty(),
                "{schema} holds another service's migration table: {foreign:?}"
            );
        }
    }
    // Notifications keeps no audit trail: its schema is the sent ledger, the dead letters, the
    // consumers' positions and their leases.
    let notifications =
        migrate_twice::<ccp_notifications::store::Migrator>(&backend.settings("notifications"))
            .await;
    if let TestBackend::Postgres(_) = backend {
        assert_eq!(
            tables_in_schema(&notifications, "notifications").await,
            [
                "consumer_leases",
                "consumer_positions",
                "dead_letters",
                "seaql_migrations_notifications",
                "sent_messages"
            ]
        );
    }
}

#[tokio::test]
async fn every_service_migrates_on_sqlite_idempotently() {
    check(&TestBackend::sqlite()).await;
}

#[tokio::test]
async fn every_service_migrates_on_postgres_in_its_own_schema() {
    let Some(backend) = TestBackend::postgres().await else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL not set");
        return;
    };
    check(&backend).await;
}

/// Runs the built `ccp` with `args` and `env` (nothing else from this
/// process's `CCP_…` environment), bounded, and returns its stdout.
fn run_ccp(args: &[&str], env: &[(&str, String)]) -> String {
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_ccp"));
    command.args(args).stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("CCP_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command.env("CCP_TELEMETRY__LOG_FILTER", "warn");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ccp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().expect("poll ccp").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ccp {} ran longer than 120 s", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("ccp output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "ccp {} failed: {}\n{stdout}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The distributed configuration names only a URL per service (as
/// `deploy/` and the README do): three services on ONE PostgreSQL database
/// must still keep their same-named tables (`outbox_events`, `audit_events`,
/// `idempotency_records`, `revisions`) apart, each in a schema named after
/// it, with nothing in `public`, and the serving path must find its own
/// migrations there.
#[tokio::test]
async fn three_services_sharing_one_postgres_database_by_url_alone_do_not_collide() {
    let Some(database) = ccp_platform::testing::TestDatabase::create().await else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL not set");
        return;
    };
    let url = database.url().to_owned();
    let env = [
        ("CCP_ENVIRONMENT", "production".to_owned()),
        (
            "CCP_INTERNAL_AUTH__KEY",
            ccp_platform::auth::InternalTokens::generate_key(),
        ),
        ("CCP_REDIS__URL", "redis://127.0.0.1:1".to_owned()),
        (
            "CCP_IDENTITY__KEY_ENCRYPTION_KEY",
            ccp_platform::auth::InternalTokens::generate_key(),
        ),
        ("CCP_IDENTITY__DATABASE__URL", url.clone()),
        ("CCP_ACCOUNTS__DATABASE__URL", url.clone()),
        ("CCP_DELEGATION__DATABASE__URL", url.clone()),
    ];
    for service in ["identity", "accounts", "delegation"] {
        let out = run_ccp(&["migrate", service], &env);
        assert!(out.contains(&format!("{service}: applied")), "{out}");
        // Twice is a no-op: the second run finds its own migration table.
        let again = run_ccp(&["migrate", service], &env);
        assert!(
            again.contains(&format!("{service}: applied 0 migration(s)")),
            "{again}"
        );
    }
    // The serving path (no migration on start) sees identity's schema as up to date.
    let rotated = run_ccp(&["keys", "rotate"], &env);
    assert!(rotated.contains("new active signing key"), "{rotated}");

    let db = sea_orm_migration::sea_orm::Database::connect(&url)
        .await
        .expect("connect to the shared database");
    assert!(
        tables_in_schema(&db, "public").await.is_empty(),
        "nothing lands in public"
    );
    for schema in ["identity", "accounts", "delegation"] {
        let tables = tables_in_schema(&db, schema).await;
        for shared in [
            "outbox_events",
            "audit_events",
            "idempotency_records",
            "revisions",
        ] {
            assert!(
                tables.contains(&shared.to_owned()),
                "{schema} lacks {shared}: {tables:?}"
            );
        }
        assert!(
            tables.contains(&format!("seaql_migrations_{schema}")),
            "{schema}: {tables:?}"
        );
    }
    let _ = db.close().await;
}

/// Rolling back the application after a release migrated the schema: the
/// older binary's `ccp migrate` has nothing to do and its services start on
/// the expanded schema (sea-orm's own check would refuse a migration it does
/// not know).
async fn rolled_back_release_runs_on_a_newer_schema(backend: &TestBackend) {
    let settings = backend.settings("accounts");
    let db = ccp_platform::db::connect_and_migrate::<ccp_accounts::store::Migrator>(&settings)
        .await
        .unwrap();
    db.execute_unprepared(
        "INSERT INTO seaql_migrations_accounts (version, applied_at) VALUES ('m9999_from_a_newer_release', 0)",
    )
    .await
    .unwrap();
    let state = ccp_platform::db::migration_state::<ccp_accounts::store::Migrator>(&db)
        .await
        .unwrap();
    assert!(state.pending.is_empty(), "{state:?}");
    assert_eq!(state.newer, ["m9999_from_a_newer_release"]);
    let serving = DatabaseSettings {
        migrate_on_start: false,
        ..settings
    };
    ccp_platform::db::connect_for_service::<ccp_accounts::store::Migrator>(&serving)
        .await
        .expect("the older release starts on the newer schema");
}

#[tokio::test]
async fn a_rolled_back_release_starts_on_a_newer_sqlite_schema() {
    rolled_back_release_runs_on_a_newer_schema(&TestBackend::sqlite()).await;
}

#[tokio::test]
async fn a_rolled_back_release_starts_on_a_newer_postgres_schema() {
    let Some(backend) = TestBackend::postgres().await else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL not set");
        return;
    };
    rolled_back_release_runs_on_a_newer_schema(&backend).await;
}
