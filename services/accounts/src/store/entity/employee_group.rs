//! `employee_groups`: an employee group (soft-deleted).

use sea_orm::entity::prelude::*;

/// An employee group (soft-deleted).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "employee_groups")]
pub struct Model {
    /// Uuid.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// BN9.
    pub bn9: String,
    /// Its name.
    pub display_name: String,
    /// Its normalized name (unique per business).
    pub name_key: String,
    /// Created.
    pub create_time: DateTimeUtc,
    /// Updated.
    pub update_time: DateTimeUtc,
    /// Deleted.
    pub delete_time: Option<DateTimeUtc>,
    /// Update counter (the etag).
    pub version: i64,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
