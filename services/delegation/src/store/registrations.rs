//! The businesses known to have registered (`registered_businesses`) and the
//! position of the accounts event consumer (`consumer_positions`).

use ccp_platform::db::from_micros;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, TryInsertResult};

use super::entity::{consumer_position, registered_business};
use super::us;

/// Returns when a business is known (from accounts) to have registered.
pub async fn registered_at<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    registered_business::Entity::find_by_id(bn9)
        .one(db)
        .await?
        .map(|m| from_micros(m.register_us, "registered_businesses", "register_us"))
        .transpose()
}

/// Records that a business registered; false when already known.
pub async fn record_registered<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let done = registered_business::Entity::insert(registered_business::ActiveModel {
        bn9: Set(bn9.to_owned()),
        register_us: Set(us(at)),
    })
    .on_conflict_do_nothing_on([registered_business::Column::Bn9])
    .exec_without_returning(db)
    .await?;
    Ok(matches!(done, TryInsertResult::Inserted(1)))
}

/// Returns a consumer's stored position.
pub async fn consumer_position<C: ConnectionTrait>(
    db: &C,
    consumer: &str,
) -> Result<Option<String>, DbErr> {
    Ok(consumer_position::Entity::find_by_id(consumer)
        .one(db)
        .await?
        .map(|m| m.position))
}

/// Stores a consumer's position.
pub async fn store_consumer_position<C: ConnectionTrait>(
    db: &C,
    consumer: &str,
    position: &str,
) -> Result<(), DbErr> {
    consumer_position::Entity::insert(consumer_position::ActiveModel {
        consumer: Set(consumer.to_owned()),
        position: Set(position.to_owned()),
    })
    .on_conflict(
        OnConflict::column(consumer_position::Column::Consumer)
            .update_column(consumer_position::Column::Position)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await
    .map(|_| ())
}
