//! The reminder sweep reads the reminders that are due through the partial
//! reminder indexes (m0004), never a scan of every active relationship
//! (R-DE-4). SQLite plans by rules: each reminder's query must read its own
//! index. PostgreSQL plans by statistics, and on an empty table every index
//! costs the same, so here it only has to avoid a sequential scan and the
//! expiry index; which index it picks at a million rows is the scale
//! bench's to show, not CI's.

use ccp_delegation::store::{Migrator, REMINDER_COLUMNS, due_reminders_query};
use ccp_platform::testing::TestBackend;
use chrono::Utc;
use sea_orm::{ConnectionTrait, QueryTrait, Statement, TransactionTrait};

#[tokio::test]
async fn r_de_4_the_reminder_sweep_reads_through_the_reminder_indexes() {
    for backend in TestBackend::all().await {
        let name = backend.name();
        let db = ccp_platform::db::connect_and_migrate::<Migrator>(&backend.settings("delegation"))
            .await
            .unwrap();
        let indexes = [
            "relationships_remind_30",
            "relationships_remind_7",
            "relationships_remind_1",
        ];
        for (column, index) in REMINDER_COLUMNS.into_iter().zip(indexes) {
            let query =
                due_reminders_query(column, Utc::now(), "", 500).build(db.get_database_backend());
            let txn = db.begin().await.unwrap();
            let prefix = match backend {
                TestBackend::Sqlite(_) => "EXPLAIN QUERY PLAN ",
                TestBackend::Postgres(_) => {
                    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                        .await
                        .unwrap();
                    "EXPLAIN "
                }
            };
            let rows = txn
                .query_all_raw(Statement::from_sql_and_values(
                    db.get_database_backend(),
                    format!("{prefix}{}", query.sql),
                    query.values.clone().map(|v| v.0).unwrap_or_default(),
                ))
                .await
                .unwrap();
            let plan: Vec<String> = rows
                .iter()
                .map(|row| {
                    // SQLite: (id, parent, notused, detail); PostgreSQL: one text column.
                    row.try_get_by_index::<String>(3)
                        .or_else(|_| row.try_get_by_index::<String>(0))
                        .unwrap()
                })
                .collect();
            let text = plan.join("\n");
            if matches!(backend, TestBackend::Sqlite(_)) {
                assert!(text.contains(index), "{name}: {index} unused:\n{text}");
            }
            assert!(
                !text.contains("relationships_expiry")
                    && !text.contains("SCAN relationships")
                    && !text.contains("Seq Scan"),
                "{name}: {index}'s query reads more than its index:\n{text}"
            );
            txn.rollback().await.unwrap();
        }
    }
}
