//! `registry_facts`: a known fact (challenge question and answer) of a registry record.

use sea_orm::entity::prelude::*;

/// A known fact (challenge question and answer) of a registry record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_facts")]
pub struct Model {
    /// BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// Question id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub question_id: String,
    /// Its place in the challenge.
    pub position: i32,
    /// English question.
    pub text_en: String,
    /// French question.
    pub text_fr: String,
    /// `AMOUNT`, `DATE` or `TEXT`.
    pub format: String,
    /// The expected answer.
    pub answer: String,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
