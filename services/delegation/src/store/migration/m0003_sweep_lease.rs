//! The sweep lease: one row per background job that only one replica may run
//! at a time, naming its holder and until when it holds it (microseconds
//! since the epoch, as every instant of this schema).

use sea_orm_migration::prelude::*;

/// Creates `sweep_leases`.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE sweep_leases (
                    name TEXT NOT NULL PRIMARY KEY,
                    holder TEXT NOT NULL,
                    until_us BIGINT NOT NULL
                )",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE sweep_leases")
            .await
            .map(|_| ())
    }
}
