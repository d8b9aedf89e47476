//! Registered businesses and their linked program accounts.

use ccp_platform::db::{decode_json, encode_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
};

use crate::domain::matching::Address;

use super::entity::{business, member, program_account};

/// A registered business.
#[derive(Debug, Clone)]
pub struct BusinessRow {
    /// BN9.
    pub bn9: String,
    /// Legal name.
    pub legal_name: String,
    /// Address.
    pub address: Address,
    /// When it registered.
    pub register_time: DateTime<Utc>,
    /// The accepted T&C version.
    pub terms_version: String,
    /// When the T&C were accepted.
    pub terms_accept_time: DateTime<Utc>,
}

/// A linked program account.
#[derive(Debug, Clone)]
pub struct LinkedProgramRow {
    /// `RMnnnn`.
    pub reference: String,
    /// Its name.
    pub display_name: String,
    /// When it was linked.
    pub link_time: DateTime<Utc>,
}

/// Returns a registered business.
pub async fn business<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Option<BusinessRow>, DbErr> {
    let Some(b) = business::Entity::find_by_id(bn9.to_owned()).one(db).await? else {
        return Ok(None);
    };
    Ok(Some(BusinessRow {
        address: decode_json(&b.address_json, "businesses", "address_json")?,
        bn9: b.bn9,
        legal_name: b.legal_name,
        register_time: b.register_time,
        terms_version: b.terms_version,
        terms_accept_time: b.terms_accept_time,
    }))
}

/// Inserts a business (a unique violation when it is registered already).
pub async fn insert_business<C: ConnectionTrait>(
    db: &C,
    row: &BusinessRow,
    registered_by: &str,
) -> Result<(), DbErr> {
    business::Entity::insert(business::ActiveModel {
        bn9: Set(row.bn9.clone()),
        legal_name: Set(row.legal_name.clone()),
        address_json: Set(encode_json(&row.address)?),
        register_time: Set(row.register_time),
        registered_by: Set(registered_by.to_owned()),
        terms_version: Set(row.terms_version.clone()),
        terms_accept_time: Set(row.terms_accept_time),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Links a program account to a business; returns false when it was linked already.
pub async fn link_program<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    reference: &str,
    display_name: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let inserted = program_account::Entity::insert(program_account::ActiveModel {
        bn9: Set(bn9.to_owned()),
        reference: Set(reference.to_owned()),
        display_name: Set(display_name.to_owned()),
        link_time: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    Ok(matches!(inserted, TryInsertResult::Inserted(n) if n > 0))
}

/// Lists a business's program accounts after `after` (by reference).
pub async fn programs<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    after: &str,
    limit: u64,
) -> Result<Vec<LinkedProgramRow>, DbErr> {
    Ok(program_account::Entity::find()
        .filter(program_account::Column::Bn9.eq(bn9))
        .filter(program_account::Column::Reference.gt(after))
        .order_by_asc(program_account::Column::Reference)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|p| LinkedProgramRow {
            reference: p.reference,
            display_name: p.display_name,
            link_time: p.link_time,
        })
        .collect())
}

/// Counts a business's active BAMs. On PostgreSQL the caller holds the
/// business's revision row (bumped first), so two writes cannot both see a
/// second BAM and remove it (R-AC-5).
pub async fn count_bams<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<i64, DbErr> {
    let n = member::Entity::find()
        .filter(member::Column::Bn9.eq(bn9))
        .filter(member::Column::BusinessManager.eq(true))
        .count(db)
        .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}
