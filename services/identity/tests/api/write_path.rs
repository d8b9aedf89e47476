//! R-AU-1 and R-EV-1 by construction: every write goes through the platform's
//! unit of work, so a write that fails after its audit record leaves nothing,
//! and a replayed request id answers from the first call without a second
//! audit record or event.

use ccp_proto::identity::v1 as pb;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};

use ccp_platform::testing::{allow_inserts, refuse_inserts};

use crate::helpers::*;

const BN: &str = "123456782";

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

#[tokio::test]
async fn r_au_1_a_write_that_fails_after_its_audit_record_leaves_nothing() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let s = app.person("Yara").await;
        let db = app.db().await;
        let audits =
            "SELECT COUNT(*) FROM audit_events WHERE action = 'identity.credential.create'";
        let events = count(&db, "SELECT COUNT(*) FROM outbox_events").await;
        let audit_rows = count(&db, "SELECT COUNT(*) FROM audit_events").await;

        refuse_inserts(&db, "outbox_events").await.unwrap();
        let err = app
            .create_credential(&s.access_token, BN, "mc-1")
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal, "{}", backend.name());
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM machine_credentials").await,
            0,
            "{}: the change was rolled back",
            backend.name()
        );
        assert_eq!(count(&db, audits).await, 0, "{}", backend.name());
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM audit_events").await,
            audit_rows
        );
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM outbox_events").await,
            events
        );

        // Nothing was stored under the request id either: the retry is fresh.
        allow_inserts(&db, "outbox_events").await.unwrap();
        let created = app
            .create_credential(&s.access_token, BN, "mc-1")
            .await
            .unwrap();
        assert!(!created.client_secret.is_empty(), "{}", backend.name());
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM machine_credentials").await,
            1
        );
        assert_eq!(count(&db, audits).await, 1);
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM outbox_events").await,
            events + 1
        );
    }
}

#[tokio::test]
async fn r_au_1_a_replayed_request_id_returns_the_first_answer_without_a_second_audit_record() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let s = app.person("Zane").await;
        let db = app.db().await;
        let created = app
            .create_credential(&s.access_token, BN, "mc-1")
            .await
            .unwrap();
        let name = created.credential.unwrap().name;
        let revoke = || {
            let mut client = app.identity.clone();
            let request = app.req(
                pb::RevokeMachineCredentialRequest {
                    name: name.clone(),
                    reason: "rotated".into(),
                    request_id: "revoke-1".into(),
                },
                Some(&s.access_token),
            );
            async move { client.revoke_machine_credential(request).await }
        };
        let first = revoke().await.unwrap().into_inner();
        let audits =
            "SELECT COUNT(*) FROM audit_events WHERE action = 'identity.credential.revoke'";
        let events = count(&db, "SELECT COUNT(*) FROM outbox_events").await;
        assert_eq!(count(&db, audits).await, 1, "{}", backend.name());

        app.clock.advance(chrono::Duration::minutes(5));
        let again = revoke().await.unwrap().into_inner();
        assert_eq!(again, first, "{}", backend.name());
        assert_eq!(count(&db, audits).await, 1, "{}", backend.name());
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM outbox_events").await,
            events
        );

        // The same for a profile update, and a replay with a trimmed request id.
        let profile = app.my_profile(&s.access_token).await.unwrap();
        let update = |request_id: &str| {
            let mut client = app.identity.clone();
            let request = app.req(
                pb::UpdateMyProfileRequest {
                    profile: Some(pb::Profile {
                        phone: "+1 613 555 0199".into(),
                        etag: profile.etag.clone(),
                        ..profile.clone()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["phone".into()],
                    }),
                    request_id: request_id.to_owned(),
                },
                Some(&s.access_token),
            );
            async move { client.update_my_profile(request).await }
        };
        let first = update("update-1").await.unwrap().into_inner();
        let again = update("  update-1 ").await.unwrap().into_inner();
        assert_eq!(again, first, "{}", backend.name());
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM audit_events WHERE action = 'identity.profile.update'"
            )
            .await,
            1,
            "{}",
            backend.name()
        );
    }
}
