//! Database connection and migration for SQLite (embedded) and PostgreSQL
//! (production), with a schema and a migration table per service.
//!
//! Services connect with [`DatabaseSettings::for_service`], so on PostgreSQL
//! each one's tables live in a schema of its own name unless the
//! configuration names another: several services may share one database
//! (their tables `outbox_events`, `audit_events`, `idempotency_records` and
//! `revisions` have the same names) without meeting. SQLite is a file per
//! service already.

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
        ensure_schema(&db, schema).await?;
    }
    Ok(db)
}

/// Creates the PostgreSQL schema when it is missing. An existing schema is
/// left alone without asking for CREATE on the database (a serving role
/// that only owns its schema connects fine), and a schema created by a
/// concurrent process (two replicas, a migration job) between the check and
/// the CREATE counts as created.
async fn ensure_schema(db: &DatabaseConnection, schema: &str) -> anyhow::Result<()> {
    use sea_orm::Statement;
    anyhow::ensure!(
        !schema.is_empty()
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "schema {schema:?} must be lowercase letters, digits and underscores"
    );
    let exists = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            [schema.into()],
        ))
        .await?
        .is_some();
    if exists {
        return Ok(());
    }
    // The name is validated (lowercase letters, digits, underscores) and quoted.
    match db
        .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Ok(()),
        Err(err) => Err(anyhow::Error::new(err).context(format!(
            "cannot create schema {schema} (create it beforehand, owned by the service's role, or grant CREATE on the database)"
        ))),
    }
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
