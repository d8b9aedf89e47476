//! The plans the facts queries get at the large size: every query the services ran through
//! `ccp_platform::db::{all, one}` during the large cold pass and the listings (recorded with the
//! values of its first run, see [`ccp_platform::db::recorder`]), run again under
//! `EXPLAIN (ANALYZE, FORMAT JSON)` on the database it belongs to. A query whose plan reads
//! more than [`SCAN_LIMIT`] rows of a table by a sequential scan is reported: at 1M
//! relationships that is a query that grows with the data.

use ccp_platform::db::recorder::Recorded;
use sea_orm_migration::sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};

/// The most rows a sequential scan in a facts query's plan may read.
pub const SCAN_LIMIT: f64 = 10_000.0;

/// What the EXPLAIN of the recorded queries found.
#[derive(Debug, Default)]
pub struct Plans {
    /// Queries explained.
    pub explained: usize,
    /// The slowest execution of one of them, in milliseconds.
    pub max_ms: f64,
    /// Each sequential scan over more than [`SCAN_LIMIT`] rows: table, rows, the query's head.
    pub seq_scans: Vec<String>,
    /// Each query: its head, execution ms and the node types of its plan.
    pub queries: Vec<Value>,
}

impl Plans {
    /// The JSON fields of the report.
    pub fn json(&self) -> Value {
        json!({
            "explain_queries": self.explained,
            "explain_max_ms": (self.max_ms * 1000.0).round() / 1000.0,
            "explain_seq_scans": self.seq_scans,
            "explain_ok": self.explained > 0 && self.seq_scans.is_empty(),
            "explain_plans": self.queries,
        })
    }
}

/// EXPLAINs each recorded query on the first of `dbs` that knows its tables (PostgreSQL).
pub async fn explain(recorded: &[Recorded], dbs: &[&DatabaseConnection]) -> Plans {
    let mut plans = Plans::default();
    for query in recorded {
        for db in dbs {
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", query.sql),
                query.values.clone(),
            );
            // A query of another service's tables fails here; the next database is tried.
            let Ok(Some(row)) = db.query_one_raw(statement).await else {
                continue;
            };
            let Ok(text) = row
                .try_get::<Value>("", "QUERY PLAN")
                .or_else(|_| row.try_get::<String>("", "QUERY PLAN").map(|t| json!(t)))
            else {
                continue;
            };
            let plan = match text {
                Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
                other => other,
            };
            record(&mut plans, &query.sql, &plan);
            break;
        }
    }
    plans
}

/// Adds one query's plan to `plans`.
fn record(plans: &mut Plans, sql: &str, plan: &Value) {
    let Some(top) = plan.get(0) else { return };
    let ms = top
        .get("Execution Time")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let head: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let head: String = head.chars().take(100).collect();
    let mut nodes = Vec::new();
    if let Some(root) = top.get("Plan") {
        walk(root, &mut |node| {
            let kind = node.get("Node Type").and_then(Value::as_str).unwrap_or("?");
            let relation = node.get("Relation Name").and_then(Value::as_str);
            let index = node.get("Index Name").and_then(Value::as_str);
            nodes.push(match (relation, index) {
                (_, Some(index)) => format!("{kind} ({index})"),
                (Some(relation), None) => format!("{kind} ({relation})"),
                _ => kind.to_owned(),
            });
            if kind == "Seq Scan" {
                let loops = node
                    .get("Actual Loops")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0);
                let rows = node
                    .get("Actual Rows")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let removed = node
                    .get("Rows Removed by Filter")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let read = (rows + removed) * loops;
                if read > SCAN_LIMIT {
                    plans.seq_scans.push(format!(
                        "{} ({read:.0} rows): {head}",
                        relation.unwrap_or("?")
                    ));
                }
            }
        });
    }
    plans.explained += 1;
    plans.max_ms = plans.max_ms.max(ms);
    plans
        .queries
        .push(json!({"sql": head, "ms": ms, "plan": nodes}));
}

/// Calls `visit` on `node` and every node under it (bounded by the plan's size).
fn walk(node: &Value, visit: &mut impl FnMut(&Value)) {
    visit(node);
    if let Some(children) = node.get("Plans").and_then(Value::as_array) {
        for child in children {
            walk(child, visit);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_large_sequential_scan_is_reported_and_an_index_scan_is_not() {
        let plan = json!([{
            "Plan": {"Node Type": "Nested Loop", "Plans": [
                {"Node Type": "Index Scan", "Relation Name": "members", "Index Name": "members_pkey",
                 "Actual Rows": 3.0, "Actual Loops": 1.0},
                {"Node Type": "Seq Scan", "Relation Name": "client_group_clients",
                 "Actual Rows": 1.0, "Rows Removed by Filter": 49_999.0, "Actual Loops": 2.0}
            ]},
            "Execution Time": 4.8
        }]);
        let mut plans = Plans::default();
        record(&mut plans, "SELECT  a.provider\n FROM assignments a", &plan);
        assert_eq!(plans.explained, 1);
        assert_eq!(
            plans.seq_scans,
            ["client_group_clients (100000 rows): SELECT a.provider FROM assignments a"]
        );
        assert!((plans.max_ms - 4.8).abs() < 1e-9);
        assert_eq!(plans.json()["explain_ok"], false);
        let small = json!([{"Plan": {"Node Type": "Seq Scan", "Relation Name": "revisions",
            "Actual Rows": 1.0, "Rows Removed by Filter": 20.0, "Actual Loops": 1.0},
            "Execution Time": 0.02}]);
        let mut plans = Plans::default();
        record(&mut plans, "SELECT 1", &small);
        assert!(plans.seq_scans.is_empty());
        assert_eq!(plans.json()["explain_ok"], true);
    }
}
