//! Migrations of the notifications schema, tracked in `seaql_migrations_notifications`.

use sea_orm_migration::prelude::*;

/// The notifications schema's migrator.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Ledger), Box::new(M0002DeadLetters)]
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

/// The dead letters (messages given up on, kept to be listed and replayed) and the consumers'
/// lease (one replica consumes each stream at a time).
#[derive(Debug)]
struct M0002DeadLetters;

impl MigrationName for M0002DeadLetters {
    fn name(&self) -> &str {
        "m0002_dead_letters"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002DeadLetters {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE dead_letters (
                message_id TEXT NOT NULL PRIMARY KEY,
                event_id TEXT NOT NULL,
                recipient TEXT NOT NULL,
                address TEXT NOT NULL,
                notice TEXT NOT NULL,
                message TEXT NOT NULL,
                error TEXT NOT NULL,
                attempts BIGINT NOT NULL,
                first_failed_us BIGINT NOT NULL,
                last_failed_us BIGINT NOT NULL
            )",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX dead_letters_by_time ON dead_letters (first_failed_us, message_id)",
        )
        .await?;
        db.execute_unprepared(&ccp_platform::store::lease::create_lease_table_sql(
            "consumer_leases",
        ))
        .await
        .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE consumer_leases").await?;
        db.execute_unprepared("DROP TABLE dead_letters")
            .await
            .map(|_| ())
    }
}
