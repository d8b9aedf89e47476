//! Leases on background jobs that one replica at a time may run (delegation's
//! sweep, the notifier's consumers): one row per job in a table of the
//! service's own schema (`name TEXT PRIMARY KEY, holder TEXT, until_us
//! BIGINT`, see [`create_lease_table_sql`]), taken, renewed and released each
//! with one conditional statement, so two replicas can never both hold one
//! (the same upsert on SQLite and PostgreSQL).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};

use super::t;
use crate::db::to_micros;

/// Returns the statement creating a lease table named `table` (for a
/// service's migration): the job, its holder and until when, in microseconds
/// since the epoch.
pub fn create_lease_table_sql(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (
            name TEXT NOT NULL PRIMARY KEY,
            holder TEXT NOT NULL,
            until_us BIGINT NOT NULL
        )"
    )
}

/// Takes or renews the lease `name` in `table` for `holder` until `until`:
/// succeeds (true) when nobody holds it, `holder` already does, or the
/// holder's lease lapsed at or before `now`; false when another holder's
/// lease runs.
pub async fn take_lease<C: ConnectionTrait>(
    db: &C,
    table: &str,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let stmt = Query::insert()
        .into_table(t(table))
        .columns([t("name"), t("holder"), t("until_us")])
        .values_panic([name.into(), holder.into(), to_micros(until).into()])
        .on_conflict(
            OnConflict::column(t("name"))
                .update_columns([t("holder"), t("until_us")])
                .action_and_where(
                    Expr::col((t(table), t("holder"))).eq(holder).or(Expr::col((
                        t(table),
                        t("until_us"),
                    ))
                    .lte(to_micros(now))),
                )
                .to_owned(),
        )
        .to_owned();
    Ok(db.execute(&stmt).await?.rows_affected() == 1)
}

/// Gives the lease `name` in `table` up at `now` when `holder` holds it, so
/// another replica may take it without waiting for it to lapse.
pub async fn release_lease<C: ConnectionTrait>(
    db: &C,
    table: &str,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let stmt = Query::update()
        .table(t(table))
        .value(t("until_us"), to_micros(now))
        .and_where(Expr::col(t("name")).eq(name))
        .and_where(Expr::col(t("holder")).eq(holder))
        .to_owned();
    db.execute(&stmt).await.map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testing::TestBackend;

    #[tokio::test]
    async fn one_holder_at_a_time_until_it_lapses_or_is_released() {
        for backend in TestBackend::all().await {
            let db = crate::db::connect(&backend.settings("leases"))
                .await
                .unwrap();
            db.execute_unprepared(&create_lease_table_sql("job_leases"))
                .await
                .unwrap();
            let t0 = Utc::now();
            let s = chrono::Duration::seconds;
            let take = |holder: &'static str, now: DateTime<Utc>| {
                let db = db.clone();
                async move {
                    take_lease(&db, "job_leases", "job", holder, now, now + s(10))
                        .await
                        .unwrap()
                }
            };
            assert!(
                take("a", t0).await,
                "{}: a free lease is taken",
                backend.name()
            );
            assert!(!take("b", t0 + s(1)).await, "b waits while a holds it");
            assert!(take("a", t0 + s(2)).await, "a renews it");
            assert!(!take("b", t0 + s(11)).await, "renewed until t0+12");
            assert!(take("b", t0 + s(12)).await, "b takes it once it lapsed");
            assert!(!take("a", t0 + s(13)).await, "a lost it");
            release_lease(&db, "job_leases", "job", "a", t0 + s(13))
                .await
                .unwrap();
            assert!(!take("a", t0 + s(13)).await, "only the holder releases it");
            release_lease(&db, "job_leases", "job", "b", t0 + s(13))
                .await
                .unwrap();
            assert!(take("a", t0 + s(13)).await, "released: taken at once");
        }
    }
}
