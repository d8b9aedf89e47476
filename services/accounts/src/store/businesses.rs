//! Registered businesses and their linked program accounts.

use ccp_platform::db::{all, decode_json, encode_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
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

/// A registered business as `GetBusiness` shows it: the row, its active
/// BAMs counted, and its linked program accounts in reference order.
#[derive(Debug, Clone)]
pub struct BusinessView {
    /// The business.
    pub business: BusinessRow,
    /// How many active BAMs it has.
    pub bams: i64,
    /// Its program accounts.
    pub programs: Vec<LinkedProgramRow>,
}

/// One row of [`business_view`]'s query: the business with one of its
/// program accounts (none when it has none).
#[derive(Debug, FromQueryResult)]
struct BusinessViewRow {
    legal_name: String,
    address_json: String,
    register_time: DateTime<Utc>,
    terms_version: String,
    terms_accept_time: DateTime<Utc>,
    bams: i64,
    reference: Option<String>,
    display_name: Option<String>,
    link_time: Option<DateTime<Utc>>,
}

/// Returns a registered business with its BAM count and program accounts
/// in ONE query (a point read pays one round trip to the database, not
/// three; on SQLite each statement is a hop to the driver's thread).
pub async fn business_view<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
) -> Result<Option<BusinessView>, DbErr> {
    // SQL: the business, its BAMs counted, LEFT JOIN its program accounts.
    let rows: Vec<BusinessViewRow> = all(
        db,
        "SELECT b.legal_name, b.address_json, b.register_time, b.terms_version,
                b.terms_accept_time,
                (SELECT COUNT(*) FROM members m
                  WHERE m.bn9 = b.bn9 AND m.business_manager = $2) AS bams,
                p.reference, p.display_name, p.link_time
         FROM businesses b
         LEFT JOIN program_accounts p ON p.bn9 = b.bn9
         WHERE b.bn9 = $1
         ORDER BY p.reference",
        vec![bn9.into(), true.into()],
    )
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let business = BusinessRow {
        bn9: bn9.to_owned(),
        legal_name: first.legal_name.clone(),
        address: decode_json(&first.address_json, "businesses", "address_json")?,
        register_time: first.register_time,
        terms_version: first.terms_version.clone(),
        terms_accept_time: first.terms_accept_time,
    };
    let bams = first.bams;
    let programs = rows
        .into_iter()
        .filter_map(|row| {
            Some(LinkedProgramRow {
                reference: row.reference?,
                display_name: row.display_name?,
                link_time: row.link_time?,
            })
        })
        .collect();
    Ok(Some(BusinessView {
        business,
        bams,
        programs,
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
