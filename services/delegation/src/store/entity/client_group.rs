//! `client_groups`: a provider's named sets of clients (soft-deleted).

use sea_orm::entity::prelude::*;

/// A stored client group.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_groups")]
pub struct Model {
    /// Uuid.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Display name.
    pub display_name: String,
    /// Lower-cased name (unique per provider).
    pub name_key: String,
    /// Created (µs).
    pub create_us: i64,
    /// Changed (µs).
    pub update_us: i64,
    /// Deleted (µs).
    pub delete_us: Option<i64>,
    /// Update counter (the etag).
    pub version: i64,
}

/// No relations are declared; the store joins by hand where it must.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
