//! The `machine_credentials` table.

use sea_orm::entity::prelude::*;

/// One row of `machine_credentials`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "machine_credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub business: String,
    pub display_name: String,
    pub secret_hash: String,
    pub creator: String,
    pub create_us: i64,
    pub expire_us: i64,
    pub revoke_us: Option<i64>,
    pub revoke_reason: Option<String>,
    /// When its expiry reminder was emitted.
    pub expiry_reminder_us: Option<i64>,
    pub version: i64,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
