//! The audit trail (R-AU-1): every state change appends one record in the
//! transaction that makes it; a business lists and exports its history.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::{t, timestamp};

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
