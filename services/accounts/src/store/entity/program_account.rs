//! `program_accounts`: a program account linked to a business.

use sea_orm::entity::prelude::*;

/// A program account linked to a business.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "program_accounts")]
pub struct Model {
    /// BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// `RMnnnn`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub reference: String,
    /// Its name.
    pub display_name: String,
    /// When it was linked.
    pub link_time: DateTimeUtc,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
