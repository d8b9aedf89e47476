//! R-DE-1: relationship requests — sending, waiting for registration,
//! visibility, the pending period, withdrawal, lists; R-IN-1 on sends.

use ccp_platform::error::field_violations;
use ccp_platform::store::{from_timestamp, timestamp};
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;
use chrono::Duration;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::*;

fn send_req(client: &str, programs: &[&str], note: &str) -> pb::SendRelationshipRequestRequest {
    pb::SendRelationshipRequestRequest {
        request_id: Uuid::new_v4().to_string(),
        parent: format!("businesses/{BROKER}"),
        client: client.to_owned(),
        program_accounts: programs.iter().map(|p| (*p).to_owned()).collect(),
        note: note.to_owned(),
    }
}

#[tokio::test]
async fn r_de_1_a_request_to_a_registered_client_is_visible_at_once_for_30_days() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        assert_eq!(
            sent.name,
            format!("businesses/{BROKER}/sentRequests/{}", sent.id)
        );
        assert_eq!(sent.state, pb::RelationshipRequestState::Pending as i32);
        let visible = from_timestamp(sent.visible_time.as_ref().unwrap()).unwrap();
        let expire = from_timestamp(sent.expire_time.as_ref().unwrap()).unwrap();
        assert_eq!(visible, t0(), "{}", app.backend);
        assert_eq!(expire, t0() + Duration::days(30));
        let received = app.received().await;
        assert_eq!(received.len(), 1);
        assert_eq!(
            received[0].name,
            format!("businesses/{IMPORTER}/receivedRequests/{}", sent.id)
        );
        let events = events_until(&app.ctx, |e| !e.is_empty()).await;
        let sent_events = of_type(&events, EventType::RelationshipRequestSent);
        assert_eq!(sent_events[0].pairs[0].provider, BROKER);
        assert_eq!(sent_events[0].pairs[0].client, IMPORTER);
    }
}

#[tokio::test]
async fn r_de_1_one_pending_request_per_pair() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.send(IMPORTER).await;
        let err = app
            .api()
            .send_relationship_request(app.as_(&app.broker_bam, send_req(IMPORTER, &[], "again")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{}", app.backend);
        // Another pair is fine.
        app.send(OTHER).await;
    }
}

#[tokio::test]
async fn r_de_1_a_request_to_an_unregistered_bn_waits_until_the_client_registers() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let sent = app.send(OTHER).await.request.unwrap();
        assert!(sent.visible_time.is_none() && sent.expire_time.is_none());
        // Not visible to anyone acting for OTHER yet: its received list is empty.
        let list = |app: &TestApp| {
            let mut api = app.api();
            let req = app.as_(
                &app.importer_bam,
                pb::ListReceivedRequestsRequest {
                    parent: format!("businesses/{OTHER}"),
                    ..Default::default()
                },
            );
            async move {
                api.list_received_requests(req)
                    .await
                    .unwrap()
                    .into_inner()
                    .requests
            }
        };
        assert!(list(&app).await.is_empty(), "{}", app.backend);
        // Long after sending, the client registers: its 30 days start then.
        app.advance_clock(Duration::days(40)).await;
        let registered_at = app.clock.now();
        let registered = app.register_business(OTHER).await;
        // Delegation learns of it from accounts' event (before any read asks).
        wait_for(|| {
            let f = app.consumer_position(&backend);
            let p = registered.position.clone();
            async move { (f.await.as_deref() == Some(p.as_str())).then_some(()) }
        })
        .await;
        let seen = wait_for(|| {
            let f = list(&app);
            async move { f.await.into_iter().next() }
        })
        .await;
        assert_eq!(seen.id, sent.id);
        assert_eq!(seen.state, pb::RelationshipRequestState::Pending as i32);
        assert_eq!(
            from_timestamp(seen.visible_time.as_ref().unwrap()).unwrap(),
            registered_at
        );
        assert_eq!(
            from_timestamp(seen.expire_time.as_ref().unwrap()).unwrap(),
            registered_at + Duration::days(30)
        );
        let events = events_until(&app.ctx, |e| {
            !of_type(e, EventType::RelationshipRequestVisible).is_empty()
        })
        .await;
        let visible = of_type(&events, EventType::RelationshipRequestVisible);
        assert_eq!(visible.len(), 1);
        assert_eq!(visible[0].pairs[0].client, OTHER);
    }
}

#[tokio::test]
async fn r_de_1_registration_known_to_accounts_is_asked_for_when_needed_now() {
    for backend in TestBackend::all().await {
        // Accounts' events go to a bus delegation does not read: only asking
        // accounts (GetBusinessFacts) can tell delegation of the registration.
        let app = spawn_app_wired(&backend, Wiring::AccountsEventsCut).await;
        let sent = app.send(OTHER).await.request.unwrap();
        assert!(sent.visible_time.is_none());
        let registered_at = app.clock.now();
        app.register_business(OTHER).await;
        let got = app.received_of(OTHER).await;
        assert_eq!(got.len(), 1, "{}", app.backend);
        assert_eq!(got[0].id, sent.id);
        assert_eq!(
            from_timestamp(got[0].visible_time.as_ref().unwrap()).unwrap(),
            registered_at
        );
        assert_eq!(
            app.consumer_position(&backend).await,
            None,
            "no accounts event reached delegation"
        );
    }
}

#[tokio::test]
async fn r_de_1_the_registration_consumer_resumes_after_its_stored_position() {
    for backend in TestBackend::all().await {
        let mut app = spawn_app(&backend).await;
        app.send(OTHER).await;
        let first = app.register_business(OTHER).await.position;
        // The consumer applies the event and stores its position; no read
        // has asked accounts, so the request became visible through it.
        wait_for(|| {
            let f = app.consumer_position(&backend);
            let p = first.clone();
            async move { (f.await.as_deref() == Some(p.as_str())).then_some(()) }
        })
        .await;
        let events = events_until(&app.ctx, |e| {
            !of_type(e, EventType::RelationshipRequestVisible).is_empty()
        })
        .await;
        let visible = of_type(&events, EventType::RelationshipRequestVisible);
        assert_eq!(visible.len(), 1, "{}", app.backend);
        assert_eq!(visible[0].pairs[0].client, OTHER);
        assert!(
            app.received_of(OTHER).await[0].visible_time.is_some(),
            "{}",
            app.backend
        );
        app.shutdown().await;
        // A registration published while the service is down is handled on restart.
        let third = FOURTH;
        let second = app.register_business(third).await.position;
        app.restart().await;
        let p = second.clone();
        wait_for(|| {
            let f = app.consumer_position(&backend);
            let p = p.clone();
            async move { (f.await.as_deref() == Some(p.as_str())).then_some(()) }
        })
        .await;
        let before = app.audit_count(OTHER).await;
        app.send(third).await;
        let r = wait_for(|| {
            let f = app.received_of(third);
            async move { f.await.into_iter().next() }
        })
        .await;
        assert!(r.visible_time.is_some(), "{}", app.backend);
        // The first registration was not handled again (no second "visible" record).
        assert_eq!(app.audit_count(OTHER).await, before);
        app.shutdown().await;
    }
}

#[tokio::test]
async fn r_de_1_pending_requests_expire_30_days_after_they_became_visible() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        app.set_clock(t0() + Duration::days(30) - Duration::milliseconds(1))
            .await;
        assert_eq!(
            app.received().await[0].state,
            pb::RelationshipRequestState::Pending as i32
        );
        app.set_clock(t0() + Duration::days(30)).await;
        // Expired in reads before the sweep records it...
        assert_eq!(
            app.received().await[0].state,
            pb::RelationshipRequestState::Expired as i32
        );
        let err = app
            .api()
            .approve_relationship_request(app.as_(
                &app.importer_bam,
                app.approval(&sent.id, app.clock.now() + Duration::days(90)),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", app.backend);
        // ...and a new request to the pair may be sent.
        app.send(IMPORTER).await;
        let report = app.sweep().await;
        assert_eq!(
            report.requests_expired, 0,
            "already recorded by the new send"
        );
        let events = events_until(&app.ctx, |e| {
            !of_type(e, EventType::RelationshipRequestExpired).is_empty()
        })
        .await;
        assert_eq!(
            of_type(&events, EventType::RelationshipRequestExpired).len(),
            1
        );
    }
}

#[tokio::test]
async fn r_de_1_the_sweep_records_expired_requests_once() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.send(IMPORTER).await;
        app.set_clock(t0() + Duration::days(31)).await;
        assert_eq!(app.sweep().await.requests_expired, 1, "{}", app.backend);
        assert_eq!(app.sweep().await.requests_expired, 0);
        let expired = app
            .api()
            .list_sent_requests(app.as_(
                &app.broker_bam,
                pb::ListSentRequestsRequest {
                    parent: format!("businesses/{BROKER}"),
                    state: pb::RelationshipRequestState::Expired as i32,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .requests;
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].decided_by, "system");
    }
}

#[tokio::test]
async fn r_de_1_the_provider_withdraws_only_under_its_sent_requests() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        // Named under the client: not a sent request there.
        let err = app
            .api()
            .withdraw_relationship_request(app.as_(
                &app.broker_bam,
                pb::WithdrawRelationshipRequestRequest {
                    request_id: "w0".to_owned(),
                    name: format!("businesses/{IMPORTER}/sentRequests/{}", sent.id),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{}", app.backend);
        let withdraw = pb::WithdrawRelationshipRequestRequest {
            request_id: "w1".to_owned(),
            name: sent.name.clone(),
        };
        let done = app
            .api()
            .withdraw_relationship_request(app.as_(&app.broker_bam, withdraw.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            done.request.unwrap().state,
            pb::RelationshipRequestState::Withdrawn as i32
        );
        // A retry with the same request id returns the first result.
        let again = app
            .api()
            .withdraw_relationship_request(app.as_(&app.broker_bam, withdraw))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.revision, done.revision);
        // A second withdrawal is refused.
        let err = app
            .api()
            .withdraw_relationship_request(app.as_(
                &app.broker_bam,
                pb::WithdrawRelationshipRequestRequest {
                    request_id: "w2".to_owned(),
                    name: sent.name,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
    }
}

#[tokio::test]
async fn r_de_1_sent_and_received_lists_page_and_filter_by_state() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        for bn in [IMPORTER, OTHER, FOURTH] {
            app.send(bn).await;
        }
        let mut names = Vec::new();
        let mut token = String::new();
        loop {
            let page = app
                .api()
                .list_sent_requests(app.as_(
                    &app.broker_bam,
                    pb::ListSentRequestsRequest {
                        parent: format!("businesses/{BROKER}"),
                        page_size: 2,
                        page_token: token.clone(),
                        state: pb::RelationshipRequestState::Pending as i32,
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            names.extend(page.requests.into_iter().map(|r| r.client));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(names, vec![IMPORTER, OTHER, FOURTH], "{}", app.backend);
        // The client sees only visible requests: OTHER's are not in IMPORTER's list.
        assert_eq!(app.received().await.len(), 1);
    }
}

#[tokio::test]
async fn r_de_1_bad_sends_name_the_field_and_write_nothing() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let cases = [
            (send_req("123456789", &[], "n"), "client"),
            (send_req(BROKER, &[], "n"), "client"),
            (
                send_req(IMPORTER, &["123456782RM0001"], "n"),
                "program_accounts[0]",
            ),
            (
                send_req(IMPORTER, &["888316171RM0000"], "n"),
                "program_accounts[0]",
            ),
            (send_req(IMPORTER, &[], ""), "note"),
            (send_req(IMPORTER, &[], &"x".repeat(501)), "note"),
        ];
        for (req, field) in cases {
            let err = app
                .api()
                .send_relationship_request(app.as_(&app.broker_bam, req))
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
        let mut no_id = send_req(IMPORTER, &[], "n");
        no_id.request_id.clear();
        let err = app
            .api()
            .send_relationship_request(app.as_(&app.broker_bam, no_id))
            .await
            .unwrap_err();
        assert_eq!(field_violations(&err)[0].field, "request_id");
        assert_eq!(app.audit_count(BROKER).await, 0, "nothing written");
        assert!(app.received().await.is_empty());
        let _ = timestamp(t0());
    }
}

#[tokio::test]
async fn r_de_1_a_request_may_name_program_accounts_of_the_client() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let programs = [format!("{IMPORTER}RM0002"), format!("{IMPORTER}RM0001")];
        let sent = app
            .api()
            .send_relationship_request(app.as_(
                &app.broker_bam,
                send_req(
                    IMPORTER,
                    &[&programs[0], &programs[1]],
                    "for your RM accounts",
                ),
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        assert_eq!(
            sent.program_accounts,
            vec![programs[1].clone(), programs[0].clone()],
            "{}",
            app.backend
        );
        assert_eq!(
            app.received().await[0].program_accounts,
            sent.program_accounts
        );
    }
}

#[tokio::test]
async fn r_de_1_the_pending_period_is_configurable() {
    for backend in TestBackend::all().await {
        let app = spawn_app_with(&backend, |s| s.pending_request_days = 5).await;
        let sent = app.send(IMPORTER).await.request.unwrap();
        assert_eq!(
            from_timestamp(sent.expire_time.as_ref().unwrap()).unwrap(),
            t0() + Duration::days(5),
            "{}",
            app.backend
        );
    }
}

async fn request_facts(app: &TestApp, name: &str) -> Result<pb::RequestFacts, tonic::Status> {
    app.facts()
        .get_request_facts(
            app.internal(tonic::Request::new(pb::GetRequestFactsRequest {
                name: name.to_owned(),
            })),
        )
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn r_de_2_request_facts_name_the_sides_programs_and_state_of_a_request() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let programs = [format!("{IMPORTER}RM0001"), format!("{IMPORTER}RM0002")];
        let sent = app
            .api()
            .send_relationship_request(app.as_(
                &app.broker_bam,
                send_req(IMPORTER, &[&programs[0], &programs[1]], "programs"),
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        for name in [
            format!("businesses/{IMPORTER}/receivedRequests/{}", sent.id),
            format!("businesses/{BROKER}/sentRequests/{}", sent.id),
            sent.id.clone(),
        ] {
            let facts = request_facts(&app, &name).await.unwrap();
            assert_eq!(facts.id, sent.id, "{}", app.backend);
            assert_eq!(facts.provider, BROKER);
            assert_eq!(facts.client, IMPORTER);
            assert_eq!(facts.program_accounts, programs.to_vec());
            assert_eq!(facts.state, pb::RelationshipRequestState::Pending as i32);
        }
        // A business-level request names no programs.
        let business = app.send(OTHER).await.request.unwrap();
        let facts = request_facts(&app, &business.id).await.unwrap();
        assert_eq!(facts.client, OTHER, "{}", app.backend);
        assert!(facts.program_accounts.is_empty());
        // Unknown, or named under a business that is not its side: NOT_FOUND.
        for name in [
            format!("businesses/{IMPORTER}/receivedRequests/{}", Uuid::new_v4()),
            format!("businesses/{OTHER}/receivedRequests/{}", sent.id),
            format!("businesses/{IMPORTER}/sentRequests/{}", sent.id),
            Uuid::new_v4().to_string(),
        ] {
            let err = request_facts(&app, &name).await.unwrap_err();
            assert_eq!(err.code(), Code::NotFound, "{name} {}", app.backend);
        }
        let err = request_facts(&app, "nope").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", app.backend);
        assert_eq!(field_violations(&err)[0].field, "name");
        // The state follows the clock: past its pending period it is EXPIRED.
        app.set_clock(t0() + Duration::days(31)).await;
        let facts = request_facts(&app, &sent.id).await.unwrap();
        assert_eq!(
            facts.state,
            pb::RelationshipRequestState::Expired as i32,
            "{}",
            app.backend
        );
    }
}
