//! `businesses`: a registered business.

use sea_orm::entity::prelude::*;

/// A registered business.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "businesses")]
pub struct Model {
    /// BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// Legal name.
    pub legal_name: String,
    /// Address as JSON.
    pub address_json: String,
    /// When it registered.
    pub register_time: DateTimeUtc,
    /// The first BAM.
    pub registered_by: String,
    /// The accepted T&C version.
    pub terms_version: String,
    /// When the T&C were accepted.
    pub terms_accept_time: DateTimeUtc,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
