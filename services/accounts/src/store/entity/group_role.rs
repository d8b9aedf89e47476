//! `group_roles`: a role an employee group gives on one program.

use sea_orm::entity::prelude::*;

/// A role an employee group gives on one program.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_roles")]
pub struct Model {
    /// The group.
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: String,
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
