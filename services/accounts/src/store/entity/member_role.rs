//! `member_roles`: a member's direct role on one program.

use sea_orm::entity::prelude::*;

/// A member's direct role on one program.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member_roles")]
pub struct Model {
    /// BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// Principal.
    #[sea_orm(primary_key, auto_increment = false)]
    pub principal: String,
    /// `RMnnnn`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub reference: String,
    /// Role number.
    pub role: i32,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
