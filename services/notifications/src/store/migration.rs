//! Migrations of the notifications schema, tracked in `seaql_migrations_notifications`.

use sea_orm_migration::prelude::*;

/// The notifications schema's migrator.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Ledger)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("seaql_migrations_notifications").into_iden()
    }
}

/// The sent ledger (one row per Message-ID delivered) and the consumers' positions.
#[derive(Debug)]
struct M0001Ledger;

impl MigrationName for M0001Ledger {
    fn name(&self) -> &str {
        "m0001_ledger"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Ledger {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE sent_messages (
                message_id TEXT NOT NULL PRIMARY KEY,
                event_id TEXT NOT NULL,
                recipient TEXT NOT NULL,
                notice TEXT NOT NULL,
                sent_at_us BIGINT NOT NULL
            )",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TABLE consumer_positions (
                consumer TEXT NOT NULL PRIMARY KEY,
                position TEXT NOT NULL
            )",
        )
        .await
        .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE consumer_positions")
            .await?;
        db.execute_unprepared("DROP TABLE sent_messages")
            .await
            .map(|_| ())
    }
}
