//! `registered_businesses`: the businesses known (from accounts) to have registered.

use sea_orm::entity::prelude::*;

/// A business and when it registered.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registered_businesses")]
pub struct Model {
    /// The BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bn9: String,
    /// Registered (µs).
    pub register_us: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
