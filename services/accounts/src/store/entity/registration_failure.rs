//! `registration_failures`: a failed registration attempt.

use sea_orm::entity::prelude::*;

/// A failed registration attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registration_failures")]
pub struct Model {
    /// Uuid.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// BN9.
    pub bn9: String,
    /// Who tried.
    pub principal: String,
    /// When.
    pub time: DateTimeUtc,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
