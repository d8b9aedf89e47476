//! Failed registration attempts and the locks they lead to (R-AC-2). Both are
//! per person: a lock binds one person on one BN9, or (with [`ALL_BNS`]) on
//! every BN9; a business is never locked for everyone.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
};

use super::entity::{registration_failure, registration_lock};

/// The `bn9` of a lock on every BN9 of a person.
pub const ALL_BNS: &str = "";

/// A person's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationLock {
    /// The BN9 locked, or [`ALL_BNS`].
    pub bn9: String,
    /// Locked until.
    pub locked_until: DateTime<Utc>,
}

/// Returns the lock that keeps `principal` from registering `bn9` at `now`,
/// if any: the one on that BN9 or the one on every BN9, whichever ends last.
pub async fn locked_until<C: ConnectionTrait>(
    db: &C,
    principal: &str,
    bn9: &str,
    now: DateTime<Utc>,
) -> Result<Option<RegistrationLock>, DbErr> {
    let locks = registration_lock::Entity::find()
        .filter(registration_lock::Column::Principal.eq(principal))
        .filter(registration_lock::Column::Bn9.is_in([bn9, ALL_BNS]))
        .filter(registration_lock::Column::LockedUntil.gt(now))
        .all(db)
        .await?;
    Ok(locks
        .into_iter()
        .max_by_key(|l| l.locked_until)
        .map(|l| RegistrationLock {
            bn9: l.bn9,
            locked_until: l.locked_until,
        }))
}

/// The failures a person has to their name after recording one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounts {
    /// On this BN9, since `since` and since the person's last lock on it.
    pub on_bn: i64,
    /// On any BN9, since `since` and since the person's last lock on every BN9.
    pub all_bns: i64,
}

/// Records a failed registration attempt of `principal` on `bn9` and returns
/// its failures since `since` that no earlier lock has spent; failures older
/// than `since` are pruned.
pub async fn record_failure<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
    now: DateTime<Utc>,
    since: DateTime<Utc>,
) -> Result<FailureCounts, DbErr> {
    registration_failure::Entity::delete_many()
        .filter(registration_failure::Column::Principal.eq(principal))
        .filter(registration_failure::Column::Time.lte(since))
        .exec(db)
        .await?;
    registration_failure::Entity::insert(registration_failure::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        bn9: Set(bn9.to_owned()),
        principal: Set(principal.to_owned()),
        time: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    let spent = |scope: &str| {
        registration_lock::Entity::find_by_id((principal.to_owned(), scope.to_owned())).one(db)
    };
    let bn_since = match spent(bn9).await? {
        Some(lock) if lock.lock_time > since => lock.lock_time,
        _ => since,
    };
    let all_since = match spent(ALL_BNS).await? {
        Some(lock) if lock.lock_time > since => lock.lock_time,
        _ => since,
    };
    let on_bn = registration_failure::Entity::find()
        .filter(registration_failure::Column::Principal.eq(principal))
        .filter(registration_failure::Column::Bn9.eq(bn9))
        .filter(registration_failure::Column::Time.gt(bn_since))
        .count(db)
        .await?;
    let all_bns = registration_failure::Entity::find()
        .filter(registration_failure::Column::Principal.eq(principal))
        .filter(registration_failure::Column::Time.gt(all_since))
        .count(db)
        .await?;
    Ok(FailureCounts {
        on_bn: i64::try_from(on_bn).unwrap_or(i64::MAX),
        all_bns: i64::try_from(all_bns).unwrap_or(i64::MAX),
    })
}

/// Locks `principal`'s registration of `bn9` (or of every BN9, with
/// [`ALL_BNS`]) from `now` until `until`; the failures counted so far are
/// spent.
pub async fn lock_registration<C: ConnectionTrait>(
    db: &C,
    principal: &str,
    bn9: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), DbErr> {
    registration_lock::Entity::insert(registration_lock::ActiveModel {
        principal: Set(principal.to_owned()),
        bn9: Set(bn9.to_owned()),
        lock_time: Set(now),
        locked_until: Set(until),
    })
    .on_conflict(
        OnConflict::columns([
            registration_lock::Column::Principal,
            registration_lock::Column::Bn9,
        ])
        .update_columns([
            registration_lock::Column::LockTime,
            registration_lock::Column::LockedUntil,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
