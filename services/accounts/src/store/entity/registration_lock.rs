//! `registration_locks`: a registration lock of a BN9 after repeated failures.

use sea_orm::entity::prelude::*;

/// A registration lock of a BN9 after repeated failures.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registration_locks")]
pub struct Model {
    /// BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// Locked until.
    pub locked_until: DateTimeUtc,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
