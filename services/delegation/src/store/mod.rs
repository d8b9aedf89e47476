//! This service's schema: migrations and repositories. Queries are portable
//! SQL over SQLite and PostgreSQL; rows never leave this module as sea-orm
//! models, only as the plain records below.

pub mod migration;

pub use migration::Migrator;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, Value};

/// Returns microseconds since the epoch.
pub fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Returns the instant of microseconds since the epoch.
pub fn from_us(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

/// Builds a statement from SQL with `$n` placeholders (rewritten to `?n` on SQLite).
fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

async fn exec<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    let s = stmt(db.get_database_backend(), sql, values);
    Ok(db.execute_raw(s).await?.rows_affected())
}

async fn all<C: ConnectionTrait, T: FromQueryResult>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<T>, DbErr> {
    let s = stmt(db.get_database_backend(), sql, values);
    T::find_by_statement(s).all(db).await
}

async fn one<C: ConnectionTrait, T: FromQueryResult>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<T>, DbErr> {
    let s = stmt(db.get_database_backend(), sql, values);
    T::find_by_statement(s).one(db).await
}

/// Encodes a list of strings for a TEXT column.
pub fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// Decodes a list of strings from a TEXT column.
pub fn decode_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

// ---------------------------------------------------------------- requests

/// A stored relationship request.
#[derive(Debug, Clone, FromQueryResult)]
pub struct RequestRow {
    /// Uuid.
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Client BN9.
    pub client: String,
    /// JSON list of BN15s.
    pub program_accounts: String,
    /// Note.
    pub note: String,
    /// Stored state.
    pub state: String,
    /// Sender principal.
    pub sender: String,
    /// Created.
    pub create_us: i64,
    /// Visible since.
    pub visible_us: Option<i64>,
    /// Expires.
    pub expire_us: Option<i64>,
    /// Decided.
    pub decide_us: Option<i64>,
    /// Decider.
    pub decided_by: String,
    /// Rejection reason.
    pub reject_reason: String,
    /// Relationship created by approval.
    pub relationship_id: String,
}

const REQUEST_COLS: &str = "id, provider, client, program_accounts, note, state, sender, create_us, \
     visible_us, expire_us, decide_us, decided_by, reject_reason, relationship_id";

/// Inserts a request.
pub async fn insert_request<C: ConnectionTrait>(db: &C, r: &RequestRow) -> Result<(), DbErr> {
    exec(
        db,
        &format!(
            "INSERT INTO relationship_requests ({REQUEST_COLS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ),
        vec![
            r.id.clone().into(),
            r.provider.clone().into(),
            r.client.clone().into(),
            r.program_accounts.clone().into(),
            r.note.clone().into(),
            r.state.clone().into(),
            r.sender.clone().into(),
            r.create_us.into(),
            r.visible_us.into(),
            r.expire_us.into(),
            r.decide_us.into(),
            r.decided_by.clone().into(),
            r.reject_reason.clone().into(),
            r.relationship_id.clone().into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Returns a request by id.
pub async fn get_request<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<RequestRow>, DbErr> {
    one(
        db,
        &format!("SELECT {REQUEST_COLS} FROM relationship_requests WHERE id = $1"),
        vec![id.into()],
    )
    .await
}

/// Returns the stored-pending request of a pair, if any.
pub async fn pending_request_of_pair<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    client: &str,
) -> Result<Option<RequestRow>, DbErr> {
    one(
        db,
        &format!(
            "SELECT {REQUEST_COLS} FROM relationship_requests \
             WHERE provider = $1 AND client = $2 AND state = 'PENDING'"
        ),
        vec![provider.into(), client.into()],
    )
    .await
}

/// Records a decision on a request still stored as pending; returns false
/// when it was no longer pending.
pub async fn decide_request<C: ConnectionTrait>(
    db: &C,
    id: &str,
    state: &str,
    decide_us: i64,
    decided_by: &str,
    reject_reason: &str,
    relationship_id: &str,
) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE relationship_requests SET state = $2, decide_us = $3, decided_by = $4, \
         reject_reason = $5, relationship_id = $6 WHERE id = $1 AND state = 'PENDING'",
        vec![
            id.into(),
            state.into(),
            decide_us.into(),
            decided_by.into(),
            reject_reason.into(),
            relationship_id.into(),
        ],
    )
    .await?;
    Ok(n == 1)
}

/// Which requests to list.
#[derive(Debug, Clone)]
pub struct RequestFilter {
    /// `client` or `provider`.
    pub side_column: &'static str,
    /// The business.
    pub business: String,
    /// Only visible ones (client side).
    pub visible_only: bool,
    /// The state as seen now, or None for all.
    pub state: Option<&'static str>,
    /// Now, in microseconds.
    pub now_us: i64,
    /// Continue after this id.
    pub after: Option<String>,
    /// At most this many.
    pub limit: u64,
}

/// Lists requests oldest first (by id, a uuid v7).
pub async fn list_requests<C: ConnectionTrait>(
    db: &C,
    f: &RequestFilter,
) -> Result<Vec<RequestRow>, DbErr> {
    let mut sql = format!(
        "SELECT {REQUEST_COLS} FROM relationship_requests WHERE {} = $1 AND id > $2",
        f.side_column
    );
    if f.visible_only {
        sql.push_str(" AND visible_us IS NOT NULL");
    }
    match f.state {
        Some("PENDING") => {
            sql.push_str(" AND state = 'PENDING' AND (expire_us IS NULL OR expire_us > $3)")
        }
        Some("EXPIRED") => {
            sql.push_str(" AND (state = 'EXPIRED' OR (state = 'PENDING' AND expire_us <= $3))")
        }
        Some(s) => sql.push_str(&format!(" AND state = '{s}' AND $3 = $3")),
        None => sql.push_str(" AND $3 = $3"),
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", f.limit));
    all(
        db,
        &sql,
        vec![
            f.business.clone().into(),
            f.after.clone().unwrap_or_default().into(),
            f.now_us.into(),
        ],
    )
    .await
}

/// Returns the pending requests to `client` that are not visible yet.
pub async fn invisible_requests_to<C: ConnectionTrait>(
    db: &C,
    client: &str,
) -> Result<Vec<RequestRow>, DbErr> {
    all(
        db,
        &format!(
            "SELECT {REQUEST_COLS} FROM relationship_requests \
             WHERE client = $1 AND state = 'PENDING' AND visible_us IS NULL ORDER BY provider"
        ),
        vec![client.into()],
    )
    .await
}

/// Makes a waiting request visible, starting its pending period.
pub async fn make_visible<C: ConnectionTrait>(
    db: &C,
    id: &str,
    visible_us: i64,
    expire_us: i64,
) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE relationship_requests SET visible_us = $2, expire_us = $3 \
         WHERE id = $1 AND visible_us IS NULL AND state = 'PENDING'",
        vec![id.into(), visible_us.into(), expire_us.into()],
    )
    .await?;
    Ok(n == 1)
}

/// Returns pending requests whose pending period has passed.
pub async fn lapsed_requests<C: ConnectionTrait>(
    db: &C,
    now_us: i64,
    limit: u64,
) -> Result<Vec<RequestRow>, DbErr> {
    all(
        db,
        &format!(
            "SELECT {REQUEST_COLS} FROM relationship_requests \
             WHERE state = 'PENDING' AND expire_us <= $1 ORDER BY expire_us LIMIT {limit}"
        ),
        vec![now_us.into()],
    )
    .await
}

// ----------------------------------------------------------- registrations

/// Returns when a business is known (from accounts) to have registered.
pub async fn registered_at<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Option<i64>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        register_us: i64,
    }
    let row: Option<Row> = one(
        db,
        "SELECT register_us FROM registered_businesses WHERE bn9 = $1",
        vec![bn9.into()],
    )
    .await?;
    Ok(row.map(|r| r.register_us))
}

/// Records that a business registered; false when already known.
pub async fn record_registered<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    register_us: i64,
) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "INSERT INTO registered_businesses (bn9, register_us) VALUES ($1, $2) \
         ON CONFLICT (bn9) DO NOTHING",
        vec![bn9.into(), register_us.into()],
    )
    .await?;
    Ok(n == 1)
}

/// Returns a consumer's stored position.
pub async fn consumer_position<C: ConnectionTrait>(
    db: &C,
    consumer: &str,
) -> Result<Option<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        position: String,
    }
    let row: Option<Row> = one(
        db,
        "SELECT position FROM consumer_positions WHERE consumer = $1",
        vec![consumer.into()],
    )
    .await?;
    Ok(row.map(|r| r.position))
}

/// Stores a consumer's position.
pub async fn store_consumer_position<C: ConnectionTrait>(
    db: &C,
    consumer: &str,
    position: &str,
) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO consumer_positions (consumer, position) VALUES ($1, $2) \
         ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
        vec![consumer.into(), position.into()],
    )
    .await
    .map(|_| ())
}

// ----------------------------------------------------------- relationships

/// A stored relationship.
#[derive(Debug, Clone, FromQueryResult)]
pub struct RelationshipRow {
    /// Uuid.
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Client BN9.
    pub client: String,
    /// The request it came from.
    pub request_id: String,
    /// BUSINESS or PROGRAM.
    pub level: String,
    /// JSON list of BN15s.
    pub program_accounts: String,
    /// JSON list of visibility spellings.
    pub visibility: String,
    /// Began.
    pub start_us: i64,
    /// Expires.
    pub expire_us: i64,
    /// Recorded ending.
    pub end_us: Option<i64>,
    /// Recorded end reason.
    pub end_reason: Option<String>,
    /// Who ended it.
    pub ended_by: String,
    /// End note.
    pub end_note: String,
    /// Last change.
    pub update_us: i64,
    /// Update counter (the etag).
    pub version: i64,
    /// Due instant of the 30-day reminder; None once emitted or skipped.
    pub remind_30_us: Option<i64>,
    /// Due instant of the 7-day reminder.
    pub remind_7_us: Option<i64>,
    /// Due instant of the 1-day reminder.
    pub remind_1_us: Option<i64>,
}

const REL_COLS: &str = "id, provider, client, request_id, level, program_accounts, visibility, \
     start_us, expire_us, end_us, end_reason, ended_by, end_note, update_us, version, \
     remind_30_us, remind_7_us, remind_1_us";

/// Inserts a relationship.
pub async fn insert_relationship<C: ConnectionTrait>(
    db: &C,
    r: &RelationshipRow,
) -> Result<(), DbErr> {
    exec(
        db,
        &format!(
            "INSERT INTO relationships ({REL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ),
        vec![
            r.id.clone().into(),
            r.provider.clone().into(),
            r.client.clone().into(),
            r.request_id.clone().into(),
            r.level.clone().into(),
            r.program_accounts.clone().into(),
            r.visibility.clone().into(),
            r.start_us.into(),
            r.expire_us.into(),
            r.end_us.into(),
            r.end_reason.clone().into(),
            r.ended_by.clone().into(),
            r.end_note.clone().into(),
            r.update_us.into(),
            r.version.into(),
            r.remind_30_us.into(),
            r.remind_7_us.into(),
            r.remind_1_us.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Rewrites a relationship's mutable fields, guarded by its version; returns
/// false when the version moved.
pub async fn save_relationship<C: ConnectionTrait>(
    db: &C,
    r: &RelationshipRow,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE relationships SET level = $2, program_accounts = $3, visibility = $4, \
         expire_us = $5, end_us = $6, end_reason = $7, ended_by = $8, end_note = $9, \
         update_us = $10, version = $11, remind_30_us = $12, remind_7_us = $13, \
         remind_1_us = $14 WHERE id = $1 AND version = $15",
        vec![
            r.id.clone().into(),
            r.level.clone().into(),
            r.program_accounts.clone().into(),
            r.visibility.clone().into(),
            r.expire_us.into(),
            r.end_us.into(),
            r.end_reason.clone().into(),
            r.ended_by.clone().into(),
            r.end_note.clone().into(),
            r.update_us.into(),
            r.version.into(),
            r.remind_30_us.into(),
            r.remind_7_us.into(),
            r.remind_1_us.into(),
            expected_version.into(),
        ],
    )
    .await?;
    Ok(n == 1)
}

/// Returns a relationship by id.
pub async fn get_relationship<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<RelationshipRow>, DbErr> {
    one(
        db,
        &format!("SELECT {REL_COLS} FROM relationships WHERE id = $1"),
        vec![id.into()],
    )
    .await
}

/// Returns the pair's relationship with no recorded ending, if any.
pub async fn unended_relationship_of_pair<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    client: &str,
) -> Result<Option<RelationshipRow>, DbErr> {
    one(
        db,
        &format!(
            "SELECT {REL_COLS} FROM relationships \
             WHERE provider = $1 AND client = $2 AND end_us IS NULL"
        ),
        vec![provider.into(), client.into()],
    )
    .await
}

/// Which relationships to list.
#[derive(Debug, Clone)]
pub struct RelationshipFilter {
    /// The business.
    pub business: String,
    /// As client (`Some("client")`), provider, or both (None).
    pub side_column: Option<&'static str>,
    /// Only active (Some(true)), only ended (Some(false)), or all.
    pub active: Option<bool>,
    /// Now, in microseconds.
    pub now_us: i64,
    /// Continue after this id.
    pub after: Option<String>,
    /// At most this many.
    pub limit: u64,
}

/// Lists relationships oldest first (by id, a uuid v7).
pub async fn list_relationships<C: ConnectionTrait>(
    db: &C,
    f: &RelationshipFilter,
) -> Result<Vec<RelationshipRow>, DbErr> {
    let mut sql = format!("SELECT {REL_COLS} FROM relationships WHERE id > $2");
    match f.side_column {
        Some(col) => sql.push_str(&format!(" AND {col} = $1")),
        None => sql.push_str(" AND (client = $1 OR provider = $1)"),
    }
    match f.active {
        Some(true) => sql.push_str(" AND end_us IS NULL AND expire_us > $3"),
        Some(false) => sql.push_str(" AND (end_us IS NOT NULL OR expire_us <= $3)"),
        None => sql.push_str(" AND $3 = $3"),
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", f.limit));
    all(
        db,
        &sql,
        vec![
            f.business.clone().into(),
            f.after.clone().unwrap_or_default().into(),
            f.now_us.into(),
        ],
    )
    .await
}

/// Returns relationships past their expiry with no recorded ending.
pub async fn lapsed_relationships<C: ConnectionTrait>(
    db: &C,
    now_us: i64,
    limit: u64,
) -> Result<Vec<RelationshipRow>, DbErr> {
    all(
        db,
        &format!(
            "SELECT {REL_COLS} FROM relationships WHERE end_us IS NULL AND expire_us <= $1 \
             ORDER BY expire_us LIMIT {limit}"
        ),
        vec![now_us.into()],
    )
    .await
}

/// Returns unended, unexpired relationships with a reminder due at `now_us`.
pub async fn due_reminders<C: ConnectionTrait>(
    db: &C,
    now_us: i64,
    limit: u64,
) -> Result<Vec<RelationshipRow>, DbErr> {
    all(
        db,
        &format!(
            "SELECT {REL_COLS} FROM relationships WHERE end_us IS NULL AND expire_us > $1 \
             AND (remind_30_us <= $1 OR remind_7_us <= $1 OR remind_1_us <= $1) \
             ORDER BY id LIMIT {limit}"
        ),
        vec![now_us.into()],
    )
    .await
}

/// Clears the reminder columns given (emitted or skipped), guarded by their
/// current values so two sweepers never both emit; returns false when another
/// sweeper got there first.
pub async fn clear_reminders<C: ConnectionTrait>(
    db: &C,
    r: &RelationshipRow,
    clear: [bool; 3],
) -> Result<bool, DbErr> {
    let cols = ["remind_30_us", "remind_7_us", "remind_1_us"];
    let current = [r.remind_30_us, r.remind_7_us, r.remind_1_us];
    let mut sets = Vec::new();
    let mut guards = Vec::new();
    let mut values: Vec<Value> = vec![r.id.clone().into()];
    for i in 0..3 {
        if clear[i] {
            sets.push(format!("{} = NULL", cols[i]));
            values.push(current[i].into());
            guards.push(format!("{} = ${}", cols[i], values.len()));
        }
    }
    if sets.is_empty() {
        return Ok(true);
    }
    let sql = format!(
        "UPDATE relationships SET {} WHERE id = $1 AND {}",
        sets.join(", "),
        guards.join(" AND ")
    );
    Ok(exec(db, &sql, values).await? == 1)
}

/// A relationship row with the revision counter of a scope, from one query.
#[derive(Debug, Clone, FromQueryResult)]
pub struct FactRow {
    /// The scope's revision counter.
    pub rev: Option<i64>,
    /// Uuid (None when the pair has none).
    pub id: Option<String>,
    /// Client BN9.
    pub client: Option<String>,
    /// Level.
    pub level: Option<String>,
    /// JSON list.
    pub program_accounts: Option<String>,
    /// JSON list.
    pub visibility: Option<String>,
    /// Began.
    pub start_us: Option<i64>,
    /// Expires.
    pub expire_us: Option<i64>,
    /// Recorded ending.
    pub end_us: Option<i64>,
    /// Recorded end reason.
    pub end_reason: Option<String>,
}

/// Returns the pair's relationships, newest first, with the pair scope's
/// revision — one indexed query.
pub async fn pair_facts<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    client: &str,
    scope: &str,
) -> Result<Vec<FactRow>, DbErr> {
    all(
        db,
        "SELECT rv.counter AS rev, r.id, r.client, r.level, r.program_accounts, r.visibility, \
         r.start_us, r.expire_us, r.end_us, r.end_reason \
         FROM (SELECT 1 AS one) s \
         LEFT JOIN revisions rv ON rv.scope = $3 \
         LEFT JOIN relationships r ON r.provider = $1 AND r.client = $2 \
         ORDER BY r.start_us DESC, r.id DESC",
        vec![provider.into(), client.into(), scope.into()],
    )
    .await
}

/// Returns the relationships of the next `limit` clients of a provider after
/// `after`, by client then newest first, with the provider's revision — one
/// indexed query.
pub async fn client_facts<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    after: &str,
    limit: u64,
) -> Result<Vec<FactRow>, DbErr> {
    all(
        db,
        &format!(
            "SELECT rv.counter AS rev, r.id, r.client, r.level, r.program_accounts, \
             r.visibility, r.start_us, r.expire_us, r.end_us, r.end_reason \
             FROM (SELECT 1 AS one) s \
             LEFT JOIN revisions rv ON rv.scope = $1 \
             LEFT JOIN relationships r ON r.provider = $1 AND r.client IN \
               (SELECT DISTINCT c.client FROM relationships c \
                WHERE c.provider = $1 AND c.client > $2 ORDER BY c.client LIMIT {limit}) \
             ORDER BY r.client, r.start_us DESC, r.id DESC"
        ),
        vec![provider.into(), after.into()],
    )
    .await
}

// ------------------------------------------------------------ client groups

/// A stored client group.
#[derive(Debug, Clone, FromQueryResult)]
pub struct GroupRow {
    /// Uuid.
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Display name.
    pub display_name: String,
    /// Lower-cased name (unique per provider).
    pub name_key: String,
    /// Created.
    pub create_us: i64,
    /// Changed.
    pub update_us: i64,
    /// Deleted.
    pub delete_us: Option<i64>,
    /// Update counter (the etag).
    pub version: i64,
}

const GROUP_COLS: &str =
    "id, provider, display_name, name_key, create_us, update_us, delete_us, version";

/// Inserts a group.
pub async fn insert_group<C: ConnectionTrait>(db: &C, g: &GroupRow) -> Result<(), DbErr> {
    exec(
        db,
        &format!(
            "INSERT INTO client_groups ({GROUP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ),
        vec![
            g.id.clone().into(),
            g.provider.clone().into(),
            g.display_name.clone().into(),
            g.name_key.clone().into(),
            g.create_us.into(),
            g.update_us.into(),
            g.delete_us.into(),
            g.version.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Saves a group's name, deletion and version.
pub async fn save_group<C: ConnectionTrait>(db: &C, g: &GroupRow) -> Result<(), DbErr> {
    exec(
        db,
        "UPDATE client_groups SET display_name = $2, name_key = $3, update_us = $4, \
         delete_us = $5, version = $6 WHERE id = $1",
        vec![
            g.id.clone().into(),
            g.display_name.clone().into(),
            g.name_key.clone().into(),
            g.update_us.into(),
            g.delete_us.into(),
            g.version.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Returns a group by id.
pub async fn get_group<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<GroupRow>, DbErr> {
    one(
        db,
        &format!("SELECT {GROUP_COLS} FROM client_groups WHERE id = $1"),
        vec![id.into()],
    )
    .await
}

/// Lists a provider's groups by (name_key, id) after a key.
pub async fn list_groups<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    after: Option<(String, String)>,
    show_deleted: bool,
    limit: u64,
) -> Result<Vec<GroupRow>, DbErr> {
    let (k, i) = after.unwrap_or_default();
    let deleted = if show_deleted {
        ""
    } else {
        " AND delete_us IS NULL"
    };
    all(
        db,
        &format!(
            "SELECT {GROUP_COLS} FROM client_groups WHERE provider = $1 \
             AND (name_key > $2 OR (name_key = $2 AND id > $3)){deleted} \
             ORDER BY name_key, id LIMIT {limit}"
        ),
        vec![provider.into(), k.into(), i.into()],
    )
    .await
}

/// Returns a group's clients by BN9.
pub async fn group_clients<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        client: String,
    }
    let rows: Vec<Row> = all(
        db,
        "SELECT client FROM client_group_clients WHERE group_id = $1 ORDER BY client",
        vec![id.into()],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.client).collect())
}

/// Adds a client to a group; false when already there.
pub async fn add_group_client<C: ConnectionTrait>(
    db: &C,
    id: &str,
    client: &str,
) -> Result<bool, DbErr> {
    Ok(exec(
        db,
        "INSERT INTO client_group_clients (group_id, client) VALUES ($1, $2) \
         ON CONFLICT (group_id, client) DO NOTHING",
        vec![id.into(), client.into()],
    )
    .await?
        == 1)
}

/// Removes a client from a group; false when it was not there.
pub async fn remove_group_client<C: ConnectionTrait>(
    db: &C,
    id: &str,
    client: &str,
) -> Result<bool, DbErr> {
    Ok(exec(
        db,
        "DELETE FROM client_group_clients WHERE group_id = $1 AND client = $2",
        vec![id.into(), client.into()],
    )
    .await?
        == 1)
}

// -------------------------------------------------------------- assignments

/// A stored assignment.
#[derive(Debug, Clone, FromQueryResult)]
pub struct AssignmentRow {
    /// Uuid.
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Principal.
    pub assignee: String,
    /// `client:<bn9>` or `group:<uuid>`.
    pub target: String,
    /// The client, for a direct assignment.
    pub client: Option<String>,
    /// The group, for a group assignment.
    pub group_id: Option<String>,
    /// EDITOR or READER.
    pub role: String,
    /// Made.
    pub create_us: i64,
    /// By.
    pub creator: String,
}

const ASSIGN_COLS: &str =
    "id, provider, assignee, target, client, group_id, role, create_us, creator";

/// Inserts an assignment, or replaces the role of the existing one for the
/// same assignee and target; returns the stored row.
pub async fn upsert_assignment<C: ConnectionTrait>(
    db: &C,
    a: &AssignmentRow,
) -> Result<AssignmentRow, DbErr> {
    exec(
        db,
        &format!(
            "INSERT INTO assignments ({ASSIGN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (provider, assignee, target) DO UPDATE SET role = excluded.role, \
             creator = excluded.creator, create_us = excluded.create_us"
        ),
        vec![
            a.id.clone().into(),
            a.provider.clone().into(),
            a.assignee.clone().into(),
            a.target.clone().into(),
            a.client.clone().into(),
            a.group_id.clone().into(),
            a.role.clone().into(),
            a.create_us.into(),
            a.creator.clone().into(),
        ],
    )
    .await?;
    let row: Option<AssignmentRow> = one(
        db,
        &format!(
            "SELECT {ASSIGN_COLS} FROM assignments WHERE provider = $1 AND assignee = $2 \
             AND target = $3"
        ),
        vec![
            a.provider.clone().into(),
            a.assignee.clone().into(),
            a.target.clone().into(),
        ],
    )
    .await?;
    row.ok_or_else(|| DbErr::Custom("assignment vanished".to_owned()))
}

/// Returns an assignment by id.
pub async fn get_assignment<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<AssignmentRow>, DbErr> {
    one(
        db,
        &format!("SELECT {ASSIGN_COLS} FROM assignments WHERE id = $1"),
        vec![id.into()],
    )
    .await
}

/// Deletes an assignment.
pub async fn delete_assignment<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    exec(db, "DELETE FROM assignments WHERE id = $1", vec![id.into()])
        .await
        .map(|_| ())
}

/// Returns the assignments through a group.
pub async fn group_assignments<C: ConnectionTrait>(
    db: &C,
    group_id: &str,
) -> Result<Vec<AssignmentRow>, DbErr> {
    all(
        db,
        &format!("SELECT {ASSIGN_COLS} FROM assignments WHERE group_id = $1 ORDER BY id"),
        vec![group_id.into()],
    )
    .await
}

/// Deletes the assignments through a group.
pub async fn delete_group_assignments<C: ConnectionTrait>(
    db: &C,
    group_id: &str,
) -> Result<(), DbErr> {
    exec(
        db,
        "DELETE FROM assignments WHERE group_id = $1",
        vec![group_id.into()],
    )
    .await
    .map(|_| ())
}

/// Lists a provider's assignments oldest first (by id).
pub async fn list_assignments<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    assignee: Option<&str>,
    client: Option<&str>,
    after: Option<String>,
    limit: u64,
) -> Result<Vec<AssignmentRow>, DbErr> {
    let mut sql = format!("SELECT {ASSIGN_COLS} FROM assignments WHERE provider = $1 AND id > $2");
    let mut values: Vec<Value> = vec![provider.into(), after.unwrap_or_default().into()];
    if let Some(a) = assignee {
        values.push(a.into());
        sql.push_str(&format!(" AND assignee = ${}", values.len()));
    }
    if let Some(c) = client {
        values.push(c.into());
        sql.push_str(&format!(" AND client = ${}", values.len()));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {limit}"));
    all(db, &sql, values).await
}

/// One client a principal reaches through one assignment, with the provider's revision.
#[derive(Debug, Clone, FromQueryResult)]
pub struct AssignmentFactRow {
    /// Provider BN9.
    pub provider: String,
    /// The client (None for an empty group).
    pub client: Option<String>,
    /// EDITOR or READER.
    pub role: String,
    /// The group, when through one.
    pub group_id: Option<String>,
    /// The provider's revision counter.
    pub rev: Option<i64>,
}

/// Returns what a principal is assigned to, directly and through live
/// groups, with each provider's revision — one indexed query.
pub async fn assignment_facts<C: ConnectionTrait>(
    db: &C,
    principal: &str,
) -> Result<Vec<AssignmentFactRow>, DbErr> {
    all(
        db,
        "SELECT a.provider, COALESCE(a.client, gc.client) AS client, a.role, a.group_id, \
         rv.counter AS rev \
         FROM assignments a \
         LEFT JOIN client_groups g ON g.id = a.group_id AND g.delete_us IS NULL \
         LEFT JOIN client_group_clients gc ON gc.group_id = g.id \
         LEFT JOIN revisions rv ON rv.scope = a.provider \
         WHERE a.assignee = $1 \
         ORDER BY a.provider, COALESCE(a.client, gc.client)",
        vec![principal.into()],
    )
    .await
}

/// Returns the principals a provider assigned to a client, directly or
/// through a live client group (the principals a pair change affects).
pub async fn assignees_of_pair<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    client: &str,
) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        assignee: String,
    }
    let rows: Vec<Row> = all(
        db,
        "SELECT DISTINCT a.assignee FROM assignments a \
         LEFT JOIN client_groups g ON g.id = a.group_id AND g.delete_us IS NULL \
         LEFT JOIN client_group_clients gc ON gc.group_id = g.id AND gc.client = $2 \
         WHERE a.provider = $1 AND (a.client = $2 OR gc.client = $2) \
         ORDER BY a.assignee",
        vec![provider.into(), client.into()],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.assignee).collect())
}
