//! R-AU-1 and R-EV-1 by construction: every write of delegation goes through
//! the platform's unit of work, so a change that fails after its audit record
//! was written leaves nothing behind, and a replayed request id answers with
//! the first result without a second audit record or event.

use ccp_platform::testing::TestBackend;
use ccp_proto::delegation::v1 as pb;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use uuid::Uuid;

use ccp_platform::testing::{allow_inserts, refuse_inserts};

use crate::helpers::*;

/// Returns the number of rows of `table` in delegation's schema.
async fn rows(db: &DatabaseConnection, table: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT COUNT(*) FROM {table}"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

fn send_request(request_id: &str) -> pb::SendRelationshipRequestRequest {
    pb::SendRelationshipRequestRequest {
        request_id: request_id.to_owned(),
        parent: format!("businesses/{BROKER}"),
        client: IMPORTER.to_owned(),
        program_accounts: vec![],
        note: "ITN Logistics, your customs broker".to_owned(),
    }
}

/// A send whose outbox event (written after its audit record) or whose
/// idempotency record (written after both) cannot be stored fails whole: no
/// request, no audit record, no event; the same request id then succeeds as
/// a fresh write, not as a replay of the failure.
#[tokio::test]
async fn r_au_1_a_write_that_fails_after_its_audit_record_leaves_nothing() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let db = ccp_platform::db::connect(&backend.settings("delegation"))
            .await
            .unwrap();
        for failing in ["outbox_events", "idempotency_records"] {
            let audit = rows(&db, "audit_events").await;
            let outbox = rows(&db, "outbox_events").await;
            let requests = rows(&db, "relationship_requests").await;
            let request_id = Uuid::new_v4().to_string();
            refuse_inserts(&db, failing).await.unwrap();
            let err = app
                .api()
                .send_relationship_request(app.as_(&app.broker_bam, send_request(&request_id)))
                .await
                .unwrap_err();
            allow_inserts(&db, failing).await.unwrap();
            assert!(
                matches!(err.code(), tonic::Code::Internal | tonic::Code::Aborted),
                "{} {failing}: {err:?}",
                app.backend
            );
            assert_eq!(rows(&db, "audit_events").await, audit, "{failing}");
            assert_eq!(rows(&db, "outbox_events").await, outbox, "{failing}");
            assert_eq!(
                rows(&db, "relationship_requests").await,
                requests,
                "{failing}"
            );

            let sent = app
                .api()
                .send_relationship_request(app.as_(&app.broker_bam, send_request(&request_id)))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(rows(&db, "audit_events").await, audit + 1, "{failing}");
            assert_eq!(rows(&db, "outbox_events").await, outbox + 1, "{failing}");
            // Withdraw it so the next round can send again.
            app.api()
                .withdraw_relationship_request(app.as_(
                    &app.broker_bam,
                    pb::WithdrawRelationshipRequestRequest {
                        request_id: Uuid::new_v4().to_string(),
                        name: sent.request.unwrap().name,
                    },
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
        let db = ccp_platform::db::connect(&backend.settings("delegation"))
            .await
            .unwrap();
        let request_id = Uuid::new_v4().to_string();
        let first = app
            .api()
            .send_relationship_request(app.as_(&app.broker_bam, send_request(&request_id)))
            .await
            .unwrap()
            .into_inner();
        let audit = rows(&db, "audit_events").await;
        let outbox = rows(&db, "outbox_events").await;
        app.advance_clock(chrono::Duration::minutes(5)).await;
        for retry in [request_id.clone(), format!("  {request_id}\n")] {
            let again = app
                .api()
                .send_relationship_request(app.as_(&app.broker_bam, send_request(&retry)))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(again, first, "{}", app.backend);
        }
        assert_eq!(rows(&db, "audit_events").await, audit, "{}", app.backend);
        assert_eq!(rows(&db, "outbox_events").await, outbox, "{}", app.backend);
        assert_eq!(rows(&db, "relationship_requests").await, 1);
    }
}
