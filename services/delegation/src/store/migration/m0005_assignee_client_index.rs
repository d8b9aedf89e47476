//! The index of a Check's assignment lookup: a principal's assignments to one
//! client, and its group assignments (client NULL), are one index range each
//! of `(assignee, client)`. It replaces the `(assignee)` index, its prefix.

use sea_orm_migration::prelude::*;

/// Creates `assignments_assignee_client` and drops `assignments_assignee`.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX assignments_assignee_client ON assignments (assignee, client)",
        )
        .await?;
        db.execute_unprepared("DROP INDEX assignments_assignee")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("CREATE INDEX assignments_assignee ON assignments (assignee)")
            .await?;
        db.execute_unprepared("DROP INDEX assignments_assignee_client")
            .await?;
        Ok(())
    }
}
