//! This service's schema: the sent ledger (delivery once per Message-ID across restarts and
//! replicas) and the position of each event consumer.

pub mod entity;
pub mod migration;

pub use migration::Migrator;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait as _};

use entity::{consumer_position, sent_message};

/// Returns whether the message `message_id` was already delivered.
pub async fn was_sent<C: ConnectionTrait>(db: &C, message_id: &str) -> Result<bool, DbErr> {
    Ok(sent_message::Entity::find_by_id(message_id.to_owned())
        .one(db)
        .await?
        .is_some())
}

/// Records the message `message_id` as delivered; recording it twice keeps the first record.
pub async fn record_sent<C: ConnectionTrait>(
    db: &C,
    message_id: &str,
    event_id: &str,
    recipient: &str,
    notice: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = sent_message::ActiveModel {
        message_id: Set(message_id.to_owned()),
        event_id: Set(event_id.to_owned()),
        recipient: Set(recipient.to_owned()),
        notice: Set(notice.to_owned()),
        sent_at_us: Set(ccp_platform::db::to_micros(at)),
    };
    sent_message::Entity::insert(row)
        .on_conflict_do_nothing_on([sent_message::Column::MessageId])
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Returns the messages delivered for event `event_id`, as (Message-ID, recipient) pairs.
pub async fn sent_for_event<C: ConnectionTrait>(
    db: &C,
    event_id: &str,
) -> Result<Vec<(String, String)>, DbErr> {
    use sea_orm::{ColumnTrait as _, QueryFilter as _, QueryOrder as _};
    Ok(sent_message::Entity::find()
        .filter(sent_message::Column::EventId.eq(event_id))
        .order_by_asc(sent_message::Column::Recipient)
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.message_id, row.recipient))
        .collect())
}

/// Returns the stored position of `consumer`, if any.
pub async fn consumer_position<C: ConnectionTrait>(
    db: &C,
    consumer: &str,
) -> Result<Option<String>, DbErr> {
    Ok(consumer_position::Entity::find_by_id(consumer.to_owned())
        .one(db)
        .await?
        .map(|row| row.position))
}

/// Stores `position` as the last event `consumer` handled.
pub async fn store_position<C: ConnectionTrait>(
    db: &C,
    consumer: &str,
    position: &str,
) -> Result<(), DbErr> {
    let row = consumer_position::ActiveModel {
        consumer: Set(consumer.to_owned()),
        position: Set(position.to_owned()),
    };
    consumer_position::Entity::insert(row)
        .on_conflict(
            OnConflict::column(consumer_position::Column::Consumer)
                .update_column(consumer_position::Column::Position)
                .to_owned(),
        )
        .exec(db)
        .await
        .map(|_| ())
}
