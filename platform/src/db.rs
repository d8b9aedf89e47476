//! Database connection and migration for SQLite (embedded) and PostgreSQL
//! (production), with a schema and a migration table per service.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    FromQueryResult, Statement, Value,
};
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

/// Returns true when the error says the database could not be reached or
/// could not finish the statement for a reason a retry may clear: the
/// connection was lost or refused, the pool timed out or closed, the server
/// is shutting down or starting (PostgreSQL classes 08 and 57P0x), or a
/// serialization failure or deadlock ([`is_retryable`]). Such errors answer
/// UNAVAILABLE; everything else is a fault of ours (INTERNAL).
pub fn is_transient(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) => e,
        DbErr::Conn(_) => return true,
        _ => return is_retryable(err),
    };
    match sqlx.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => true,
        Sqlx::Database(db) => {
            let code = db.code().unwrap_or_default();
            code.starts_with("08")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "40001" | "40P01")
                // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
                || matches!(code.as_ref(), "5" | "6" | "261" | "517" | "262")
        }
        _ => is_retryable(err),
    }
}

/// Returns the backend of a connection.
pub fn backend(db: &DatabaseConnection) -> DbBackend {
    db.get_database_backend()
}

/// Builds a statement from SQL with `$n` placeholders, which PostgreSQL takes
/// as is and SQLite as `?n` (rewritten here). For the set-based statements a
/// store keeps as SQL (facts queries, bulk loads); row-by-row work goes
/// through sea-orm entities.
pub fn statement<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs a statement (see [`statement`]) and returns the rows it affected.
pub async fn exec<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    Ok(db
        .execute_raw(statement(db, sql, values))
        .await?
        .rows_affected())
}

/// Runs a query (see [`statement`]) and decodes every row.
pub async fn all<T: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<T>, DbErr> {
    T::find_by_statement(statement(db, sql, values))
        .all(db)
        .await
}

/// Runs a query (see [`statement`]) and decodes its first row, if any.
pub async fn one<T: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<T>, DbErr> {
    T::find_by_statement(statement(db, sql, values))
        .one(db)
        .await
}

/// Returns an instant as the microseconds since the epoch a column stores.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Returns the instant a microseconds column holds; a value out of range is
/// an error naming the table and column, never a default.
pub fn from_micros(value: i64, table: &str, column: &str) -> Result<DateTime<Utc>, DbErr> {
    DateTime::from_timestamp_micros(value)
        .ok_or_else(|| corrupt(table, column, "an instant out of range"))
}

/// Decodes a JSON column; text that does not decode is an error naming the
/// table and column, never a default.
pub fn decode_json<T: serde::de::DeserializeOwned>(
    text: &str,
    table: &str,
    column: &str,
) -> Result<T, DbErr> {
    serde_json::from_str(text).map_err(|_| corrupt(table, column, "JSON that does not decode"))
}

/// Encodes a value for a JSON column.
pub fn encode_json<T: serde::Serialize>(value: &T) -> Result<String, DbErr> {
    serde_json::to_string(value).map_err(|err| DbErr::Custom(format!("encoding JSON: {err}")))
}

/// Decodes a column holding an enum's stored name; an unknown name is an
/// error naming the table and column.
pub fn decode_enum<T: std::str::FromStr>(
    text: &str,
    table: &str,
    column: &str,
) -> Result<T, DbErr> {
    text.parse()
        .map_err(|_| corrupt(table, column, &format!("an unknown value `{text}`")))
}

/// Returns the error for a stored value that does not decode.
pub fn corrupt(table: &str, column: &str, what: &str) -> DbErr {
    DbErr::Type(format!("{table}.{column} holds {what}"))
}
