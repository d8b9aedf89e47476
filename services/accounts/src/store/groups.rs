//! Employee groups, their roles and their members.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TryInsertResult,
};

use super::entity::{employee_group, group_member, group_role};

/// An employee group.
#[derive(Debug, Clone)]
pub struct GroupRow {
    /// Uuid.
    pub id: String,
    /// BN9.
    pub bn9: String,
    /// Its name.
    pub display_name: String,
    /// Its normalized name (unique per business).
    pub name_key: String,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Updated.
    pub update_time: DateTime<Utc>,
    /// Deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// Update counter (the etag).
    pub version: i64,
}

impl From<employee_group::Model> for GroupRow {
    fn from(g: employee_group::Model) -> Self {
        Self {
            id: g.id,
            bn9: g.bn9,
            display_name: g.display_name,
            name_key: g.name_key,
            create_time: g.create_time,
            update_time: g.update_time,
            delete_time: g.delete_time,
            version: g.version,
        }
    }
}

/// Returns a group of a business.
pub async fn group<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    id: &str,
) -> Result<Option<GroupRow>, DbErr> {
    Ok(employee_group::Entity::find_by_id(id.to_owned())
        .filter(employee_group::Column::Bn9.eq(bn9))
        .one(db)
        .await?
        .map(GroupRow::from))
}

/// Lists a business's groups by normalized name after `after`.
pub async fn list_groups<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    after: &str,
    show_deleted: bool,
    limit: u64,
) -> Result<Vec<GroupRow>, DbErr> {
    let mut query = employee_group::Entity::find()
        .filter(employee_group::Column::Bn9.eq(bn9))
        .filter(employee_group::Column::NameKey.gt(after));
    if !show_deleted {
        query = query.filter(employee_group::Column::DeleteTime.is_null());
    }
    Ok(query
        .order_by_asc(employee_group::Column::NameKey)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(GroupRow::from)
        .collect())
}

/// Inserts or updates a group row (a unique violation when its name is
/// taken in the business).
pub async fn upsert_group<C: ConnectionTrait>(db: &C, g: &GroupRow) -> Result<(), DbErr> {
    employee_group::Entity::insert(employee_group::ActiveModel {
        id: Set(g.id.clone()),
        bn9: Set(g.bn9.clone()),
        display_name: Set(g.display_name.clone()),
        name_key: Set(g.name_key.clone()),
        create_time: Set(g.create_time),
        update_time: Set(g.update_time),
        delete_time: Set(g.delete_time),
        version: Set(g.version),
    })
    .on_conflict(
        OnConflict::column(employee_group::Column::Id)
            .update_columns([
                employee_group::Column::DisplayName,
                employee_group::Column::NameKey,
                employee_group::Column::UpdateTime,
                employee_group::Column::DeleteTime,
                employee_group::Column::Version,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Returns a group's roles.
pub async fn group_roles<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Vec<(String, i32)>, DbErr> {
    Ok(group_role::Entity::find()
        .filter(group_role::Column::GroupId.eq(id))
        .order_by_asc(group_role::Column::Reference)
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.reference, r.role))
        .collect())
}

/// Replaces a group's roles.
pub async fn set_group_roles<C: ConnectionTrait>(
    db: &C,
    id: &str,
    roles: &[(String, i32)],
) -> Result<(), DbErr> {
    group_role::Entity::delete_many()
        .filter(group_role::Column::GroupId.eq(id))
        .exec(db)
        .await?;
    for (reference, role) in roles {
        group_role::Entity::insert(group_role::ActiveModel {
            group_id: Set(id.to_owned()),
            reference: Set(reference.clone()),
            role: Set(*role),
        })
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Returns a group's members.
pub async fn group_members<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<String>, DbErr> {
    Ok(group_member::Entity::find()
        .filter(group_member::Column::GroupId.eq(id))
        .order_by_asc(group_member::Column::Principal)
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.principal)
        .collect())
}

/// Adds a member to a group; returns false when it was in it already.
pub async fn add_group_member<C: ConnectionTrait>(
    db: &C,
    id: &str,
    bn9: &str,
    principal: &str,
) -> Result<bool, DbErr> {
    let inserted = group_member::Entity::insert(group_member::ActiveModel {
        group_id: Set(id.to_owned()),
        bn9: Set(bn9.to_owned()),
        principal: Set(principal.to_owned()),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    Ok(matches!(inserted, TryInsertResult::Inserted(n) if n > 0))
}

/// Removes a member from a group; returns false when it was not in it.
pub async fn remove_group_member<C: ConnectionTrait>(
    db: &C,
    id: &str,
    principal: &str,
) -> Result<bool, DbErr> {
    let deleted = group_member::Entity::delete_many()
        .filter(group_member::Column::GroupId.eq(id))
        .filter(group_member::Column::Principal.eq(principal))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}
