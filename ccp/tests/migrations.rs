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
