//! `registry_programs`: a program account a registry record lists.

use sea_orm::entity::prelude::*;

/// A program account a registry record lists.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_programs")]
pub struct Model {
    /// BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// `RMnnnn`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub reference: String,
    /// Its name.
    pub display_name: String,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
