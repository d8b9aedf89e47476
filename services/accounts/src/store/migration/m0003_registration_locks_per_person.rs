//! Registration locks per person (R-AC-2): a lock binds one person, on one
//! BN9 or (with an empty `bn9`) on every BN9, never a business for everyone.
//! The per-BN9 locks of before are dropped: they named no person, and they
//! were what let a stranger lock a business out of its own registration.
//! Failures are counted per person, so they gain an index by principal.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

/// Replaces `registration_locks` with per-person locks.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

const DDL: &[&str] = &[
    "DROP TABLE registration_locks",
    "CREATE TABLE registration_locks (
        principal TEXT NOT NULL,
        bn9 TEXT NOT NULL,
        lock_time {TS} NOT NULL,
        locked_until {TS} NOT NULL,
        PRIMARY KEY (principal, bn9))",
    "CREATE INDEX registration_failures_principal ON registration_failures (principal, bn9, time)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let ts = match db.get_database_backend() {
            DbBackend::Postgres => "TIMESTAMPTZ",
            _ => "timestamp_with_timezone_text",
        };
        for stmt in DDL {
            db.execute_unprepared(&stmt.replace("{TS}", ts)).await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "the per-person registration locks are not reversible".to_owned(),
        ))
    }
}
