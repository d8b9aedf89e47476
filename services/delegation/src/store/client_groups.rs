//! Client groups (`client_groups`) and their members (`client_group_clients`).

use ccp_platform::db::from_micros;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TryInsertResult,
};

use super::entity::client_group::{ActiveModel, Column, Entity, Model};
use super::entity::client_group_client as member;
use super::{opt_instant, opt_us, us};
use crate::domain::ClientGroup;

const TABLE: &str = "client_groups";

fn decode(m: Model) -> Result<ClientGroup, DbErr> {
    Ok(ClientGroup {
        create_time: from_micros(m.create_us, TABLE, "create_us")?,
        update_time: from_micros(m.update_us, TABLE, "update_us")?,
        delete_time: opt_instant(m.delete_us, TABLE, "delete_us")?,
        id: m.id,
        provider: m.provider,
        display_name: m.display_name,
        name_key: m.name_key,
        version: m.version,
    })
}

/// Inserts a group (a unique violation when the provider has the name).
pub async fn insert_group<C: ConnectionTrait>(db: &C, g: &ClientGroup) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        id: Set(g.id.clone()),
        provider: Set(g.provider.clone()),
        display_name: Set(g.display_name.clone()),
        name_key: Set(g.name_key.clone()),
        create_us: Set(us(g.create_time)),
        update_us: Set(us(g.update_time)),
        delete_us: Set(opt_us(g.delete_time)),
        version: Set(g.version),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Saves a group's name, deletion and version.
pub async fn save_group<C: ConnectionTrait>(db: &C, g: &ClientGroup) -> Result<(), DbErr> {
    Entity::update_many()
        .set(ActiveModel {
            display_name: Set(g.display_name.clone()),
            name_key: Set(g.name_key.clone()),
            update_us: Set(us(g.update_time)),
            delete_us: Set(opt_us(g.delete_time)),
            version: Set(g.version),
            ..Default::default()
        })
        .filter(Column::Id.eq(g.id.as_str()))
        .exec(db)
        .await
        .map(|_| ())
}

/// Returns a group by id.
pub async fn get_group<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<ClientGroup>, DbErr> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Lists a provider's groups by (name_key, id) after a key.
pub async fn list_groups<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    after: Option<(String, String)>,
    show_deleted: bool,
    limit: u64,
) -> Result<Vec<ClientGroup>, DbErr> {
    let (key, id) = after.unwrap_or_default();
    let mut q = Entity::find().filter(Column::Provider.eq(provider)).filter(
        Condition::any().add(Column::NameKey.gt(key.as_str())).add(
            Condition::all()
                .add(Column::NameKey.eq(key.as_str()))
                .add(Column::Id.gt(id)),
        ),
    );
    if !show_deleted {
        q = q.filter(Column::DeleteUs.is_null());
    }
    q.order_by_asc(Column::NameKey)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

/// Returns a group's clients by BN9.
pub async fn group_clients<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<String>, DbErr> {
    Ok(member::Entity::find()
        .filter(member::Column::GroupId.eq(id))
        .order_by_asc(member::Column::Client)
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.client)
        .collect())
}

/// Adds a client to a group; false when already there.
pub async fn add_group_client<C: ConnectionTrait>(
    db: &C,
    id: &str,
    client: &str,
) -> Result<bool, DbErr> {
    let done = member::Entity::insert(member::ActiveModel {
        group_id: Set(id.to_owned()),
        client: Set(client.to_owned()),
    })
    .on_conflict_do_nothing_on([member::Column::GroupId, member::Column::Client])
    .exec_without_returning(db)
    .await?;
    Ok(matches!(done, TryInsertResult::Inserted(1)))
}

/// Removes a client from a group; false when it was not there.
pub async fn remove_group_client<C: ConnectionTrait>(
    db: &C,
    id: &str,
    client: &str,
) -> Result<bool, DbErr> {
    let done = member::Entity::delete_many()
        .filter(member::Column::GroupId.eq(id))
        .filter(member::Column::Client.eq(client))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}
