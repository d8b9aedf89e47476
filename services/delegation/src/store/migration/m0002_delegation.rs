//! The delegation tables: relationship requests, relationships (with their
//! reminder schedule), client groups, assignments, the businesses known to
//! have registered, and the position of the accounts event consumer.
//!
//! Instants are stored as microseconds since the epoch (BIGINT), so they
//! compare exactly and the same way on SQLite and PostgreSQL. The partial
//! unique indexes hold the invariants "one pending request per pair" and "one
//! unended relationship per pair".

use sea_orm_migration::prelude::*;

/// Creates the delegation tables.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE relationship_requests (
        id TEXT NOT NULL PRIMARY KEY,
        provider TEXT NOT NULL,
        client TEXT NOT NULL,
        program_accounts TEXT NOT NULL,
        note TEXT NOT NULL,
        state TEXT NOT NULL,
        sender TEXT NOT NULL,
        create_us BIGINT NOT NULL,
        visible_us BIGINT NULL,
        expire_us BIGINT NULL,
        decide_us BIGINT NULL,
        decided_by TEXT NOT NULL,
        reject_reason TEXT NOT NULL,
        relationship_id TEXT NOT NULL
    )",
    "CREATE UNIQUE INDEX relationship_requests_one_pending
        ON relationship_requests (provider, client) WHERE state = 'PENDING'",
    "CREATE INDEX relationship_requests_client ON relationship_requests (client, id)",
    "CREATE INDEX relationship_requests_provider ON relationship_requests (provider, id)",
    "CREATE INDEX relationship_requests_expiry ON relationship_requests (state, expire_us)",
    "CREATE TABLE relationships (
        id TEXT NOT NULL PRIMARY KEY,
        provider TEXT NOT NULL,
        client TEXT NOT NULL,
        request_id TEXT NOT NULL,
        level TEXT NOT NULL,
        program_accounts TEXT NOT NULL,
        visibility TEXT NOT NULL,
        start_us BIGINT NOT NULL,
        expire_us BIGINT NOT NULL,
        end_us BIGINT NULL,
        end_reason TEXT NULL,
        ended_by TEXT NOT NULL,
        end_note TEXT NOT NULL,
        update_us BIGINT NOT NULL,
        version BIGINT NOT NULL,
        remind_30_us BIGINT NULL,
        remind_7_us BIGINT NULL,
        remind_1_us BIGINT NULL
    )",
    "CREATE UNIQUE INDEX relationships_one_unended
        ON relationships (provider, client) WHERE end_us IS NULL",
    "CREATE INDEX relationships_pair ON relationships (provider, client, start_us)",
    "CREATE INDEX relationships_client ON relationships (client, id)",
    "CREATE INDEX relationships_provider ON relationships (provider, id)",
    "CREATE INDEX relationships_expiry ON relationships (end_us, expire_us)",
    "CREATE TABLE client_groups (
        id TEXT NOT NULL PRIMARY KEY,
        provider TEXT NOT NULL,
        display_name TEXT NOT NULL,
        name_key TEXT NOT NULL,
        create_us BIGINT NOT NULL,
        update_us BIGINT NOT NULL,
        delete_us BIGINT NULL,
        version BIGINT NOT NULL
    )",
    "CREATE UNIQUE INDEX client_groups_name ON client_groups (provider, name_key)",
    "CREATE TABLE client_group_clients (
        group_id TEXT NOT NULL,
        client TEXT NOT NULL,
        PRIMARY KEY (group_id, client)
    )",
    "CREATE TABLE assignments (
        id TEXT NOT NULL PRIMARY KEY,
        provider TEXT NOT NULL,
        assignee TEXT NOT NULL,
        target TEXT NOT NULL,
        client TEXT NULL,
        group_id TEXT NULL,
        role TEXT NOT NULL,
        create_us BIGINT NOT NULL,
        creator TEXT NOT NULL
    )",
    "CREATE UNIQUE INDEX assignments_target ON assignments (provider, assignee, target)",
    "CREATE INDEX assignments_assignee ON assignments (assignee)",
    "CREATE INDEX assignments_group ON assignments (group_id)",
    "CREATE INDEX assignments_provider ON assignments (provider, id)",
    "CREATE TABLE registered_businesses (
        bn9 TEXT NOT NULL PRIMARY KEY,
        register_us BIGINT NOT NULL
    )",
    "CREATE TABLE consumer_positions (
        consumer TEXT NOT NULL PRIMARY KEY,
        position TEXT NOT NULL
    )",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for stmt in UP {
            db.execute_unprepared(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in [
            "consumer_positions",
            "registered_businesses",
            "assignments",
            "client_group_clients",
            "client_groups",
            "relationships",
            "relationship_requests",
        ] {
            db.execute_unprepared(&format!("DROP TABLE {table}"))
                .await?;
        }
        Ok(())
    }
}
