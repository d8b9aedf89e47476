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

#[tokio::test]
async fn r_ev_1_events_are_written_to_the_outbox_with_the_change_and_published() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let s = app.person("Xia").await;
        use sea_orm::ConnectionTrait as _;
        let db = app.db().await;
        let count = |sql: &'static str| {
            let db = db.clone();
            async move {
                let row = db
                    .query_one_raw(sea_orm::Statement::from_string(
                        db.get_database_backend(),
                        sql,
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                row.try_get_by_index::<i64>(0).unwrap()
            }
        };
        assert_eq!(
            count("SELECT COUNT(*) FROM profiles").await,
            1,
            "{}",
            backend.name()
        );
        assert_eq!(count("SELECT COUNT(*) FROM outbox_events").await, 1);
        let event = app
            .event(ccp_proto::common::v1::EventType::ProfileCreated, |e| {
                e.principals == vec![s.principal.clone()]
            })
            .await;
        assert_eq!(event.service, "identity");
        assert!(!event.id.is_empty() && event.occurred_at.is_some());
        assert_eq!(event.actor, s.principal);
        // A refused write leaves neither a change nor an event.
        let err = app
            .identity
            .clone()
            .create_profile(app.req(
                pb::CreateProfileRequest {
                    request_id: "again".into(),
                    profile: Some(TestApp::profile_input("Xia")),
                },
                Some(&s.access_token),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);
        assert_eq!(count("SELECT COUNT(*) FROM outbox_events").await, 1);
    }
}
