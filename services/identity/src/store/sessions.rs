//! Session families and their refresh tokens (kept only as hashes).

use ccp_platform::db::{from_micros, to_micros};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::entity::{refresh_token, session_family};
use super::optional_micros;
use super::profiles::parse_uuid;
use crate::domain::session::{RefreshToken, SessionFamily};

/// Inserts a session family.
pub async fn insert_family<C: ConnectionTrait>(db: &C, f: &SessionFamily) -> Result<(), DbErr> {
    session_family::Entity::insert(session_family::ActiveModel {
        id: Set(f.id.clone()),
        person_id: Set(f.person.to_string()),
        issuer: Set(f.issuer.clone()),
        create_us: Set(to_micros(f.create_time)),
        expire_us: Set(to_micros(f.expire_time)),
        revoke_us: Set(f.revoke_time.map(to_micros)),
        revoke_reason: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Returns a session family.
pub async fn get_family<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<SessionFamily>, DbErr> {
    const T: &str = "session_families";
    let Some(m) = session_family::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(SessionFamily {
        person: parse_uuid(&m.person_id, T, "person_id")?,
        create_time: from_micros(m.create_us, T, "create_us")?,
        expire_time: from_micros(m.expire_us, T, "expire_us")?,
        revoke_time: optional_micros(m.revoke_us, T, "revoke_us")?,
        id: m.id,
        issuer: m.issuer,
    }))
}

/// Revokes a family unless already revoked; returns true when this call revoked it.
pub async fn revoke_family<C: ConnectionTrait>(
    db: &C,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = session_family::Entity::update_many()
        .col_expr(
            session_family::Column::RevokeUs,
            Expr::value(to_micros(now)),
        )
        .col_expr(session_family::Column::RevokeReason, Expr::value(reason))
        .filter(session_family::Column::Id.eq(id))
        .filter(session_family::Column::RevokeUs.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Stores a refresh token's hash.
pub async fn insert_refresh<C: ConnectionTrait>(
    db: &C,
    hash: &str,
    family: &str,
    now: DateTime<Utc>,
    expire: DateTime<Utc>,
) -> Result<(), DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        token_hash: Set(hash.to_owned()),
        family_id: Set(family.to_owned()),
        create_us: Set(to_micros(now)),
        expire_us: Set(to_micros(expire)),
        used_us: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Returns a refresh token by hash.
pub async fn get_refresh<C: ConnectionTrait>(
    db: &C,
    hash: &str,
) -> Result<Option<RefreshToken>, DbErr> {
    const T: &str = "refresh_tokens";
    let Some(m) = refresh_token::Entity::find_by_id(hash.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(RefreshToken {
        expire_time: from_micros(m.expire_us, T, "expire_us")?,
        used_time: optional_micros(m.used_us, T, "used_us")?,
        family_id: m.family_id,
    }))
}

/// Marks a refresh token used, once: returns false when it was used already
/// (a concurrent or repeated presentation).
pub async fn use_refresh<C: ConnectionTrait>(
    db: &C,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedUs, Expr::value(to_micros(now)))
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .filter(refresh_token::Column::UsedUs.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
