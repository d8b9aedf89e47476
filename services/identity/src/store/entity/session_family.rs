//! The `session_families` table.

use sea_orm::entity::prelude::*;

/// One row of `session_families`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_families")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub person_id: String,
    pub issuer: String,
    pub create_us: i64,
    pub expire_us: i64,
    pub revoke_us: Option<i64>,
    pub revoke_reason: Option<String>,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
