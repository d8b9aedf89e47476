//! R-AU-1 and R-EV-1 by construction: every write goes through the platform's
//! unit of work, so a change that fails after its audit record was written
//! leaves nothing behind, and a replayed request id answers with the first
//! result without a second audit record.

use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as pb;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use ccp_platform::testing::{allow_inserts, refuse_inserts};

use crate::helpers::*;

/// Returns the number of rows of `table` (an infrastructure or accounts table).
async fn rows(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn access_request(request_id: &str) -> pb::RequestEmployeeAccessRequest {
    pb::RequestEmployeeAccessRequest {
        request_id: request_id.to_owned(),
        parent: format!("businesses/{ABC}"),
        note: "I file the payroll remittances".to_owned(),
    }
}

/// A write whose outbox event (written after its audit record) or whose
/// idempotency record (written after both) cannot be stored fails whole: no
/// employee request, no audit record, no event; the same request id then
/// succeeds as a fresh write, not as a replay of the failure.
#[tokio::test]
async fn r_au_1_a_write_that_fails_after_its_audit_record_leaves_nothing() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        let db = ccp_platform::db::connect(&backend.settings("accounts"))
            .await
            .unwrap();
        for failing in ["outbox_events", "idempotency_records"] {
            let audit = rows(&db, "audit_events").await;
            let outbox = rows(&db, "outbox_events").await;
            let requests = rows(&db, "employee_requests").await;
            let request_id = rid();
            refuse_inserts(&db, failing).await.unwrap();
            let err = app
                .accounts()
                .request_employee_access(app.req(access_request(&request_id), &bob.token))
                .await
                .unwrap_err();
            allow_inserts(&db, failing).await.unwrap();
            assert!(
                matches!(err.code(), tonic::Code::Internal | tonic::Code::Aborted),
                "{} {failing}: {err:?}",
                backend.name()
            );
            assert_eq!(rows(&db, "audit_events").await, audit, "{failing}");
            assert_eq!(rows(&db, "outbox_events").await, outbox, "{failing}");
            assert_eq!(rows(&db, "employee_requests").await, requests, "{failing}");

            let created = app
                .accounts()
                .request_employee_access(app.req(access_request(&request_id), &bob.token))
                .await
                .unwrap()
                .into_inner();
            assert!(created.request.is_some());
            assert_eq!(rows(&db, "audit_events").await, audit + 1, "{failing}");
            assert_eq!(rows(&db, "outbox_events").await, outbox + 1, "{failing}");
            // Withdraw it so the next round can ask again.
            app.accounts()
                .withdraw_employee_request(app.req(
                    pb::WithdrawEmployeeRequestRequest {
                        request_id: rid(),
                        name: created.request.unwrap().name,
                    },
                    &bob.token,
                ))
                .await
                .unwrap();
        }
    }
}

/// A retry with the same request id (surrounding white space aside, the one
/// request id rule) returns the first answer and writes no second audit
/// record, event or request.
#[tokio::test]
async fn r_au_1_a_replayed_request_id_returns_the_first_answer_without_a_second_audit_record() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        let db = ccp_platform::db::connect(&backend.settings("accounts"))
            .await
            .unwrap();
        let request_id = rid();
        let first = app
            .accounts()
            .request_employee_access(app.req(access_request(&request_id), &bob.token))
            .await
            .unwrap()
            .into_inner();
        let audit = rows(&db, "audit_events").await;
        let outbox = rows(&db, "outbox_events").await;
        for retry in [request_id.clone(), format!("  {request_id}\n")] {
            let again = app
                .accounts()
                .request_employee_access(app.req(access_request(&retry), &bob.token))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(again, first, "{}", backend.name());
        }
        assert_eq!(rows(&db, "audit_events").await, audit, "{}", backend.name());
        assert_eq!(rows(&db, "outbox_events").await, outbox);
        assert_eq!(rows(&db, "employee_requests").await, 1);
        let creations = app
            .audit_actions(&alice, ABC)
            .await
            .into_iter()
            .filter(|a| a == "accounts.employee_request.create")
            .count();
        assert_eq!(creations, 1);
    }
}
