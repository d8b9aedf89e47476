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

/// Where a database stands against the migrations of one binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationState {
    /// Migrations of this binary not applied yet.
    pub pending: Vec<String>,
    /// Migrations applied that this binary does not know: a newer release
    /// migrated the schema, and this one runs after a rollback.
    pub newer: Vec<String>,
}

/// Reads which of `M`'s migrations the database has applied, without
/// creating anything (sea-orm's own status check creates the migration table
/// and refuses a schema holding migrations it does not know, which would stop
/// a rolled-back release from starting on the expanded schema).
pub async fn migration_state<M: MigratorTrait>(
    db: &DatabaseConnection,
) -> anyhow::Result<MigrationState> {
    use sea_orm::Statement;
    let table = M::migration_table_name().to_string();
    let manager = sea_orm_migration::SchemaManager::new(db);
    let applied: Vec<String> = if manager.has_table(table.as_str()).await? {
        db.query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT version FROM \"{table}\""),
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let known: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Ok(MigrationState {
        pending: known
            .iter()
            .filter(|m| !applied.contains(m))
            .cloned()
            .collect(),
        newer: applied
            .iter()
            .filter(|m| !known.contains(m))
            .cloned()
            .collect(),
    })
}

/// Connects for serving: migrates when `migrate_on_start` is set, and
/// otherwise refuses to start while migrations are pending (run `ccp
/// migrate`). A schema migrated by a newer release is accepted with a
/// warning: migrations are expand-only, so a rolled-back release still runs.
pub async fn connect_for_service<M: MigratorTrait>(
    settings: &DatabaseSettings,
) -> anyhow::Result<DatabaseConnection> {
    if settings.migrate_on_start {
        return connect_and_migrate::<M>(settings).await;
    }
    let db = connect(settings).await?;
    let state = migration_state::<M>(&db).await?;
    if !state.pending.is_empty() {
        anyhow::bail!(
            "{} migration(s) pending; run `ccp migrate` first (or set database.migrate_on_start)",
            state.pending.len()
        );
    }
    if !state.newer.is_empty() {
        tracing::warn!(
            newer = ?state.newer,
            "the schema has migrations this release does not know (a newer release applied them); running on it"
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
