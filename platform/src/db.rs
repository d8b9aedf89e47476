//! Database connection and migration for SQLite (embedded) and PostgreSQL
//! (production), with a schema and a migration table per service.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

/// Connects to the database the settings name. For PostgreSQL with a schema,
/// the schema is created if missing and becomes the search path of every
/// pooled connection. SQLite files are created if missing and use WAL with a
/// busy timeout, foreign keys on.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.url.expose_secret().to_owned();
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.max_connections)
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .acquire_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .sqlx_logging(false);
    if settings.is_postgres() {
        if let Some(schema) = &settings.schema {
            options.set_schema_search_path(schema.clone());
        }
    } else {
        options.map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    }
    let db = Database::connect(options).await?;
    if let (true, Some(schema)) = (settings.is_postgres(), &settings.schema) {
        db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await?;
    }
    Ok(db)
}

/// Connects and applies every pending migration of `M`.
pub async fn connect_and_migrate<M: MigratorTrait>(
    settings: &DatabaseSettings,
) -> anyhow::Result<DatabaseConnection> {
    let db = connect(settings).await?;
    M::up(&db, None).await?;
    Ok(db)
}

/// Connects for serving: migrates when `migrate_on_start` is set, and
/// otherwise refuses to start while migrations are pending (run `ccp migrate`).
pub async fn connect_for_service<M: MigratorTrait>(
    settings: &DatabaseSettings,
) -> anyhow::Result<DatabaseConnection> {
    if settings.migrate_on_start {
        return connect_and_migrate::<M>(settings).await;
    }
    let db = connect(settings).await?;
    let pending = M::get_pending_migrations(&db).await?;
    if !pending.is_empty() {
        anyhow::bail!(
            "{} migration(s) pending; run `ccp migrate` first (or set database.migrate_on_start)",
            pending.len()
        );
    }
    Ok(db)
}

/// Returns true when the error is a unique-constraint violation.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Returns true when the error is a serialization failure or deadlock that a
/// retry may resolve (PostgreSQL 40001/40P01, SQLite busy/locked).
pub fn is_retryable(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("40001")
        || text.contains("40P01")
        || text.contains("could not serialize")
        || text.contains("deadlock detected")
        || text.contains("database is locked")
        || text.contains("SQLITE_BUSY")
}

/// Returns the backend of a connection.
pub fn backend(db: &DatabaseConnection) -> DbBackend {
    db.get_database_backend()
}
