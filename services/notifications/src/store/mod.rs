//! This service's schema: the sent ledger (delivery once per Message-ID across restarts and
//! replicas), the dead letters (messages given up on, kept to be replayed), the position of each
//! event consumer and the consumers' leases (one replica consumes a stream at a time).

pub mod entity;
pub mod migration;

pub use migration::Migrator;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait as _};

use entity::{consumer_position, dead_letter, sent_message};

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

/// The table of the consumers' leases (`ccp_platform::store::lease`).
const LEASES: &str = "consumer_leases";

/// Takes or renews the lease `name` for `holder` until `until` (see
/// [`ccp_platform::store::lease::take_lease`]): true while `holder` holds it.
pub async fn take_lease<C: ConnectionTrait>(
    db: &C,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    ccp_platform::store::lease::take_lease(db, LEASES, name, holder, now, until).await
}

/// Gives the lease `name` up when `holder` holds it, so another replica takes over at once.
pub async fn release_lease<C: ConnectionTrait>(
    db: &C,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    ccp_platform::store::lease::release_lease(db, LEASES, name, holder, now).await
}

/// A message given up on, as kept in `dead_letters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The stable Message-ID (`<…@…>`).
    pub message_id: String,
    /// The event the notice is about.
    pub event_id: String,
    /// The recipient's principal.
    pub recipient: String,
    /// The recipient's address (the envelope's).
    pub address: String,
    /// The notice (`relationship-request-received`, …).
    pub notice: String,
    /// The whole message as built, to be sent again unchanged.
    pub message: String,
    /// The last error.
    pub error: String,
    /// How many times it was tried.
    pub attempts: i64,
    /// The first failure.
    pub first_failed: DateTime<Utc>,
    /// The last failure.
    pub last_failed: DateTime<Utc>,
}

impl DeadLetter {
    /// Returns the key a page of dead letters resumes after: the first failure, then the
    /// Message-ID.
    pub fn page_key(&self) -> String {
        format!(
            "{} {}",
            ccp_platform::db::to_micros(self.first_failed),
            self.message_id
        )
    }
}

fn dead_letter_of(row: dead_letter::Model) -> Result<DeadLetter, DbErr> {
    use ccp_platform::db::from_micros;
    Ok(DeadLetter {
        first_failed: from_micros(row.first_failed_us, "dead_letters", "first_failed_us")?,
        last_failed: from_micros(row.last_failed_us, "dead_letters", "last_failed_us")?,
        message_id: row.message_id,
        event_id: row.event_id,
        recipient: row.recipient,
        address: row.address,
        notice: row.notice,
        message: row.message,
        error: row.error,
        attempts: row.attempts,
    })
}

/// Records `letter` as a dead letter; a message already there keeps its first failure and
/// gets the new error, last failure and attempts added.
pub async fn record_dead_letter<C: ConnectionTrait>(
    db: &C,
    letter: &DeadLetter,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait as _};
    let row = dead_letter::ActiveModel {
        message_id: Set(letter.message_id.clone()),
        event_id: Set(letter.event_id.clone()),
        recipient: Set(letter.recipient.clone()),
        address: Set(letter.address.clone()),
        notice: Set(letter.notice.clone()),
        message: Set(letter.message.clone()),
        error: Set(letter.error.clone()),
        attempts: Set(letter.attempts),
        first_failed_us: Set(ccp_platform::db::to_micros(letter.first_failed)),
        last_failed_us: Set(ccp_platform::db::to_micros(letter.last_failed)),
    };
    dead_letter::Entity::insert(row)
        .on_conflict(
            OnConflict::column(dead_letter::Column::MessageId)
                .update_columns([
                    dead_letter::Column::Error,
                    dead_letter::Column::LastFailedUs,
                ])
                .value(
                    dead_letter::Column::Attempts,
                    Expr::col((dead_letter::Entity, dead_letter::Column::Attempts)).add(Expr::col(
                        (Alias::new("excluded"), dead_letter::Column::Attempts),
                    )),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Returns whether the message `message_id` is a dead letter.
pub async fn is_dead_letter<C: ConnectionTrait>(db: &C, message_id: &str) -> Result<bool, DbErr> {
    Ok(dead_letter::Entity::find_by_id(message_id.to_owned())
        .one(db)
        .await?
        .is_some())
}

/// Returns the dead letter `message_id`, if any.
pub async fn dead_letter<C: ConnectionTrait>(
    db: &C,
    message_id: &str,
) -> Result<Option<DeadLetter>, DbErr> {
    dead_letter::Entity::find_by_id(message_id.to_owned())
        .one(db)
        .await?
        .map(dead_letter_of)
        .transpose()
}

/// Returns at most `limit` dead letters by first failure then Message-ID, after the one whose
/// [`DeadLetter::page_key`] is `after` (from the first when None).
pub async fn dead_letters<C: ConnectionTrait>(
    db: &C,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<DeadLetter>, DbErr> {
    use sea_orm::{
        ColumnTrait as _, Condition, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    };
    let mut query = dead_letter::Entity::find();
    if let Some(after) = after {
        let (us, id) = after
            .split_once(' ')
            .and_then(|(us, id)| Some((us.parse::<i64>().ok()?, id)))
            .ok_or_else(|| DbErr::Custom("dead letter page key".to_owned()))?;
        query = query.filter(
            Condition::any()
                .add(dead_letter::Column::FirstFailedUs.gt(us))
                .add(
                    Condition::all()
                        .add(dead_letter::Column::FirstFailedUs.eq(us))
                        .add(dead_letter::Column::MessageId.gt(id)),
                ),
        );
    }
    query
        .order_by_asc(dead_letter::Column::FirstFailedUs)
        .order_by_asc(dead_letter::Column::MessageId)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(dead_letter_of)
        .collect()
}

/// Removes the dead letter `message_id` (it was delivered, or was already).
pub async fn remove_dead_letter<C: ConnectionTrait>(db: &C, message_id: &str) -> Result<(), DbErr> {
    dead_letter::Entity::delete_by_id(message_id.to_owned())
        .exec(db)
        .await
        .map(|_| ())
}
