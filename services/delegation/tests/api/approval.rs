//! R-DE-2: approval (level, programs, expiry, visibility), one active
//! relationship per pair, rejection; R-IN-1 on approvals.

use ccp_platform::error::field_violations;
use ccp_platform::store::timestamp;
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;
use chrono::Duration;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn r_de_2_the_client_approves_at_business_level_creating_the_relationship() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        let mut approval = app.approval(&sent.id, t0() + Duration::days(365));
        approval
            .visibility
            .push(pb::Visibility::SubmittedByClient as i32);
        let resp = app
            .api()
            .approve_relationship_request(app.as_(&app.importer_bam, approval.clone()))
            .await
            .unwrap()
            .into_inner();
        let rel = resp.relationship.unwrap();
        let req = resp.request.unwrap();
        assert_eq!(
            req.state,
            pb::RelationshipRequestState::Approved as i32,
            "{}",
            app.backend
        );
        assert_eq!(req.relationship, rel.name);
        assert_eq!(rel.state, pb::RelationshipState::Active as i32);
        assert_eq!(rel.level, pb::RelationshipLevel::Business as i32);
        assert_eq!(rel.request_id, sent.id);
        assert_eq!(
            rel.visibility,
            vec![
                pb::Visibility::SubmittedByProvider as i32,
                pb::Visibility::SubmittedByClient as i32
            ]
        );
        assert!(!resp.revision.is_empty());
        // The provider sees it under its own name.
        let as_provider = app
            .api()
            .get_relationship(app.as_(
                &app.broker_bam,
                pb::GetRelationshipRequest {
                    name: format!("businesses/{BROKER}/relationships/{}", rel.id),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(as_provider.id, rel.id);
        // Not under an unrelated business.
        let err = app
            .api()
            .get_relationship(app.as_(
                &app.broker_bam,
                pb::GetRelationshipRequest {
                    name: format!("businesses/{OTHER}/relationships/{}", rel.id),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        // A replay returns the same answer.
        let again = app
            .api()
            .approve_relationship_request(app.as_(&app.importer_bam, approval))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.relationship.unwrap().id, rel.id);
        let events = events_until(&app.ctx, |e| {
            !of_type(e, EventType::RelationshipRequestApproved).is_empty()
        })
        .await;
        assert_eq!(
            of_type(&events, EventType::RelationshipRequestApproved).len(),
            1
        );
    }
}

#[tokio::test]
async fn r_de_2_program_level_covers_only_the_clients_programs() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        let mut approval = app.approval(&sent.id, t0() + Duration::days(30));
        approval.level = pb::RelationshipLevel::Program as i32;
        // RM0003 has the client's BN9 but accounts does not list it.
        approval.program_accounts = vec![format!("{IMPORTER}RM0003")];
        let err = app
            .api()
            .approve_relationship_request(app.as_(&app.importer_bam, approval.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", app.backend);
        assert_eq!(field_violations(&err)[0].field, "program_accounts[0]");
        approval.program_accounts = vec![format!("{IMPORTER}RM0002")];
        let rel = app
            .api()
            .approve_relationship_request(app.as_(&app.importer_bam, approval))
            .await
            .unwrap()
            .into_inner()
            .relationship
            .unwrap();
        assert_eq!(rel.level, pb::RelationshipLevel::Program as i32);
        assert_eq!(rel.program_accounts, vec![format!("{IMPORTER}RM0002")]);
    }
}

#[tokio::test]
async fn r_de_2_bad_approvals_name_the_field_and_write_nothing() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        let audit_before = app.audit_count(IMPORTER).await;
        let now = app.clock.now();
        let mut cases = Vec::new();
        cases.push((
            app.approval(&sent.id, now - Duration::seconds(1)),
            "expire_time",
        ));
        cases.push((app.approval(&sent.id, now), "expire_time"));
        cases.push((
            app.approval(
                &sent.id,
                now + Duration::days(730) + Duration::milliseconds(1),
            ),
            "expire_time",
        ));
        let mut no_expiry = app.approval(&sent.id, now);
        no_expiry.expire_time = None;
        cases.push((no_expiry, "expire_time"));
        let mut vis = app.approval(&sent.id, now + Duration::days(30));
        vis.visibility = vec![pb::Visibility::SubmittedByClient as i32];
        cases.push((vis, "visibility"));
        let mut other = app.approval(&sent.id, now + Duration::days(30));
        other.level = pb::RelationshipLevel::Program as i32;
        other.program_accounts = vec![format!("{BROKER}RM0001")];
        cases.push((other, "program_accounts[0]"));
        let mut bad_bn = app.approval(&sent.id, now + Duration::days(30));
        bad_bn.level = pb::RelationshipLevel::Program as i32;
        bad_bn.program_accounts = vec!["123456789RM0001".to_owned()];
        cases.push((bad_bn, "program_accounts[0]"));
        let mut no_level = app.approval(&sent.id, now + Duration::days(30));
        no_level.level = 0;
        cases.push((no_level, "level"));
        let mut bad_name = app.approval(&sent.id, now + Duration::days(30));
        bad_name.name = "businesses/123456789/receivedRequests/x".to_owned();
        cases.push((bad_name, "name"));
        for (req, field) in cases {
            let err = app
                .api()
                .approve_relationship_request(app.as_(&app.importer_bam, req))
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "{field} on {}",
                app.backend
            );
            let fields: Vec<_> = field_violations(&err)
                .into_iter()
                .map(|v| v.field)
                .collect();
            assert!(
                fields.contains(&field.to_owned()),
                "{fields:?} lacks {field}"
            );
        }
        // The maximum itself is allowed... but first check nothing was written.
        assert_eq!(app.audit_count(IMPORTER).await, audit_before);
        assert_eq!(
            app.received().await[0].state,
            pb::RelationshipRequestState::Pending as i32
        );
        app.api()
            .approve_relationship_request(app.as_(
                &app.importer_bam,
                app.approval(&sent.id, now + Duration::days(730)),
            ))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn r_de_2_the_maximum_expiry_is_configurable() {
    for backend in TestBackend::all().await {
        let app = spawn_app_with(&backend, |s| s.max_relationship_days = 10).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        let err = app
            .api()
            .approve_relationship_request(app.as_(
                &app.importer_bam,
                app.approval(&sent.id, t0() + Duration::days(11)),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            field_violations(&err)[0].field,
            "expire_time",
            "{}",
            app.backend
        );
    }
}

#[tokio::test]
async fn r_de_2_approving_while_a_relationship_is_active_names_the_one_to_update() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let rel = app.relate(t0() + Duration::days(100)).await;
        // A request sent after the relationship became active, then approved.
        let sent = app.send(IMPORTER).await.request.unwrap();
        let err = app
            .api()
            .approve_relationship_request(app.as_(
                &app.importer_bam,
                app.approval(&sent.id, t0() + Duration::days(50)),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", app.backend);
        assert!(err.message().contains(&rel.name), "{}", err.message());
        // Once the first has expired, the waiting request can be approved.
        app.set_clock(t0() + Duration::days(29)).await;
        let mut after = app.approval(&sent.id, t0() + Duration::days(200));
        after.request_id = "later".to_owned();
        let err = app
            .api()
            .approve_relationship_request(app.as_(&app.importer_bam, after.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::FailedPrecondition,
            "still active on day 29"
        );
        app.set_clock(t0() + Duration::days(100)).await;
        after.request_id = "later2".to_owned();
        let second = app
            .api()
            .approve_relationship_request(app.as_(&app.importer_bam, after))
            .await
            .unwrap_err();
        // The waiting request itself expired (30 days pending) by day 100.
        assert_eq!(second.code(), Code::FailedPrecondition);
    }
}

#[tokio::test]
async fn r_de_2_after_expiry_a_new_request_can_be_approved_even_before_the_sweep() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let first = app.relate(t0() + Duration::days(5)).await;
        app.set_clock(t0() + Duration::days(5)).await;
        let second = app.relate(t0() + Duration::days(60)).await;
        assert_ne!(first.id, second.id);
        let first = app.get(&first.name).await;
        assert_eq!(
            first.end_reason,
            pb::EndReason::Expired as i32,
            "{}",
            app.backend
        );
        let facts = app.pair_facts().await;
        assert_eq!(facts.relationships.len(), 2);
        assert_eq!(facts.relationships[0].id, second.id, "newest first");
    }
}

#[tokio::test]
async fn r_de_2_the_client_rejects_with_a_reason() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        let name = format!("businesses/{IMPORTER}/receivedRequests/{}", sent.id);
        let err = app
            .api()
            .reject_relationship_request(app.as_(
                &app.importer_bam,
                pb::RejectRelationshipRequestRequest {
                    request_id: "r0".to_owned(),
                    name: name.clone(),
                    reason: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(field_violations(&err)[0].field, "reason", "{}", app.backend);
        let rejected = app
            .api()
            .reject_relationship_request(app.as_(
                &app.importer_bam,
                pb::RejectRelationshipRequestRequest {
                    request_id: "r1".to_owned(),
                    name: name.clone(),
                    reason: "we use another broker".to_owned(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        assert_eq!(
            rejected.state,
            pb::RelationshipRequestState::Rejected as i32
        );
        assert_eq!(rejected.reject_reason, "we use another broker");
        assert_eq!(rejected.decided_by, app.importer_bam.to_string());
        // The event carries the reason (the notifications service tells both sides).
        let events = events_until(&app.ctx, |e| {
            !of_type(e, EventType::RelationshipRequestRejected).is_empty()
        })
        .await;
        let event = of_type(&events, EventType::RelationshipRequestRejected)
            .pop()
            .unwrap();
        let details: serde_json::Value = serde_json::from_str(&event.details_json).unwrap();
        assert_eq!(details["reject_reason"], "we use another broker");
        // Only the client side approves: the provider's name is not a received request.
        let mut wrong_side = app.approval(&sent.id, t0() + Duration::days(3));
        wrong_side.name = format!("businesses/{BROKER}/receivedRequests/{}", sent.id);
        let err = app
            .api()
            .approve_relationship_request(app.as_(&app.broker_bam, wrong_side))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = app
            .api()
            .approve_relationship_request(app.as_(
                &app.importer_bam,
                app.approval(&sent.id, t0() + Duration::days(3)),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let _ = timestamp(t0());
    }
}
