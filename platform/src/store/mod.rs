//! Tables every service keeps in its own schema, and the plumbing around
//! them: the audit trail (R-AU-1), the transactional outbox and its relay to
//! the event bus (R-EV-1), idempotency records for `request_id` replays, and
//! per-business revision counters (R-GW-4); and leases on background jobs
//! that one replica at a time runs ([`lease`]).
//!
//! Each service's first migration calls [`create_infrastructure_tables`]. All
//! writes here take a connection or transaction so they commit together with
//! the change they describe.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, OnConflict, Query, Table, TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, StatementBuilder};

mod audit;
pub mod lease;
mod outbox;
mod write;

pub use audit::{AuditRecord, AuditRow, AuditScope, append_audit, list_audit};
pub use outbox::{OutboxRelay, enqueue_event};
pub use write::{
    Begun, Change, ToJson, UnitOfWork, WriteBy, Writer, Written, decided_on, deciding_on,
};

pub(crate) fn t(name: &str) -> Alias {
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
