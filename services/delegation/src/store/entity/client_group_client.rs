//! `client_group_clients`: the members of each client group.

use sea_orm::entity::prelude::*;

/// One client in one group.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_group_clients")]
pub struct Model {
    /// The group's uuid.
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: String,
    /// The client BN9.
    #[sea_orm(primary_key, auto_increment = false)]
    pub client: String,
}

/// No relations are declared; the store joins by hand where it must.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
