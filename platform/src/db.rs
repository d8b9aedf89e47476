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

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, FromQueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
    Value,
};
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

/// PostgreSQL's `plan_cache_mode` inside [`begin_planned_with_values`].
pub const PLAN_CACHE_MODE: &str = "force_custom_plan";

/// Connects to the database the settings name. For PostgreSQL with a schema,
/// the schema is created if missing and becomes the search path of every
/// pooled connection, and statements are never planned in parallel. SQLite
/// files are created if missing and use WAL with a busy timeout, foreign
/// keys on.
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
        // No parallel plans: a service's queries are short index reads, and PostgreSQL
        // planned accounts' BatchGetBusinessFacts (≈333 BN9s) as a Gather Merge whose workers'
        // start-up made it 33–66 ms against 5 ms serial at 1M businesses. Statements stay
        // prepared, and PostgreSQL chooses their plans (`auto`): a point read re-planned on
        // every run spends most of its time planning. Statements over data skewed by tenant
        // run in [`begin_planned_with_values`].
        options.map_sqlx_postgres_opts(|opts| {
            opts.options([("max_parallel_workers_per_gather", "0")])
        });
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

/// Opens a transaction that will write. On SQLite it takes the write lock at
/// BEGIN (IMMEDIATE), waiting the busy timeout for another writer: a deferred
/// transaction that reads first holds a snapshot, and when another connection
/// (a replica, the outbox relay) commits before its first write, that write
/// fails at once with SQLITE_BUSY_SNAPSHOT instead of waiting. PostgreSQL
/// begins as usual (its row locks order the writers).
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Opens a read transaction whose statements PostgreSQL plans with their
/// values on every run (`SET LOCAL plan_cache_mode = force_custom_plan`), for
/// statements over data skewed by tenant: a broker with 50k clients among
/// providers with a handful. After five runs PostgreSQL may switch a prepared
/// statement to a generic plan costed for the average tenant, which for
/// delegation's "this provider's pairs with these 1 000 clients" read all 50k
/// of the broker's rows per page (0.4–0.6 s at 20k clients). Only there:
/// planning a point read costs several times its execution (0.3 ms against
/// 0.05 ms for delegation's assignment lookup). SQLite: a plain transaction.
pub async fn begin_planned_with_values(
    db: &DatabaseConnection,
) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SET LOCAL plan_cache_mode = {PLAN_CACHE_MODE}"))
            .await?;
    }
    Ok(txn)
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
    let pool = settings.schema.as_deref().unwrap_or("default");
    if settings.migrate_on_start {
        let db = connect_and_migrate::<M>(settings).await?;
        crate::metrics::watch_pool(pool, settings.max_connections, &db);
        return Ok(db);
    }
    let db = connect(settings).await?;
    crate::metrics::watch_pool(pool, settings.max_connections, &db);
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
                // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes
                // (BUSY_RECOVERY 261, BUSY_SNAPSHOT 517, BUSY_TIMEOUT 773, LOCKED_SHAREDCACHE 262).
                || matches!(code.as_ref(), "5" | "6" | "261" | "517" | "773" | "262")
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
    recorder::note(sql, &values);
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
    recorder::note(sql, &values);
    T::find_by_statement(statement(db, sql, values))
        .one(db)
        .await
}

/// The queries a process ran through [`all`] and [`one`], each SQL text once with the values of
/// its first run after [`recorder::start`]: `ccp bench scale` EXPLAINs them at its large size
/// (the plans the facts queries get at 1M rows). Off unless started; then one relaxed atomic
/// load per query.
pub mod recorder {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use sea_orm::Value;

    static ON: AtomicBool = AtomicBool::new(false);
    static SEEN: Mutex<Vec<Recorded>> = Mutex::new(Vec::new());

    /// The most distinct statements kept (a bound: the stores have a few dozen).
    const MAX: usize = 500;

    /// One recorded query.
    #[derive(Debug, Clone)]
    pub struct Recorded {
        /// Its SQL, with `$n` placeholders.
        pub sql: String,
        /// The values of its first run.
        pub values: Vec<Value>,
    }

    /// Starts recording (forgetting what was recorded before).
    pub fn start() {
        SEEN.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        ON.store(true, Ordering::Relaxed);
    }

    /// Stops recording and returns what was recorded.
    pub fn take() -> Vec<Recorded> {
        ON.store(false, Ordering::Relaxed);
        std::mem::take(
            &mut *SEEN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub(super) fn note(sql: &str, values: &[Value]) {
        if !ON.load(Ordering::Relaxed) {
            return;
        }
        let mut seen = SEEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() < MAX && !seen.iter().any(|r| r.sql == sql) {
            seen.push(Recorded {
                sql: sql.to_owned(),
                values: values.to_vec(),
            });
        }
    }
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

/// Returns a readiness probe of `db` for [`crate::server::GrpcServer::readiness`]:
/// true while the database answers a ping within two seconds.
pub fn readiness_probe(
    db: sea_orm::DatabaseConnection,
) -> impl Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync + 'static {
    move || {
        let db = db.clone();
        Box::pin(async move {
            matches!(
                tokio::time::timeout(std::time::Duration::from_secs(2), db.ping()).await,
                Ok(Ok(()))
            )
        })
    }
}
