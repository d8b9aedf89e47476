//! E-mail notices (issue 20): a profile's choice per kind of notice (a JSON object of kind to
//! on/off, `{}` for none: every kind follows the opt-in), and the instant a machine credential's
//! expiry reminder was emitted (NULL until then), which the sweep sets with a conditional
//! UPDATE so that replicas sweeping at once emit one reminder.

use sea_orm_migration::prelude::*;

/// Adds `profiles.notification_choices` and `machine_credentials.expiry_reminder_us`.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

fn t(name: &str) -> Alias {
    Alias::new(name)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite takes no more.
        manager
            .alter_table(
                Table::alter()
                    .table(t("profiles"))
                    .add_column(
                        ColumnDef::new(t("notification_choices"))
                            .text()
                            .not_null()
                            .default("{}"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(t("machine_credentials"))
                    .add_column(ColumnDef::new(t("expiry_reminder_us")).big_integer())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("machine_credentials_expire")
                    .table(t("machine_credentials"))
                    .col(t("expire_us"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("machine_credentials_expire")
                    .table(t("machine_credentials"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(t("machine_credentials"))
                    .drop_column(t("expiry_reminder_us"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(t("profiles"))
                    .drop_column(t("notification_choices"))
                    .to_owned(),
            )
            .await
    }
}
