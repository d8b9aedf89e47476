//! Database faults answer UNAVAILABLE, which clients may retry, never INTERNAL
//! (R-GW-5 for the callers that fail closed on it): a database that cannot be
//! reached, and a connection the server ends mid-transaction (as a restart
//! does). A bug of ours (a statement the database refuses) stays INTERNAL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ccp_platform::config::DatabaseSettings;
use ccp_platform::db::{connect, exec, is_transient};
use ccp_platform::error::{Error, ErrorCode};
use ccp_platform::testing::{TestBackend, TestDatabase};
use sea_orm::{ConnectionTrait as _, Database, TransactionTrait as _};

#[tokio::test]
async fn r_gw_5_an_unreachable_database_is_unavailable_not_internal() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let settings = DatabaseSettings {
        connect_timeout_ms: 500,
        ..DatabaseSettings::postgres(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
    };
    let err = connect(&settings).await.expect_err("nothing listens there");
    let db_err = err.downcast::<sea_orm::DbErr>().expect("a database error");
    assert!(is_transient(&db_err), "{db_err}");
    assert_eq!(Error::from(db_err).code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn r_gw_5_a_statement_the_database_refuses_is_internal() {
    for backend in TestBackend::all().await {
        let db = connect(&backend.settings("faults")).await.expect("connect");
        let err = exec(&db, "SELECT * FROM no_such_table", vec![])
            .await
            .expect_err("no such table");
        assert!(!is_transient(&err), "{}: {err}", backend.name());
        assert_eq!(
            Error::from(err).code(),
            ErrorCode::Internal,
            "{}",
            backend.name()
        );
    }
}

#[tokio::test]
async fn r_gw_5_a_connection_ended_by_the_server_mid_transaction_is_unavailable_postgres() {
    let Some(test_db) = TestDatabase::create().await else {
        return;
    };
    let db = connect(&test_db.settings("faults")).await.expect("connect");
    let txn = db.begin().await.expect("begin");
    let pid: i32 = txn
        .query_one_raw(sea_orm::Statement::from_string(
            txn.get_database_backend(),
            "SELECT pg_backend_pid()",
        ))
        .await
        .expect("pid")
        .expect("a row")
        .try_get_by_index(0)
        .expect("an int");
    // What a restart does to the transactions in flight: the server ends them.
    let admin = Database::connect(test_db.url()).await.expect("admin");
    admin
        .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .expect("terminate");
    let mut err = None;
    // The client learns of it at its next statement (bounded: a few tries).
    for _ in 0..20 {
        match txn.execute_unprepared("SELECT 1").await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("the ended connection fails");
    assert!(is_transient(&err), "{err}");
    assert_eq!(Error::from(err).code(), ErrorCode::Unavailable);
}

/// Runs `sql` in `txn`, returning the first error of the statements.
async fn run_all(txn: &sea_orm::DatabaseTransaction, sql: &[&str]) -> Result<(), sea_orm::DbErr> {
    for statement in sql {
        txn.execute_unprepared(statement).await?;
    }
    Ok(())
}

#[tokio::test]
async fn r_gw_5_a_serialization_failure_is_unavailable_postgres() {
    let Some(test_db) = TestDatabase::create().await else {
        return;
    };
    let db = connect(&test_db.settings("faults")).await.expect("connect");
    db.execute_unprepared(
        "CREATE TABLE duty (id INT PRIMARY KEY, on_call BOOL NOT NULL); \
         INSERT INTO duty VALUES (1, true), (2, true)",
    )
    .await
    .expect("table");
    // Write skew: each transaction reads both rows and changes a different one;
    // under SERIALIZABLE the second to commit must fail.
    let serializable = || db.begin_with_config(Some(sea_orm::IsolationLevel::Serializable), None);
    let a = serializable().await.expect("begin a");
    let b = serializable().await.expect("begin b");
    let read = "SELECT count(*) FROM duty WHERE on_call";
    run_all(&a, &[read]).await.expect("a reads");
    run_all(&b, &[read]).await.expect("b reads");
    run_all(&a, &["UPDATE duty SET on_call = false WHERE id = 1"])
        .await
        .expect("a writes");
    a.commit().await.expect("a commits");
    let err = match run_all(&b, &["UPDATE duty SET on_call = false WHERE id = 2"]).await {
        Err(err) => err,
        Ok(()) => b.commit().await.expect_err("b cannot commit"),
    };
    assert!(err.to_string().contains("could not serialize"), "{err}");
    assert!(is_transient(&err), "{err}");
    assert_eq!(Error::from(err).code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn r_gw_5_a_deadlock_is_unavailable_postgres() {
    let Some(test_db) = TestDatabase::create().await else {
        return;
    };
    let db = connect(&test_db.settings("faults")).await.expect("connect");
    db.execute_unprepared(
        "CREATE TABLE pair (id INT PRIMARY KEY, v INT NOT NULL); \
         INSERT INTO pair VALUES (1, 0), (2, 0)",
    )
    .await
    .expect("table");
    let a = db.begin().await.expect("begin a");
    let b = db.begin().await.expect("begin b");
    run_all(&a, &["UPDATE pair SET v = 1 WHERE id = 1"])
        .await
        .expect("a locks 1");
    run_all(&b, &["UPDATE pair SET v = 1 WHERE id = 2"])
        .await
        .expect("b locks 2");
    // Each now wants the other's row: PostgreSQL ends one (after deadlock_timeout).
    let (ra, rb) = tokio::time::timeout(
        Duration::from_secs(30),
        futures::future::join(
            run_all(&a, &["UPDATE pair SET v = 2 WHERE id = 2"]),
            run_all(&b, &["UPDATE pair SET v = 2 WHERE id = 1"]),
        ),
    )
    .await
    .expect("the deadlock is detected");
    let err = match (ra, rb) {
        (Err(err), Ok(())) | (Ok(()), Err(err)) => err,
        other => panic!("exactly one side is ended: {other:?}"),
    };
    assert!(err.to_string().contains("deadlock detected"), "{err}");
    assert!(is_transient(&err), "{err}");
    assert_eq!(Error::from(err).code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn r_gw_5_sqlite_busy_is_unavailable() {
    let backend = TestBackend::sqlite();
    let settings = backend.settings("busy");
    let db = connect(&settings).await.expect("connect");
    db.execute_unprepared("CREATE TABLE things (id INTEGER PRIMARY KEY)")
        .await
        .expect("table");
    let writer = db.begin().await.expect("begin");
    writer
        .execute_unprepared("INSERT INTO things VALUES (1)")
        .await
        .expect("the first writer holds the write lock");
    // A second connection that will not wait for the lock.
    let url = secrecy::ExposeSecret::expose_secret(&settings.url).to_owned();
    let mut options = sea_orm::ConnectOptions::new(url);
    options.map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::ZERO));
    let impatient = Database::connect(options).await.expect("second connection");
    let err = impatient
        .execute_unprepared("INSERT INTO things VALUES (2)")
        .await
        .expect_err("the file is locked by the first writer");
    assert!(is_transient(&err), "{err}");
    assert_eq!(Error::from(err).code(), ErrorCode::Unavailable);
    writer.rollback().await.expect("rollback");
}
