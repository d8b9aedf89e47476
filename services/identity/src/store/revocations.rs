//! The revocations in force (R-GW-4), numbered in commit order: each is
//! numbered by the `revocations` revision counter, whose row stays locked
//! until the writing transaction ends, so sequence order is commit order and
//! every number up to the counter's committed value belongs to a committed row.

use ccp_platform::db::{from_micros, to_micros};
use ccp_platform::store::{bump_revision, current_revision};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::revocation;
use crate::config::MAX_ACCESS_TOKEN_TTL_SECS;

/// The revision scope numbering revocations.
const SCOPE: &str = "revocations";

/// What a revocation revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Every access token of a session family (its uuid).
    Family(String),
    /// Every token of a principal (`credential:<uuid>`).
    Principal(String),
}

/// A revocation in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Its place in commit order.
    pub sequence: i64,
    /// What it revokes.
    pub revoked: Revoked,
    /// After this instant no token it concerns is valid anyway.
    pub expire_time: DateTime<Utc>,
}

/// How long after a revocation a token it concerns may still be unexpired:
/// the longest access-token lifetime plus a minute of clock skew.
pub fn memory() -> Duration {
    Duration::seconds(i64::try_from(MAX_ACCESS_TOKEN_TTL_SECS).unwrap_or(900) + 60)
}

/// Records a revocation made at `now` in the writing transaction, and
/// forgets those that concern no valid token any more (the table holds only
/// the last quarter of an hour's revocations).
pub async fn record<C: ConnectionTrait>(
    db: &C,
    revoked: Revoked,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let sequence = bump_revision(db, SCOPE).await?;
    forget_expired(db, now).await?;
    let (kind, subject) = match revoked {
        Revoked::Family(id) => ("family", id),
        Revoked::Principal(p) => ("principal", p),
    };
    revocation::Entity::insert(revocation::ActiveModel {
        sequence: Set(sequence),
        kind: Set(kind.to_owned()),
        subject: Set(subject),
        revoke_us: Set(to_micros(now)),
        expire_us: Set(to_micros(now + memory())),
    })
    .exec_without_returning(db)
    .await?;
    Ok(sequence)
}

/// Returns up to `limit` revocations in force at `now` after `after`, and
/// the cursor to resume from: the last one returned when the page is full,
/// else the counter read before the page (everything up to it is committed).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    after: i64,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<(Vec<Revocation>, i64, bool), DbErr> {
    const T: &str = "revocations";
    let head = current_revision(db, SCOPE).await?;
    let rows = revocation::Entity::find()
        .filter(revocation::Column::Sequence.gt(after))
        .filter(revocation::Column::Sequence.lte(head))
        .filter(revocation::Column::ExpireUs.gt(to_micros(now)))
        .order_by_asc(revocation::Column::Sequence)
        .limit(limit)
        .all(db)
        .await?;
    let full = u64::try_from(rows.len()).unwrap_or(u64::MAX) >= limit;
    let cursor = match rows.last() {
        Some(last) if full => last.sequence,
        _ => head.max(after),
    };
    let revocations = rows
        .into_iter()
        .map(|m| {
            let revoked = match m.kind.as_str() {
                "family" => Revoked::Family(m.subject),
                "principal" => Revoked::Principal(m.subject),
                other => {
                    return Err(ccp_platform::db::corrupt(T, "kind", other));
                }
            };
            Ok(Revocation {
                sequence: m.sequence,
                revoked,
                expire_time: from_micros(m.expire_us, T, "expire_us")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok((revocations, cursor, full))
}

/// Deletes revocations that expired before `before` (none concerns a valid token).
async fn forget_expired<C: ConnectionTrait>(db: &C, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let result = revocation::Entity::delete_many()
        .filter(revocation::Column::ExpireUs.lt(to_micros(before)))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
