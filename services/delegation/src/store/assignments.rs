//! Assignments (`assignments`).

use ccp_platform::db::{corrupt, decode_enum, from_micros};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::assignment::{ActiveModel, Column, Entity, Model};
use super::us;
use crate::domain::{Assignment, AssignmentTarget};

const TABLE: &str = "assignments";

fn decode(m: Model) -> Result<Assignment, DbErr> {
    let target = match (m.client, m.group_id) {
        (Some(c), _) => AssignmentTarget::Client(c),
        (None, Some(g)) => AssignmentTarget::Group(g),
        (None, None) => return Err(corrupt(TABLE, "client", "neither a client nor a group")),
    };
    Ok(Assignment {
        role: decode_enum(&m.role, TABLE, "role")?,
        create_time: from_micros(m.create_us, TABLE, "create_us")?,
        id: m.id,
        provider: m.provider,
        assignee: m.assignee,
        target,
        creator: m.creator,
    })
}

/// Inserts an assignment, or replaces the role of the existing one for the
/// same assignee and target; returns the stored row.
pub async fn upsert_assignment<C: ConnectionTrait>(
    db: &C,
    a: &Assignment,
) -> Result<Assignment, DbErr> {
    let key = a.target.key();
    Entity::insert(ActiveModel {
        id: Set(a.id.clone()),
        provider: Set(a.provider.clone()),
        assignee: Set(a.assignee.clone()),
        target: Set(key.clone()),
        client: Set(a.target.client().map(str::to_owned)),
        group_id: Set(a.target.group().map(str::to_owned)),
        role: Set(a.role.as_str().to_owned()),
        create_us: Set(us(a.create_time)),
        creator: Set(a.creator.clone()),
    })
    .on_conflict(
        OnConflict::columns([Column::Provider, Column::Assignee, Column::Target])
            .update_columns([Column::Role, Column::Creator, Column::CreateUs])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Entity::find()
        .filter(Column::Provider.eq(a.provider.as_str()))
        .filter(Column::Assignee.eq(a.assignee.as_str()))
        .filter(Column::Target.eq(key))
        .one(db)
        .await?
        .map(decode)
        .transpose()?
        .ok_or_else(|| DbErr::Custom("assignment vanished".to_owned()))
}

/// Returns an assignment by id.
pub async fn get_assignment<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<Assignment>, DbErr> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Deletes an assignment.
pub async fn delete_assignment<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    Entity::delete_by_id(id).exec(db).await.map(|_| ())
}

/// Returns the assignments through a group.
pub async fn group_assignments<C: ConnectionTrait>(
    db: &C,
    group_id: &str,
) -> Result<Vec<Assignment>, DbErr> {
    Entity::find()
        .filter(Column::GroupId.eq(group_id))
        .order_by_asc(Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

/// Deletes the assignments through a group.
pub async fn delete_group_assignments<C: ConnectionTrait>(
    db: &C,
    group_id: &str,
) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::GroupId.eq(group_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Which assignments to list.
#[derive(Debug, Clone, Default)]
pub struct AssignmentFilter<'a> {
    /// The provider.
    pub provider: &'a str,
    /// Only this assignee.
    pub assignee: Option<&'a str>,
    /// Only direct assignments to this client.
    pub client: Option<&'a str>,
    /// Continue after this id.
    pub after: Option<String>,
    /// At most this many.
    pub limit: u64,
}

/// Lists a provider's assignments oldest first (by id).
pub async fn list_assignments<C: ConnectionTrait>(
    db: &C,
    f: &AssignmentFilter<'_>,
) -> Result<Vec<Assignment>, DbErr> {
    let mut q = Entity::find()
        .filter(Column::Provider.eq(f.provider))
        .filter(Column::Id.gt(f.after.clone().unwrap_or_default()));
    if let Some(a) = f.assignee {
        q = q.filter(Column::Assignee.eq(a));
    }
    if let Some(c) = f.client {
        q = q.filter(Column::Client.eq(c));
    }
    q.order_by_asc(Column::Id)
        .limit(f.limit)
        .all(db)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}
