//! The `signing_keys` table.

use sea_orm::entity::prelude::*;

/// One row of `signing_keys`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub public_key: String,
    pub private_key: Vec<u8>,
    pub state: String,
    pub create_us: i64,
    pub retire_us: Option<i64>,
    pub publish_until_us: Option<i64>,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
