//! `registry_records`: a CRA registry record's head.

use sea_orm::entity::prelude::*;

/// A CRA registry record's head.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_records")]
pub struct Model {
    /// BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// Legal name.
    pub legal_name: String,
    /// Address as JSON.
    pub address_json: String,
    /// When it was last imported.
    pub update_time: DateTimeUtc,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
