//! The accounts tables: registry records, businesses and program accounts,
//! members and roles, employee groups, employee requests, and registration
//! failures and locks.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

/// Creates the accounts tables.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

const DDL: &[&str] = &[
    "CREATE TABLE registry_records (
        bn9 TEXT NOT NULL PRIMARY KEY,
        legal_name TEXT NOT NULL,
        address_json TEXT NOT NULL,
        update_time {TS} NOT NULL)",
    "CREATE TABLE registry_programs (
        bn9 TEXT NOT NULL,
        reference TEXT NOT NULL,
        display_name TEXT NOT NULL,
        PRIMARY KEY (bn9, reference))",
    "CREATE TABLE registry_facts (
        bn9 TEXT NOT NULL,
        question_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        text_en TEXT NOT NULL,
        text_fr TEXT NOT NULL,
        format TEXT NOT NULL,
        answer TEXT NOT NULL,
        PRIMARY KEY (bn9, question_id))",
    "CREATE TABLE businesses (
        bn9 TEXT NOT NULL PRIMARY KEY,
        legal_name TEXT NOT NULL,
        address_json TEXT NOT NULL,
        register_time {TS} NOT NULL,
        registered_by TEXT NOT NULL,
        terms_version TEXT NOT NULL,
        terms_accept_time {TS} NOT NULL)",
    "CREATE TABLE program_accounts (
        bn9 TEXT NOT NULL,
        reference TEXT NOT NULL,
        display_name TEXT NOT NULL,
        link_time {TS} NOT NULL,
        PRIMARY KEY (bn9, reference))",
    "CREATE TABLE members (
        bn9 TEXT NOT NULL,
        principal TEXT NOT NULL,
        kind TEXT NOT NULL,
        display_name TEXT NOT NULL,
        business_manager BOOLEAN NOT NULL,
        join_time {TS} NOT NULL,
        version BIGINT NOT NULL,
        PRIMARY KEY (bn9, principal))",
    "CREATE INDEX members_principal ON members (principal, bn9)",
    "CREATE INDEX members_bam ON members (bn9, business_manager)",
    "CREATE TABLE member_roles (
        bn9 TEXT NOT NULL,
        principal TEXT NOT NULL,
        reference TEXT NOT NULL,
        role INTEGER NOT NULL,
        PRIMARY KEY (bn9, principal, reference))",
    "CREATE TABLE employee_groups (
        id TEXT NOT NULL PRIMARY KEY,
        bn9 TEXT NOT NULL,
        display_name TEXT NOT NULL,
        name_key TEXT NOT NULL,
        create_time {TS} NOT NULL,
        update_time {TS} NOT NULL,
        delete_time {TS},
        version BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX employee_groups_name ON employee_groups (bn9, name_key)",
    "CREATE TABLE group_roles (
        group_id TEXT NOT NULL,
        reference TEXT NOT NULL,
        role INTEGER NOT NULL,
        PRIMARY KEY (group_id, reference))",
    "CREATE TABLE group_members (
        group_id TEXT NOT NULL,
        bn9 TEXT NOT NULL,
        principal TEXT NOT NULL,
        PRIMARY KEY (group_id, principal))",
    "CREATE INDEX group_members_principal ON group_members (principal, bn9)",
    "CREATE TABLE employee_requests (
        id TEXT NOT NULL PRIMARY KEY,
        bn9 TEXT NOT NULL,
        requester TEXT NOT NULL,
        note TEXT NOT NULL,
        state TEXT NOT NULL,
        create_time {TS} NOT NULL,
        expire_time {TS} NOT NULL,
        decide_time {TS},
        decided_by TEXT NOT NULL,
        reject_reason TEXT NOT NULL,
        granted_json TEXT NOT NULL)",
    "CREATE UNIQUE INDEX employee_requests_one_pending ON employee_requests (requester, bn9) WHERE state = 'PENDING'",
    "CREATE INDEX employee_requests_business ON employee_requests (bn9, create_time, id)",
    "CREATE INDEX employee_requests_requester ON employee_requests (requester, create_time, id)",
    "CREATE INDEX employee_requests_expiry ON employee_requests (state, expire_time)",
    "CREATE TABLE registration_failures (
        id TEXT NOT NULL PRIMARY KEY,
        bn9 TEXT NOT NULL,
        principal TEXT NOT NULL,
        time {TS} NOT NULL)",
    "CREATE INDEX registration_failures_bn9 ON registration_failures (bn9, time)",
    "CREATE VIEW role_sources AS
        SELECT bn9, principal, reference, role FROM member_roles
        UNION ALL
        SELECT gm.bn9, gm.principal, gr.reference, gr.role
        FROM group_members gm
        JOIN employee_groups g ON g.id = gm.group_id AND g.delete_time IS NULL
        JOIN group_roles gr ON gr.group_id = gm.group_id",
    "CREATE TABLE registration_locks (
        bn9 TEXT NOT NULL PRIMARY KEY,
        locked_until {TS} NOT NULL)",
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
            "the accounts migration is not reversible".to_owned(),
        ))
    }
}
