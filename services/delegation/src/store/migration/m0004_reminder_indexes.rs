//! Indexes for the reminder sweep: one partial index per reminder column,
//! (end_us, remind_…_us) over the relationships that still have that reminder
//! to send, so the sweep reads the reminders that are due among the unended
//! relationships, not every active relationship.

use sea_orm_migration::prelude::*;

/// The reminder columns, each with its index.
const INDEXES: [(&str, &str); 3] = [
    ("relationships_remind_30", "remind_30_us"),
    ("relationships_remind_7", "remind_7_us"),
    ("relationships_remind_1", "remind_1_us"),
];

/// Creates the three partial reminder indexes.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, column) in INDEXES {
            db.execute_unprepared(&format!(
                "CREATE INDEX {name} ON relationships (end_us, {column}) \
                 WHERE {column} IS NOT NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        Ok(())
    }
}
