//! The first migration: audit trail, outbox, idempotency records and revision counters.

use sea_orm_migration::prelude::*;

/// Creates the infrastructure tables.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ccp_platform::store::create_infrastructure_tables(manager.get_connection()).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "the first migration is not reversible".to_owned(),
        ))
    }
}
