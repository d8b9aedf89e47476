//! Races on PostgreSQL: the pair's revision row serializes changes to a pair,
//! and the partial unique indexes back the invariants.

use ccp_platform::testing::TestBackend;
use ccp_proto::delegation::v1 as pb;
use chrono::Duration;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::*;

const ROUNDS: usize = 8;

async fn postgres() -> Option<TestBackend> {
    let pg = TestBackend::postgres().await;
    if pg.is_none() {
        eprintln!("skipped: CCP_TEST_DATABASE_URL not set");
    }
    pg
}

async fn relationships_of_importer(app: &TestApp) -> Vec<pb::Relationship> {
    app.api()
        .list_relationships(app.as_(
            &app.importer_bam,
            pb::ListRelationshipsRequest {
                parent: format!("businesses/{IMPORTER}"),
                page_size: 500,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .relationships
}

async fn end(app: &TestApp, name: &str) {
    app.api()
        .end_relationship(app.as_(
            &app.importer_bam,
            pb::EndRelationshipRequest {
                request_id: Uuid::new_v4().to_string(),
                name: name.to_owned(),
                note: String::new(),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn r_de_2_two_concurrent_approvals_of_one_request_leave_one_relationship_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    let app = spawn_app(&backend).await;
    for round in 0..ROUNDS {
        let sent = app.send(IMPORTER).await.request.unwrap();
        let expire = app.clock.now() + Duration::days(30);
        let (mut c1, mut c2) = (app.api(), app.api());
        let (a, b) = tokio::join!(
            c1.approve_relationship_request(
                app.as_(&app.importer_bam, app.approval(&sent.id, expire))
            ),
            c2.approve_relationship_request(
                app.as_(&app.importer_bam, app.approval(&sent.id, expire))
            ),
        );
        let oks: Vec<_> = [&a, &b].into_iter().filter(|r| r.is_ok()).collect();
        assert_eq!(oks.len(), 1, "round {round}: {a:?} {b:?}");
        let loser = [a, b].into_iter().find_map(Result::err).unwrap();
        assert_eq!(loser.code(), Code::FailedPrecondition, "round {round}");
        let active: Vec<_> = relationships_of_importer(&app)
            .await
            .into_iter()
            .filter(|r| r.state == pb::RelationshipState::Active as i32)
            .collect();
        assert_eq!(active.len(), 1, "round {round}");
        end(&app, &active[0].name).await;
    }
    assert_eq!(relationships_of_importer(&app).await.len(), ROUNDS);
}

#[tokio::test]
async fn r_de_1_r_de_2_concurrent_approve_and_withdraw_exactly_one_wins_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    let app = spawn_app(&backend).await;
    let mut approvals = 0;
    for round in 0..ROUNDS {
        let sent = app.send(IMPORTER).await.request.unwrap();
        let expire = app.clock.now() + Duration::days(30);
        let (mut c1, mut c2) = (app.api(), app.api());
        let (approve, withdraw) = tokio::join!(
            c1.approve_relationship_request(
                app.as_(&app.importer_bam, app.approval(&sent.id, expire))
            ),
            c2.withdraw_relationship_request(app.as_(
                &app.broker_bam,
                pb::WithdrawRelationshipRequestRequest {
                    request_id: Uuid::new_v4().to_string(),
                    name: sent.name.clone(),
                },
            )),
        );
        assert!(
            approve.is_ok() != withdraw.is_ok(),
            "round {round}: {approve:?} {withdraw:?}"
        );
        let final_state = app
            .api()
            .list_sent_requests(app.as_(
                &app.broker_bam,
                pb::ListSentRequestsRequest {
                    parent: format!("businesses/{BROKER}"),
                    page_size: 500,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .requests
            .into_iter()
            .find(|r| r.id == sent.id)
            .unwrap()
            .state;
        match approve {
            Ok(resp) => {
                approvals += 1;
                assert_eq!(final_state, pb::RelationshipRequestState::Approved as i32);
                end(&app, &resp.into_inner().relationship.unwrap().name).await;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition);
                assert_eq!(final_state, pb::RelationshipRequestState::Withdrawn as i32);
            }
        }
    }
    assert_eq!(relationships_of_importer(&app).await.len(), approvals);
    eprintln!("approve won {approvals} of {ROUNDS} rounds; withdraw the others");
}

#[tokio::test]
async fn r_de_1_concurrent_sends_for_one_pair_leave_one_pending_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    let app = spawn_app(&backend).await;
    let req = || pb::SendRelationshipRequestRequest {
        request_id: Uuid::new_v4().to_string(),
        parent: format!("businesses/{BROKER}"),
        client: IMPORTER.to_owned(),
        program_accounts: vec![],
        note: "hello".to_owned(),
    };
    let (mut c1, mut c2) = (app.api(), app.api());
    let (a, b) = tokio::join!(
        c1.send_relationship_request(app.as_(&app.broker_bam, req())),
        c2.send_relationship_request(app.as_(&app.broker_bam, req())),
    );
    assert_eq!(
        [&a, &b].into_iter().filter(|r| r.is_ok()).count(),
        1,
        "{a:?} {b:?}"
    );
    let loser = [a, b].into_iter().find_map(Result::err).unwrap();
    assert_eq!(loser.code(), Code::AlreadyExists);
    assert_eq!(app.received().await.len(), 1);
}

#[tokio::test]
async fn r_de_2_a_request_sent_after_the_relationship_became_active_then_approved_fails_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    let app = spawn_app(&backend).await;
    let rel = app.relate(t0() + Duration::days(100)).await;
    let sent = app.send(IMPORTER).await.request.unwrap();
    let err = app
        .api()
        .approve_relationship_request(app.as_(
            &app.importer_bam,
            app.approval(&sent.id, t0() + Duration::days(10)),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&rel.name));
    assert_eq!(relationships_of_importer(&app).await.len(), 1);
}
