//! Employee access requests.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entity::employee_request::{self, Column};
use crate::domain::RequestState;

const TABLE: &str = "employee_requests";

/// An employee access request.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// Uuid.
    pub id: String,
    /// BN9.
    pub bn9: String,
    /// `person:<uuid>`.
    pub requester: String,
    /// Justification.
    pub note: String,
    /// Where it stands.
    pub state: RequestState,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Expires.
    pub expire_time: DateTime<Utc>,
    /// Decided.
    pub decide_time: Option<DateTime<Utc>>,
    /// Decided by.
    pub decided_by: String,
    /// Rejection reason.
    pub reject_reason: String,
    /// Granted roles as JSON (empty when none).
    pub granted_json: String,
}

impl TryFrom<employee_request::Model> for RequestRow {
    type Error = DbErr;

    fn try_from(r: employee_request::Model) -> Result<Self, DbErr> {
        Ok(Self {
            state: ccp_platform::db::decode_enum(&r.state, TABLE, "state")?,
            id: r.id,
            bn9: r.bn9,
            requester: r.requester,
            note: r.note,
            create_time: r.create_time,
            expire_time: r.expire_time,
            decide_time: r.decide_time,
            decided_by: r.decided_by,
            reject_reason: r.reject_reason,
            granted_json: r.granted_json,
        })
    }
}

/// Inserts a request (the partial unique index refuses a second pending one).
pub async fn insert_request<C: ConnectionTrait>(db: &C, r: &RequestRow) -> Result<(), DbErr> {
    employee_request::Entity::insert(employee_request::ActiveModel {
        id: Set(r.id.clone()),
        bn9: Set(r.bn9.clone()),
        requester: Set(r.requester.clone()),
        note: Set(r.note.clone()),
        state: Set(r.state.as_str().to_owned()),
        create_time: Set(r.create_time),
        expire_time: Set(r.expire_time),
        decide_time: Set(r.decide_time),
        decided_by: Set(r.decided_by.clone()),
        reject_reason: Set(r.reject_reason.clone()),
        granted_json: Set(r.granted_json.clone()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Records a decision on a pending request; returns false when it was no longer pending.
pub async fn decide_request<C: ConnectionTrait>(db: &C, r: &RequestRow) -> Result<bool, DbErr> {
    let updated = employee_request::Entity::update_many()
        .col_expr(Column::State, Expr::value(r.state.as_str()))
        .col_expr(Column::DecideTime, Expr::value(r.decide_time))
        .col_expr(Column::DecidedBy, Expr::value(r.decided_by.clone()))
        .col_expr(Column::RejectReason, Expr::value(r.reject_reason.clone()))
        .col_expr(Column::GrantedJson, Expr::value(r.granted_json.clone()))
        .filter(Column::Id.eq(&r.id))
        .filter(Column::State.eq(RequestState::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Returns a request of a business.
pub async fn request<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    id: &str,
) -> Result<Option<RequestRow>, DbErr> {
    employee_request::Entity::find_by_id(id.to_owned())
        .filter(Column::Bn9.eq(bn9))
        .one(db)
        .await?
        .map(RequestRow::try_from)
        .transpose()
}

/// Lists requests of a business (oldest first) or of a requester (newest first).
pub async fn list_requests<C: ConnectionTrait>(
    db: &C,
    by_business: Option<&str>,
    by_requester: Option<&str>,
    state: Option<RequestState>,
    after: Option<(DateTime<Utc>, String)>,
    limit: u64,
) -> Result<Vec<RequestRow>, DbErr> {
    let newest_first = by_requester.is_some();
    let mut query = employee_request::Entity::find();
    if let Some(b) = by_business {
        query = query.filter(Column::Bn9.eq(b));
    }
    if let Some(r) = by_requester {
        query = query.filter(Column::Requester.eq(r));
    }
    if let Some(s) = state {
        query = query.filter(Column::State.eq(s.as_str()));
    }
    if let Some((t, id)) = after {
        let (time_past, id_past) = if newest_first {
            (Column::CreateTime.lt(t), Column::Id.lt(id))
        } else {
            (Column::CreateTime.gt(t), Column::Id.gt(id))
        };
        query = query.filter(
            Condition::any()
                .add(time_past)
                .add(Condition::all().add(Column::CreateTime.eq(t)).add(id_past)),
        );
    }
    query = if newest_first {
        query
            .order_by_desc(Column::CreateTime)
            .order_by_desc(Column::Id)
    } else {
        query
            .order_by_asc(Column::CreateTime)
            .order_by_asc(Column::Id)
    };
    query
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(RequestRow::try_from)
        .collect()
}

/// Returns pending requests whose expiry has passed.
pub async fn expired_pending<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<RequestRow>, DbErr> {
    employee_request::Entity::find()
        .filter(Column::State.eq(RequestState::Pending.as_str()))
        .filter(Column::ExpireTime.lte(now))
        .order_by_asc(Column::ExpireTime)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(RequestRow::try_from)
        .collect()
}
