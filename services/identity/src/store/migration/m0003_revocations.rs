//! The revocations in force (R-GW-4): one row per session family signed out
//! or revoked and per machine credential revoked, numbered in commit order
//! (the `revocations` revision counter, whose row lock serializes writers),
//! so that a reader resuming after a sequence number misses nothing. Rows
//! revoked before this migration are carried over.

use sea_orm_migration::prelude::*;

/// Creates `revocations` and fills it from the revoked families and credentials.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

fn t(name: &str) -> Alias {
    Alias::new(name)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(t("revocations"))
                    .col(
                        ColumnDef::new(t("sequence"))
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(t("kind")).string().not_null())
                    .col(ColumnDef::new(t("subject")).string().not_null())
                    .col(ColumnDef::new(t("revoke_us")).big_integer().not_null())
                    .col(ColumnDef::new(t("expire_us")).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Every token a revocation concerns has expired 16 minutes after it
        // (access tokens live at most 15; one more for clock skew).
        db.execute_unprepared(
            "INSERT INTO revocations (sequence, kind, subject, revoke_us, expire_us) \
             SELECT ROW_NUMBER() OVER (ORDER BY revoke_us, subject), kind, subject, revoke_us, \
                    revoke_us + 960000000 \
             FROM (SELECT 'family' AS kind, id AS subject, revoke_us FROM session_families \
                   WHERE revoke_us IS NOT NULL \
                   UNION ALL \
                   SELECT 'principal' AS kind, 'credential:' || id AS subject, revoke_us \
                   FROM machine_credentials WHERE revoke_us IS NOT NULL) AS r",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO revisions (scope, counter) \
             SELECT 'revocations', COUNT(*) FROM revocations HAVING COUNT(*) > 0",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(t("revocations")).to_owned())
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM revisions WHERE scope = 'revocations'")
            .await?;
        Ok(())
    }
}
