//! Tables every service keeps in its own schema, and the plumbing around
//! them: the audit trail (R-AU-1), the transactional outbox and its relay to
//! the event bus (R-EV-1), idempotency records for `request_id` replays, and
//! per-business revision counters (R-GW-4).
//!
//! Each service's first migration calls [`create_infrastructure_tables`]. All
//! writes here take a connection or transaction so they commit together with
//! the change they describe.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message as _;
use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, OnConflict, Order, Query, Table, TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, StatementBuilder};
use tokio::sync::Notify;

use crate::bus::EventBus;

fn t(name: &str) -> Alias {
    Alias::new(name)
}

/// Returns the statements creating the infrastructure tables.
pub fn infrastructure_tables() -> Vec<TableCreateStatement> {
    let audit = Table::create()
        .table(t("audit_events"))
        .if_not_exists()
        .col(
            ColumnDef::new(t("seq"))
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(ColumnDef::new(t("id")).string().not_null().unique_key())
        .col(
            ColumnDef::new(t("time"))
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(t("actor")).string().not_null())
        .col(ColumnDef::new(t("acting_for")).string())
        .col(ColumnDef::new(t("other_business")).string())
        .col(ColumnDef::new(t("action")).string().not_null())
        .col(ColumnDef::new(t("target")).string().not_null())
        .col(ColumnDef::new(t("before_json")).text().not_null())
        .col(ColumnDef::new(t("after_json")).text().not_null())
        .col(ColumnDef::new(t("request_id")).string().not_null())
        .col(ColumnDef::new(t("trace_id")).string().not_null())
        .to_owned();
    let outbox = Table::create()
        .table(t("outbox_events"))
        .if_not_exists()
        .col(
            ColumnDef::new(t("seq"))
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(ColumnDef::new(t("event_id")).string().not_null())
        .col(ColumnDef::new(t("stream")).string().not_null())
        .col(ColumnDef::new(t("payload")).blob().not_null())
        .col(
            ColumnDef::new(t("created_at"))
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(t("published_at")).timestamp_with_time_zone())
        .to_owned();
    let idempotency = Table::create()
        .table(t("idempotency_records"))
        .if_not_exists()
        .col(ColumnDef::new(t("principal")).string().not_null())
        .col(ColumnDef::new(t("method")).string().not_null())
        .col(ColumnDef::new(t("request_id")).string().not_null())
        .col(ColumnDef::new(t("response")).blob().not_null())
        .col(
            ColumnDef::new(t("created_at"))
                .timestamp_with_time_zone()
                .not_null(),
        )
        .primary_key(
            Index::create()
                .col(t("principal"))
                .col(t("method"))
                .col(t("request_id")),
        )
        .to_owned();
    let revisions = Table::create()
        .table(t("revisions"))
        .if_not_exists()
        .col(ColumnDef::new(t("scope")).string().not_null().primary_key())
        .col(ColumnDef::new(t("counter")).big_integer().not_null())
        .to_owned();
    vec![audit, outbox, idempotency, revisions]
}

/// Creates the infrastructure tables and their indexes (for a first migration).
pub async fn create_infrastructure_tables<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    for table in infrastructure_tables() {
        db.execute(&table).await?;
    }
    let indexes = [
        Index::create()
            .if_not_exists()
            .name("audit_events_acting_for")
            .table(t("audit_events"))
            .col(t("acting_for"))
            .col(t("seq"))
            .to_owned(),
        Index::create()
            .if_not_exists()
            .name("audit_events_other_business")
            .table(t("audit_events"))
            .col(t("other_business"))
            .col(t("seq"))
            .to_owned(),
        Index::create()
            .if_not_exists()
            .name("audit_events_actor")
            .table(t("audit_events"))
            .col(t("actor"))
            .col(t("seq"))
            .to_owned(),
        Index::create()
            .if_not_exists()
            .name("outbox_events_unpublished")
            .table(t("outbox_events"))
            .col(t("published_at"))
            .col(t("seq"))
            .to_owned(),
    ];
    for index in indexes {
        db.execute(&index).await?;
    }
    Ok(())
}

/// One audit record to append (R-AU-1).
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    /// The principal that made the change, or `system`.
    pub actor: String,
    /// The BN9 the actor acted for.
    pub acting_for: Option<String>,
    /// The other business concerned (a relationship's other party), so both
    /// sides see the record in their history.
    pub other_business: Option<String>,
    /// What was done, e.g. `accounts.member.set_roles`.
    pub action: String,
    /// The resource name changed.
    pub target: String,
    /// JSON before the change (empty for creations).
    pub before_json: String,
    /// JSON after the change (empty for deletions).
    pub after_json: String,
    /// The write's request id.
    pub request_id: String,
    /// The W3C trace id, when traced.
    pub trace_id: String,
}

/// Appends an audit record at `time`.
pub async fn append_audit<C: ConnectionTrait>(
    db: &C,
    record: &AuditRecord,
    time: DateTime<Utc>,
) -> Result<(), DbErr> {
    let trace_id = if record.trace_id.is_empty() {
        crate::telemetry::current_trace_id().unwrap_or_default()
    } else {
        record.trace_id.clone()
    };
    let stmt = Query::insert()
        .into_table(t("audit_events"))
        .columns([
            t("id"),
            t("time"),
            t("actor"),
            t("acting_for"),
            t("other_business"),
            t("action"),
            t("target"),
            t("before_json"),
            t("after_json"),
            t("request_id"),
            t("trace_id"),
        ])
        .values_panic([
            uuid::Uuid::now_v7().to_string().into(),
            time.into(),
            record.actor.clone().into(),
            record.acting_for.clone().into(),
            record.other_business.clone().into(),
            record.action.clone().into(),
            record.target.clone().into(),
            record.before_json.clone().into(),
            record.after_json.clone().into(),
            record.request_id.clone().into(),
            trace_id.into(),
        ])
        .to_owned();
    db.execute(&stmt).await?;
    Ok(())
}

/// An audit row as read back.
#[derive(Debug, Clone, FromQueryResult)]
pub struct AuditRow {
    /// Order of appending.
    pub seq: i64,
    /// Record id.
    pub id: String,
    /// When.
    pub time: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// Acting for.
    pub acting_for: Option<String>,
    /// The other business concerned.
    pub other_business: Option<String>,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Before.
    pub before_json: String,
    /// After.
    pub after_json: String,
    /// Request id.
    pub request_id: String,
    /// Trace id.
    pub trace_id: String,
}

impl AuditRow {
    /// Returns the record as the contract's `AuditEvent`, named under `parent`.
    pub fn to_proto(&self, parent: &str) -> ccp_proto::common::v1::AuditEvent {
        ccp_proto::common::v1::AuditEvent {
            name: format!("{parent}/auditEvents/{}", self.id),
            actor: self.actor.clone(),
            acting_for: self.acting_for.clone().unwrap_or_default(),
            action: self.action.clone(),
            target: self.target.clone(),
            before_json: self.before_json.clone(),
            after_json: self.after_json.clone(),
            time: Some(timestamp(self.time)),
            request_id: self.request_id.clone(),
            trace_id: self.trace_id.clone(),
        }
    }
}

/// Which audit records to list.
#[derive(Debug, Clone)]
pub enum AuditScope {
    /// Records acting for, or concerning, a business.
    Business(String),
    /// Records made by one actor.
    Actor(String),
}

/// Lists audit records oldest first, after sequence `after_seq`, at most `limit`.
pub async fn list_audit<C: ConnectionTrait>(
    db: &C,
    scope: &AuditScope,
    after_seq: i64,
    start_time: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<AuditRow>, DbErr> {
    let mut q = Query::select();
    q.columns([
        t("seq"),
        t("id"),
        t("time"),
        t("actor"),
        t("acting_for"),
        t("other_business"),
        t("action"),
        t("target"),
        t("before_json"),
        t("after_json"),
        t("request_id"),
        t("trace_id"),
    ])
    .from(t("audit_events"))
    .and_where(Expr::col(t("seq")).gt(after_seq))
    .order_by(t("seq"), Order::Asc)
    .limit(limit);
    match scope {
        AuditScope::Business(bn) => {
            q.cond_where(
                sea_orm::Condition::any()
                    .add(Expr::col(t("acting_for")).eq(bn.clone()))
                    .add(Expr::col(t("other_business")).eq(bn.clone())),
            );
        }
        AuditScope::Actor(actor) => {
            q.and_where(Expr::col(t("actor")).eq(actor.clone()));
        }
    }
    if let Some(start) = start_time {
        q.and_where(Expr::col(t("time")).gte(start));
    }
    let stmt = db.get_database_backend().build(&q);
    AuditRow::find_by_statement(stmt).all(db).await
}

/// Increments the revision counter of `scope` (a BN9 or principal) and returns
/// the new value. On PostgreSQL the upsert also locks the row until the
/// transaction ends, serializing concurrent changes to one business.
pub async fn bump_revision<C: ConnectionTrait>(db: &C, scope: &str) -> Result<i64, DbErr> {
    let stmt = Query::insert()
        .into_table(t("revisions"))
        .columns([t("scope"), t("counter")])
        .values_panic([scope.into(), 1i64.into()])
        .on_conflict(
            OnConflict::column(t("scope"))
                .value(
                    t("counter"),
                    Expr::col((t("revisions"), t("counter"))).add(1),
                )
                .to_owned(),
        )
        .returning_col(t("counter"))
        .to_owned();
    let row = db
        .query_one(&stmt)
        .await?
        .ok_or_else(|| DbErr::Custom("revision upsert returned no row".to_owned()))?;
    row.try_get_by_index::<i64>(0)
}

/// Returns the current revision counter of `scope` (0 when never changed).
pub async fn current_revision<C: ConnectionTrait>(db: &C, scope: &str) -> Result<i64, DbErr> {
    let q = Query::select()
        .column(t("counter"))
        .from(t("revisions"))
        .and_where(Expr::col(t("scope")).eq(scope))
        .to_owned();
    match db.query_one(&q).await? {
        Some(row) => row.try_get_by_index::<i64>(0),
        None => Ok(0),
    }
}

/// Queues a domain event in the outbox, in the caller's transaction.
pub async fn enqueue_event<C: ConnectionTrait>(
    db: &C,
    stream: &str,
    event: &ccp_proto::common::v1::DomainEvent,
    time: DateTime<Utc>,
) -> Result<(), DbErr> {
    let stmt = Query::insert()
        .into_table(t("outbox_events"))
        .columns([t("event_id"), t("stream"), t("payload"), t("created_at")])
        .values_panic([
            event.id.clone().into(),
            stream.into(),
            event.encode_to_vec().into(),
            time.into(),
        ])
        .to_owned();
    db.execute(&stmt).await?;
    Ok(())
}

/// Returns the stored response of an earlier write with the same request id
/// by the same principal, if any.
pub async fn idempotent_response<C: ConnectionTrait>(
    db: &C,
    principal: &str,
    method: &str,
    request_id: &str,
) -> Result<Option<Vec<u8>>, DbErr> {
    let q = Query::select()
        .column(t("response"))
        .from(t("idempotency_records"))
        .and_where(Expr::col(t("principal")).eq(principal))
        .and_where(Expr::col(t("method")).eq(method))
        .and_where(Expr::col(t("request_id")).eq(request_id))
        .to_owned();
    match db.query_one(&q).await? {
        Some(row) => Ok(Some(row.try_get_by_index::<Vec<u8>>(0)?)),
        None => Ok(None),
    }
}

/// Stores the response of a write under its request id, in the write's
/// transaction. A concurrent duplicate fails on the primary key.
pub async fn store_idempotent_response<C: ConnectionTrait>(
    db: &C,
    principal: &str,
    method: &str,
    request_id: &str,
    response: &[u8],
    time: DateTime<Utc>,
) -> Result<(), DbErr> {
    let stmt = Query::insert()
        .into_table(t("idempotency_records"))
        .columns([
            t("principal"),
            t("method"),
            t("request_id"),
            t("response"),
            t("created_at"),
        ])
        .values_panic([
            principal.into(),
            method.into(),
            request_id.into(),
            response.to_vec().into(),
            time.into(),
        ])
        .to_owned();
    db.execute(&stmt).await?;
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct OutboxRow {
    seq: i64,
    stream: String,
    payload: Vec<u8>,
}

/// Publishes outbox events to the bus in commit order, at least once: an
/// event is marked published only after the bus acknowledged it, so a bus
/// outage delays events and never loses them.
#[derive(Clone)]
pub struct OutboxRelay {
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    poll_interval: Duration,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// Returns a relay from `db`'s outbox to `bus`.
    pub fn new(db: DatabaseConnection, bus: Arc<dyn EventBus>) -> Self {
        Self {
            db,
            bus,
            wake: Arc::new(Notify::new()),
            poll_interval: Duration::from_millis(200),
        }
    }

    /// Wakes the relay after a commit, so events go out without waiting for the poll.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Publishes every pending event once; returns how many were published.
    pub async fn publish_pending(&self) -> Result<usize, anyhow::Error> {
        let mut published = 0;
        loop {
            let q = Query::select()
                .columns([t("seq"), t("stream"), t("payload")])
                .from(t("outbox_events"))
                .and_where(Expr::col(t("published_at")).is_null())
                .order_by(t("seq"), Order::Asc)
                .limit(100)
                .to_owned();
            let stmt = self.db.get_database_backend().build(&q);
            let rows = OutboxRow::find_by_statement(stmt).all(&self.db).await?;
            if rows.is_empty() {
                return Ok(published);
            }
            for row in rows {
                self.bus.publish(&row.stream, &row.payload).await?;
                let mark = Query::update()
                    .table(t("outbox_events"))
                    .value(t("published_at"), Utc::now())
                    .and_where(Expr::col(t("seq")).eq(row.seq))
                    .to_owned();
                self.db.execute(&mark).await?;
                published += 1;
            }
        }
    }

    /// Runs until `shutdown` completes: publishes on every wake-up and poll,
    /// retrying with backoff while the bus is unavailable.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = self.poll_interval;
        loop {
            let wait = match self.publish_pending().await {
                Ok(_) => {
                    backoff = self.poll_interval;
                    self.poll_interval
                }
                Err(err) => {
                    tracing::warn!(error = %err, "outbox relay: publish failed; will retry");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Returns a protobuf timestamp for an instant.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Returns the instant of a protobuf timestamp, or None when out of range.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    u32::try_from(ts.nanos)
        .ok()
        .and_then(|n| DateTime::from_timestamp(ts.seconds, n))
}

/// Keeps the `StatementBuilder` import meaningful for callers building raw queries.
pub fn build<S: StatementBuilder>(db: &DatabaseConnection, stmt: &S) -> sea_orm::Statement {
    db.get_database_backend().build(stmt)
}
