//! Relationship requests (`relationship_requests`).

use ccp_platform::db::{decode_enum, from_micros};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::relationship_request::{ActiveModel, Column, Entity, Model};
use super::{encode_list, list, opt_instant, opt_us, us};
use crate::domain::{Party, RelationshipRequest, RequestState};

const TABLE: &str = "relationship_requests";

fn decode(m: Model) -> Result<RelationshipRequest, DbErr> {
    Ok(RelationshipRequest {
        program_accounts: list(&m.program_accounts, TABLE, "program_accounts")?,
        state: decode_enum(&m.state, TABLE, "state")?,
        create_time: from_micros(m.create_us, TABLE, "create_us")?,
        visible_time: opt_instant(m.visible_us, TABLE, "visible_us")?,
        expire_time: opt_instant(m.expire_us, TABLE, "expire_us")?,
        decide_time: opt_instant(m.decide_us, TABLE, "decide_us")?,
        id: m.id,
        provider: m.provider,
        client: m.client,
        note: m.note,
        sender: m.sender,
        decided_by: m.decided_by,
        reject_reason: m.reject_reason,
        relationship_id: m.relationship_id,
    })
}

fn decode_all(models: Vec<Model>) -> Result<Vec<RelationshipRequest>, DbErr> {
    models.into_iter().map(decode).collect()
}

/// Inserts a request (a unique violation when the pair has a pending one).
pub async fn insert_request<C: ConnectionTrait>(
    db: &C,
    r: &RelationshipRequest,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        id: Set(r.id.clone()),
        provider: Set(r.provider.clone()),
        client: Set(r.client.clone()),
        program_accounts: Set(encode_list(&r.program_accounts)?),
        note: Set(r.note.clone()),
        state: Set(r.state.as_str().to_owned()),
        sender: Set(r.sender.clone()),
        create_us: Set(us(r.create_time)),
        visible_us: Set(opt_us(r.visible_time)),
        expire_us: Set(opt_us(r.expire_time)),
        decide_us: Set(opt_us(r.decide_time)),
        decided_by: Set(r.decided_by.clone()),
        reject_reason: Set(r.reject_reason.clone()),
        relationship_id: Set(r.relationship_id.clone()),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Returns a request by id.
pub async fn get_request<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<RelationshipRequest>, DbErr> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Returns the stored-pending request of a pair, if any.
pub async fn pending_request_of_pair<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    client: &str,
) -> Result<Option<RelationshipRequest>, DbErr> {
    Entity::find()
        .filter(Column::Provider.eq(provider))
        .filter(Column::Client.eq(client))
        .filter(Column::State.eq(RequestState::Pending.as_str()))
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// A decision on a pending request.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The state it moves to.
    pub state: RequestState,
    /// When.
    pub at: DateTime<Utc>,
    /// Who decided (`system` for a lapse).
    pub by: &'a str,
    /// The rejection reason (empty otherwise).
    pub reject_reason: &'a str,
    /// The relationship an approval created (empty otherwise).
    pub relationship_id: &'a str,
}

/// Records a decision on a request still stored as pending; returns false
/// when it was no longer pending.
pub async fn decide_request<C: ConnectionTrait>(
    db: &C,
    id: &str,
    d: &Decision<'_>,
) -> Result<bool, DbErr> {
    let done = Entity::update_many()
        .col_expr(Column::State, Expr::value(d.state.as_str()))
        .col_expr(Column::DecideUs, Expr::value(us(d.at)))
        .col_expr(Column::DecidedBy, Expr::value(d.by))
        .col_expr(Column::RejectReason, Expr::value(d.reject_reason))
        .col_expr(Column::RelationshipId, Expr::value(d.relationship_id))
        .filter(Column::Id.eq(id))
        .filter(Column::State.eq(RequestState::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Which requests to list.
#[derive(Debug, Clone)]
pub struct RequestFilter {
    /// The side the business is on.
    pub side: Party,
    /// The business.
    pub business: String,
    /// Only visible ones (client side).
    pub visible_only: bool,
    /// The state as seen now, or None for all.
    pub state: Option<RequestState>,
    /// Now.
    pub now: DateTime<Utc>,
    /// Continue after this id.
    pub after: Option<String>,
    /// At most this many.
    pub limit: u64,
}

/// Lists requests oldest first (by id, a uuid v7).
pub async fn list_requests<C: ConnectionTrait>(
    db: &C,
    f: &RequestFilter,
) -> Result<Vec<RelationshipRequest>, DbErr> {
    let side = match f.side {
        Party::Client => Column::Client,
        Party::Provider => Column::Provider,
    };
    let now = us(f.now);
    let pending = RequestState::Pending.as_str();
    let mut q = Entity::find()
        .filter(side.eq(f.business.as_str()))
        .filter(Column::Id.gt(f.after.clone().unwrap_or_default()));
    if f.visible_only {
        q = q.filter(Column::VisibleUs.is_not_null());
    }
    q = match f.state {
        Some(RequestState::Pending) => q.filter(Column::State.eq(pending)).filter(
            Condition::any()
                .add(Column::ExpireUs.is_null())
                .add(Column::ExpireUs.gt(now)),
        ),
        Some(RequestState::Expired) => q.filter(
            Condition::any()
                .add(Column::State.eq(RequestState::Expired.as_str()))
                .add(
                    Condition::all()
                        .add(Column::State.eq(pending))
                        .add(Column::ExpireUs.lte(now)),
                ),
        ),
        Some(state) => q.filter(Column::State.eq(state.as_str())),
        None => q,
    };
    decode_all(q.order_by_asc(Column::Id).limit(f.limit).all(db).await?)
}

/// Returns the pending requests to `client` that are not visible yet.
pub async fn invisible_requests_to<C: ConnectionTrait>(
    db: &C,
    client: &str,
) -> Result<Vec<RelationshipRequest>, DbErr> {
    decode_all(
        Entity::find()
            .filter(Column::Client.eq(client))
            .filter(Column::State.eq(RequestState::Pending.as_str()))
            .filter(Column::VisibleUs.is_null())
            .order_by_asc(Column::Provider)
            .all(db)
            .await?,
    )
}

/// Makes a waiting request visible, starting its pending period.
pub async fn make_visible<C: ConnectionTrait>(
    db: &C,
    id: &str,
    visible: DateTime<Utc>,
    expire: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let done = Entity::update_many()
        .col_expr(Column::VisibleUs, Expr::value(us(visible)))
        .col_expr(Column::ExpireUs, Expr::value(us(expire)))
        .filter(Column::Id.eq(id))
        .filter(Column::VisibleUs.is_null())
        .filter(Column::State.eq(RequestState::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Returns pending requests whose pending period has passed.
pub async fn lapsed_requests<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<RelationshipRequest>, DbErr> {
    decode_all(
        Entity::find()
            .filter(Column::State.eq(RequestState::Pending.as_str()))
            .filter(Column::ExpireUs.lte(us(now)))
            .order_by_asc(Column::ExpireUs)
            .limit(limit)
            .all(db)
            .await?,
    )
}
