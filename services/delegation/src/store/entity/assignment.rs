//! `assignments`: members of a provider assigned to a client or group.

use sea_orm::entity::prelude::*;

/// A stored assignment.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "assignments")]
pub struct Model {
    /// Uuid.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Principal.
    pub assignee: String,
    /// `client:<bn9>` or `group:<uuid>`.
    pub target: String,
    /// The client, for a direct assignment.
    pub client: Option<String>,
    /// The group, for a group assignment.
    pub group_id: Option<String>,
    /// EDITOR or READER.
    pub role: String,
    /// Made (µs).
    pub create_us: i64,
    /// By.
    pub creator: String,
}

/// No relations are declared; the store joins by hand where it must.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
