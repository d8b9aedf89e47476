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
