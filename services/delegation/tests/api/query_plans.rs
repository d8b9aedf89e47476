//! The reminder sweep reads the reminders that are due through the partial
//! reminder indexes (m0004), never a scan of every active relationship
//! (R-DE-4). SQLite plans by rules, so its plan is asserted here: each
//! reminder's query reads its own index. PostgreSQL plans by statistics, and
//! on a test's empty table every index costs the same (its pick varies from
//! run to run), so its plan says nothing here; at a million rows it is the
//! scale bench's to show.

use ccp_delegation::store::{Migrator, REMINDER_COLUMNS, due_reminders_query};
use ccp_platform::testing::TestBackend;
use chrono::Utc;
use sea_orm::{ConnectionTrait, QueryTrait, Statement};

#[tokio::test]
async fn r_de_4_the_reminder_sweep_reads_through_the_reminder_indexes() {
    let backend = TestBackend::sqlite();
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
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                format!("EXPLAIN QUERY PLAN {}", query.sql),
                query.values.clone().map(|v| v.0).unwrap_or_default(),
            ))
            .await
            .unwrap();
        // Each row: (id, parent, notused, detail).
        let plan: Vec<String> = rows
            .iter()
            .map(|row| row.try_get_by_index::<String>(3).unwrap())
            .collect();
        let text = plan.join("\n");
        assert!(text.contains(index), "{index} unused:\n{text}");
        assert!(
            !text.contains("relationships_expiry") && !text.contains("SCAN relationships"),
            "{index}'s query reads more than its index:\n{text}"
        );
    }
}
