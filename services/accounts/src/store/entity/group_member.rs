//! `group_members`: a member of an employee group.

use sea_orm::entity::prelude::*;

/// A member of an employee group.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_members")]
pub struct Model {
    /// The group.
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: String,
    /// BN9.
    pub bn9: String,
    /// Principal.
    #[sea_orm(primary_key, auto_increment = false)]
    pub principal: String,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
