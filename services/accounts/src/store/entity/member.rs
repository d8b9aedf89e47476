//! `members`: a member of a business (a person or a machine credential).

use sea_orm::entity::prelude::*;

/// A member of a business (a person or a machine credential).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    /// BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// Principal.
    #[sea_orm(primary_key, auto_increment = false)]
    pub principal: String,
    /// `PERSON` or `CREDENTIAL`.
    pub kind: String,
    /// Credential label (people's names come from identity).
    pub display_name: String,
    /// BAM.
    pub business_manager: bool,
    /// When it joined.
    pub join_time: DateTimeUtc,
    /// Update counter (the etag).
    pub version: i64,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
