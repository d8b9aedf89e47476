//! Failed registration attempts and the locks they lead to.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
};

use super::entity::{registration_failure, registration_lock};

/// Returns when registration of a BN9 is locked until, if it is locked at `now`.
pub async fn locked_until<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(registration_lock::Entity::find_by_id(bn9.to_owned())
        .filter(registration_lock::Column::LockedUntil.gt(now))
        .one(db)
        .await?
        .map(|l| l.locked_until))
}

/// Records a failed registration attempt and returns the failures since `since`.
pub async fn record_failure<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
    now: DateTime<Utc>,
    since: DateTime<Utc>,
) -> Result<i64, DbErr> {
    registration_failure::Entity::insert(registration_failure::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        bn9: Set(bn9.to_owned()),
        principal: Set(principal.to_owned()),
        time: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    let n = registration_failure::Entity::find()
        .filter(registration_failure::Column::Bn9.eq(bn9))
        .filter(registration_failure::Column::Time.gt(since))
        .count(db)
        .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Locks registration of a BN9 until `until` and clears its counted failures.
pub async fn lock_registration<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    until: DateTime<Utc>,
) -> Result<(), DbErr> {
    registration_lock::Entity::insert(registration_lock::ActiveModel {
        bn9: Set(bn9.to_owned()),
        locked_until: Set(until),
    })
    .on_conflict(
        OnConflict::column(registration_lock::Column::Bn9)
            .update_column(registration_lock::Column::LockedUntil)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    registration_failure::Entity::delete_many()
        .filter(registration_failure::Column::Bn9.eq(bn9))
        .exec(db)
        .await?;
    Ok(())
}
