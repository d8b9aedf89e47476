//! The identity schema: federated identities, profiles, session families and
//! refresh tokens, signing keys, machine credentials and their bad-secret
//! counters. Instants are stored as microseconds since the epoch (BIGINT) so
//! that comparisons are exact and portable between SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

/// Creates the identity tables.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

fn t(name: &str) -> Alias {
    Alias::new(name)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table(t("federated_identities"))
                .col(ColumnDef::new(t("issuer")).string().not_null())
                .col(ColumnDef::new(t("subject")).string().not_null())
                .col(ColumnDef::new(t("person_id")).string().not_null())
                .col(ColumnDef::new(t("create_us")).big_integer().not_null())
                .primary_key(Index::create().col(t("issuer")).col(t("subject")))
                .to_owned(),
            Table::create()
                .table(t("profiles"))
                .col(ColumnDef::new(t("id")).string().not_null().primary_key())
                .col(ColumnDef::new(t("legal_name")).string().not_null())
                .col(ColumnDef::new(t("email")).string().not_null())
                .col(ColumnDef::new(t("phone")).string().not_null())
                .col(ColumnDef::new(t("preferred_language")).string().not_null())
                .col(
                    ColumnDef::new(t("email_notifications"))
                        .boolean()
                        .not_null(),
                )
                .col(ColumnDef::new(t("create_us")).big_integer().not_null())
                .col(ColumnDef::new(t("update_us")).big_integer().not_null())
                .col(ColumnDef::new(t("version")).big_integer().not_null())
                .to_owned(),
            Table::create()
                .table(t("session_families"))
                .col(ColumnDef::new(t("id")).string().not_null().primary_key())
                .col(ColumnDef::new(t("person_id")).string().not_null())
                .col(ColumnDef::new(t("issuer")).string().not_null())
                .col(ColumnDef::new(t("create_us")).big_integer().not_null())
                .col(ColumnDef::new(t("expire_us")).big_integer().not_null())
                .col(ColumnDef::new(t("revoke_us")).big_integer())
                .col(ColumnDef::new(t("revoke_reason")).string())
                .to_owned(),
            Table::create()
                .table(t("refresh_tokens"))
                .col(
                    ColumnDef::new(t("token_hash"))
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(t("family_id")).string().not_null())
                .col(ColumnDef::new(t("create_us")).big_integer().not_null())
                .col(ColumnDef::new(t("expire_us")).big_integer().not_null())
                .col(ColumnDef::new(t("used_us")).big_integer())
                .to_owned(),
            Table::create()
                .table(t("signing_keys"))
                .col(ColumnDef::new(t("kid")).string().not_null().primary_key())
                .col(ColumnDef::new(t("public_key")).string().not_null())
                .col(ColumnDef::new(t("private_key")).blob().not_null())
                .col(ColumnDef::new(t("state")).string().not_null())
                .col(ColumnDef::new(t("create_us")).big_integer().not_null())
                .col(ColumnDef::new(t("retire_us")).big_integer())
                .col(ColumnDef::new(t("publish_until_us")).big_integer())
                .to_owned(),
            Table::create()
                .table(t("machine_credentials"))
                .col(ColumnDef::new(t("id")).string().not_null().primary_key())
                .col(ColumnDef::new(t("business")).string().not_null())
                .col(ColumnDef::new(t("display_name")).string().not_null())
                .col(ColumnDef::new(t("secret_hash")).string().not_null())
                .col(ColumnDef::new(t("creator")).string().not_null())
                .col(ColumnDef::new(t("create_us")).big_integer().not_null())
                .col(ColumnDef::new(t("expire_us")).big_integer().not_null())
                .col(ColumnDef::new(t("revoke_us")).big_integer())
                .col(ColumnDef::new(t("revoke_reason")).string())
                .col(ColumnDef::new(t("version")).big_integer().not_null())
                .to_owned(),
            Table::create()
                .table(t("credential_attempts"))
                .col(
                    ColumnDef::new(t("client_id"))
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(t("failures")).big_integer().not_null())
                .col(
                    ColumnDef::new(t("window_start_us"))
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(t("locked_until_us")).big_integer())
                .to_owned(),
        ];
        for table in tables {
            manager.create_table(table).await?;
        }
        let indexes = [
            Index::create()
                .name("federated_identities_person")
                .table(t("federated_identities"))
                .col(t("person_id"))
                .to_owned(),
            Index::create()
                .name("session_families_person")
                .table(t("session_families"))
                .col(t("person_id"))
                .to_owned(),
            Index::create()
                .name("refresh_tokens_family")
                .table(t("refresh_tokens"))
                .col(t("family_id"))
                .to_owned(),
            Index::create()
                .name("machine_credentials_business")
                .table(t("machine_credentials"))
                .col(t("business"))
                .col(t("id"))
                .to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        // At most one active signing key, whoever rotates (service start or `ccp keys rotate`).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'ACTIVE'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "credential_attempts",
            "machine_credentials",
            "signing_keys",
            "refresh_tokens",
            "session_families",
            "profiles",
            "federated_identities",
        ] {
            manager
                .drop_table(Table::drop().table(t(name)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
