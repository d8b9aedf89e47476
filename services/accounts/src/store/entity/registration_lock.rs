//! `registration_locks`: a person's registration lock after repeated failures
//! (R-AC-2), on one BN9 or, with an empty `bn9`, on every BN9.

use sea_orm::entity::prelude::*;

/// A person's registration lock after repeated failures.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registration_locks")]
pub struct Model {
    /// The person locked out.
    #[sea_orm(primary_key, auto_increment = false)]
    pub principal: String,
    /// The BN9 locked for that person; empty for every BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// When the lock began (failures before it are spent).
    pub lock_time: DateTimeUtc,
    /// Locked until.
    pub locked_until: DateTimeUtc,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
