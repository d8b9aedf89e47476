//! R-AU-1 audit records and R-EV-1 outbox events of identity.

use ccp_proto::identity::v1 as pb;
use tonic::Code;

use crate::helpers::*;

const BN: &str = "123456782";

#[tokio::test]
async fn r_au_1_credential_history_is_listed_per_business_and_own_history_per_person() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let bam = app.person("Wes").await;
        let t = Some(bam.access_token.as_str());
        for i in 0..3 {
            app.create_credential(&bam.access_token, BN, &format!("mc-{i}"))
                .await
                .unwrap();
        }
        let mut id = app.identity.clone();
        let page1 = id
            .list_audit_events(app.req(
                pb::ListAuditEventsRequest {
                    parent: format!("businesses/{BN}"),
                    page_size: 2,
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page1.events.len(), 2, "{}", backend.name());
        assert!(!page1.next_page_token.is_empty());
        let e = &page1.events[0];
        assert_eq!(e.actor, bam.principal);
        assert_eq!(e.acting_for, BN);
        assert_eq!(e.action, "identity.credential.create");
        assert!(
            e.target
                .starts_with(&format!("businesses/{BN}/machineCredentials/"))
        );
        assert!(e.name.starts_with(&format!("businesses/{BN}/auditEvents/")));
        assert_eq!(e.request_id, "mc-0");
        assert!(e.time.is_some());
        let page2 = id
            .list_audit_events(app.req(
                pb::ListAuditEventsRequest {
                    parent: format!("businesses/{BN}"),
                    page_size: 2,
                    page_token: page1.next_page_token,
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page2.events.len(), 1);
        assert!(page2.next_page_token.is_empty());

        let mine = id
            .list_audit_events(app.req(
                pb::ListAuditEventsRequest {
                    parent: "profiles/me".into(),
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        let actions: Vec<_> = mine.events.iter().map(|e| e.action.as_str()).collect();
        assert!(actions.contains(&"identity.session.sign_in"), "{actions:?}");
        assert!(actions.contains(&"identity.profile.create"));
        assert!(mine.events.iter().all(|e| e.actor == bam.principal));
        let created = mine
            .events
            .iter()
            .find(|e| e.action == "identity.profile.create")
            .unwrap();
        assert!(created.before_json.is_empty());
        assert!(created.after_json.contains("Wes"));

        // Another business's history is empty; a bad parent is named.
        let other = id
            .list_audit_events(app.req(
                pb::ListAuditEventsRequest {
                    parent: "businesses/000000000".into(),
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(other.events.is_empty());
        let err = id
            .list_audit_events(app.req(
                pb::ListAuditEventsRequest {
                    parent: "profiles/someone".into(),
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["parent"]);
        let err = id
            .list_audit_events(app.req(pb::ListAuditEventsRequest::default(), None))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
}
