//! The CRA registry records: heads, listed program accounts, known facts.

use ccp_platform::db::{decode_json, encode_json};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use crate::domain::matching::Address;

use super::entity::{registry_fact, registry_program, registry_record};

/// A registry record's head.
#[derive(Debug, Clone)]
pub struct RegistryRow {
    /// BN9.
    pub bn9: String,
    /// Legal name.
    pub legal_name: String,
    /// Address.
    pub address: Address,
}

/// A program account listed by the registry.
#[derive(Debug, Clone)]
pub struct ProgramRow {
    /// BN9.
    pub bn9: String,
    /// `RMnnnn`.
    pub reference: String,
    /// Its name.
    pub display_name: String,
}

/// A known fact of a registry record.
#[derive(Debug, Clone)]
pub struct FactRow {
    /// Question id.
    pub question_id: String,
    /// English question.
    pub text_en: String,
    /// French question.
    pub text_fr: String,
    /// `AMOUNT`, `DATE` or `TEXT`.
    pub format: String,
    /// The expected answer.
    pub answer: String,
}

/// Replaces a registry record with its programs and facts.
pub async fn upsert_registry<C: ConnectionTrait>(
    db: &C,
    head: &RegistryRow,
    programs: &[(String, String)],
    facts: &[FactRow],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    registry_record::Entity::insert(registry_record::ActiveModel {
        bn9: Set(head.bn9.clone()),
        legal_name: Set(head.legal_name.clone()),
        address_json: Set(encode_json(&head.address)?),
        update_time: Set(now),
    })
    .on_conflict(
        OnConflict::column(registry_record::Column::Bn9)
            .update_columns([
                registry_record::Column::LegalName,
                registry_record::Column::AddressJson,
                registry_record::Column::UpdateTime,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    registry_program::Entity::delete_many()
        .filter(registry_program::Column::Bn9.eq(&head.bn9))
        .exec(db)
        .await?;
    registry_fact::Entity::delete_many()
        .filter(registry_fact::Column::Bn9.eq(&head.bn9))
        .exec(db)
        .await?;
    for (reference, name) in programs {
        registry_program::Entity::insert(registry_program::ActiveModel {
            bn9: Set(head.bn9.clone()),
            reference: Set(reference.clone()),
            display_name: Set(name.clone()),
        })
        .exec_without_returning(db)
        .await?;
    }
    for (position, f) in (0_i32..).zip(facts) {
        registry_fact::Entity::insert(registry_fact::ActiveModel {
            bn9: Set(head.bn9.clone()),
            question_id: Set(f.question_id.clone()),
            position: Set(position),
            text_en: Set(f.text_en.clone()),
            text_fr: Set(f.text_fr.clone()),
            format: Set(f.format.clone()),
            answer: Set(f.answer.clone()),
        })
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Returns a registry record's head.
pub async fn registry<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Option<RegistryRow>, DbErr> {
    let Some(r) = registry_record::Entity::find_by_id(bn9.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(RegistryRow {
        address: decode_json(&r.address_json, "registry_records", "address_json")?,
        bn9: r.bn9,
        legal_name: r.legal_name,
    }))
}

/// Returns the program accounts the registry lists for a BN9.
pub async fn registry_programs<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
) -> Result<Vec<ProgramRow>, DbErr> {
    Ok(registry_program::Entity::find()
        .filter(registry_program::Column::Bn9.eq(bn9))
        .order_by_asc(registry_program::Column::Reference)
        .all(db)
        .await?
        .into_iter()
        .map(|p| ProgramRow {
            bn9: p.bn9,
            reference: p.reference,
            display_name: p.display_name,
        })
        .collect())
}

/// Returns the known facts of a registry record, in question order.
pub async fn registry_facts<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Vec<FactRow>, DbErr> {
    Ok(registry_fact::Entity::find()
        .filter(registry_fact::Column::Bn9.eq(bn9))
        .order_by_asc(registry_fact::Column::Position)
        .all(db)
        .await?
        .into_iter()
        .map(|f| FactRow {
            question_id: f.question_id,
            text_en: f.text_en,
            text_fr: f.text_fr,
            format: f.format,
            answer: f.answer,
        })
        .collect())
}
