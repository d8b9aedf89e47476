//! R-DE-3 (update and end), R-DE-4 (the expiry boundary and reminders).

use ccp_platform::error::field_violations;
use ccp_platform::store::{from_timestamp, timestamp};
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;
use chrono::Duration;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::*;

fn update(rel: &pb::Relationship, paths: &[&str], id: &str) -> pb::UpdateRelationshipRequest {
    pb::UpdateRelationshipRequest {
        request_id: id.to_owned(),
        relationship: Some(rel.clone()),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

#[tokio::test]
async fn r_de_3_the_client_changes_scope_expiry_and_visibility_with_an_etag() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let rel = app.relate(t0() + Duration::days(100)).await;
        app.advance_clock(Duration::days(1)).await;
        let mut changed = rel.clone();
        changed.level = pb::RelationshipLevel::Program as i32;
        changed.program_accounts = vec![format!("{IMPORTER}RM0001")];
        changed.visibility = vec![
            pb::Visibility::SubmittedByProvider as i32,
            pb::Visibility::SubmittedByOtherBusinesses as i32,
        ];
        // At most 2 years after the change (not after the approval).
        let new_expiry = app.clock.now() + Duration::days(730);
        changed.expire_time = Some(timestamp(new_expiry));
        let resp = app
            .api()
            .update_relationship(app.as_(
                &app.importer_bam,
                update(
                    &changed,
                    &["level", "program_accounts", "visibility", "expire_time"],
                    "u1",
                ),
            ))
            .await
            .unwrap()
            .into_inner();
        let got = resp.relationship.unwrap();
        assert_eq!(
            got.level,
            pb::RelationshipLevel::Program as i32,
            "{}",
            app.backend
        );
        assert_eq!(got.program_accounts, changed.program_accounts);
        assert_eq!(got.visibility, changed.visibility);
        assert_eq!(
            from_timestamp(got.expire_time.as_ref().unwrap()).unwrap(),
            new_expiry
        );
        assert_ne!(got.etag, rel.etag);
        // The old etag is stale now.
        let err = app
            .api()
            .update_relationship(
                app.as_(&app.importer_bam, update(&changed, &["visibility"], "u2")),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted);
        // Visibility without the provider's own submissions is refused.
        let mut bad = got.clone();
        bad.visibility = vec![pb::Visibility::SubmittedByClient as i32];
        let err = app
            .api()
            .update_relationship(app.as_(&app.importer_bam, update(&bad, &["visibility"], "u3")))
            .await
            .unwrap_err();
        assert_eq!(field_violations(&err)[0].field, "relationship.visibility");
        // A program of another business is refused.
        let mut bad = got.clone();
        bad.program_accounts = vec![format!("{BROKER}RM0001")];
        let err = app
            .api()
            .update_relationship(
                app.as_(&app.importer_bam, update(&bad, &["program_accounts"], "u4")),
            )
            .await
            .unwrap_err();
        assert_eq!(
            field_violations(&err)[0].field,
            "relationship.program_accounts[0]"
        );
        // Too far.
        let mut bad = got.clone();
        bad.expire_time = Some(timestamp(app.clock.now() + Duration::days(731)));
        let err = app
            .api()
            .update_relationship(app.as_(&app.importer_bam, update(&bad, &["expire_time"], "u5")))
            .await
            .unwrap_err();
        assert_eq!(field_violations(&err)[0].field, "relationship.expire_time");
        // The provider side cannot change it.
        let mut provider_side = got.clone();
        provider_side.name = format!("businesses/{BROKER}/relationships/{}", got.id);
        let err = app
            .api()
            .update_relationship(app.as_(
                &app.broker_bam,
                update(&provider_side, &["visibility"], "u6"),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let events = events_until(&app.ctx, |e| {
            !of_type(e, EventType::RelationshipUpdated).is_empty()
        })
        .await;
        assert_eq!(of_type(&events, EventType::RelationshipUpdated).len(), 1);
    }
}

#[tokio::test]
async fn r_de_3_either_side_ends_it_recording_who_and_why() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        for (who, bn, reason) in [
            (app.importer_bam, IMPORTER, pb::EndReason::EndedByClient),
            (app.broker_bam, BROKER, pb::EndReason::EndedByProvider),
        ] {
            let rel = app.relate(app.clock.now() + Duration::days(100)).await;
            let ended = app
                .api()
                .end_relationship(app.as_(
                    &who,
                    pb::EndRelationshipRequest {
                        request_id: format!("end-{bn}"),
                        name: format!("businesses/{bn}/relationships/{}", rel.id),
                        note: "no longer needed".to_owned(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .relationship
                .unwrap();
            assert_eq!(
                ended.state,
                pb::RelationshipState::Ended as i32,
                "{}",
                app.backend
            );
            assert_eq!(ended.end_reason, reason as i32);
            assert_eq!(ended.ended_by, who.to_string());
            assert_eq!(ended.end_note, "no longer needed");
            assert_eq!(
                from_timestamp(ended.end_time.as_ref().unwrap()).unwrap(),
                app.clock.now()
            );
            // Ending twice is refused; an ended one cannot be updated.
            let err = app
                .api()
                .end_relationship(app.as_(
                    &who,
                    pb::EndRelationshipRequest {
                        request_id: format!("end2-{bn}"),
                        name: ended.name.clone(),
                        note: String::new(),
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition);
            let client_view = app.get(&rel.name).await;
            let err = app
                .api()
                .update_relationship(app.as_(
                    &app.importer_bam,
                    update(&client_view, &["visibility"], &format!("u-{bn}")),
                ))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition);
            app.advance_clock(Duration::seconds(1)).await;
        }
        let facts = app.pair_facts().await;
        assert_eq!(facts.relationships.len(), 2);
        assert_eq!(
            facts.relationships[0].end_reason,
            pb::EndReason::EndedByProvider as i32
        );
        assert_eq!(
            facts.relationships[1].end_reason,
            pb::EndReason::EndedByClient as i32
        );
    }
}

#[tokio::test]
async fn r_de_4_active_until_1ms_before_expiry_ended_at_and_after_before_and_after_the_sweep() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let expiry = t0() + Duration::days(10);
        let rel = app.relate(expiry).await;
        let fact_active = |f: &pb::PairFacts| {
            let r = &f.relationships[0];
            r.end_time.is_none() && r.end_reason == pb::EndReason::Unspecified as i32
        };
        app.set_clock(expiry - Duration::milliseconds(1)).await;
        assert_eq!(
            app.get(&rel.name).await.state,
            pb::RelationshipState::Active as i32,
            "{}",
            app.backend
        );
        assert!(fact_active(&app.pair_facts().await));
        assert_eq!(app.sweep().await.relationships_expired, 0);
        for at in [expiry, expiry + Duration::days(3)] {
            app.set_clock(at).await;
            // Before the sweep.
            let got = app.get(&rel.name).await;
            assert_eq!(got.state, pb::RelationshipState::Ended as i32);
            assert_eq!(got.end_reason, pb::EndReason::Expired as i32);
            assert_eq!(
                from_timestamp(got.end_time.as_ref().unwrap()).unwrap(),
                expiry
            );
            let facts = app.pair_facts().await;
            assert!(!fact_active(&facts));
            assert_eq!(
                facts.relationships[0].end_reason,
                pb::EndReason::Expired as i32
            );
            let active = app
                .api()
                .list_relationships(app.as_(
                    &app.importer_bam,
                    pb::ListRelationshipsRequest {
                        parent: format!("businesses/{IMPORTER}"),
                        state: pb::RelationshipState::Active as i32,
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .relationships;
            assert!(active.is_empty());
        }
        let rev_before = app.pair_facts().await.revision;
        assert_eq!(app.sweep().await.relationships_expired, 1);
        assert_eq!(app.sweep().await.relationships_expired, 0);
        // After the sweep: the same answers, recorded by `system`.
        let got = app.get(&rel.name).await;
        assert_eq!(got.state, pb::RelationshipState::Ended as i32);
        assert_eq!(got.end_reason, pb::EndReason::Expired as i32);
        assert_eq!(got.ended_by, "system");
        assert_eq!(
            from_timestamp(got.end_time.as_ref().unwrap()).unwrap(),
            expiry
        );
        let facts = app.pair_facts().await;
        assert_eq!(
            facts.relationships[0].end_reason,
            pb::EndReason::Expired as i32
        );
        assert!(facts.revision > rev_before);
        let events = events_until(&app.ctx, |e| {
            !of_type(e, EventType::RelationshipEnded).is_empty()
        })
        .await;
        let ended = of_type(&events, EventType::RelationshipEnded);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].pairs[0].provider, BROKER);
        assert_eq!(ended[0].pairs[0].client, IMPORTER);
    }
}

fn reminder_days(events: &[ccp_proto::common::v1::DomainEvent]) -> Vec<i64> {
    of_type(events, EventType::RelationshipExpiryReminder)
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.details_json).unwrap()["days"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

/// Ends a relationship as a marker: the outbox publishes in order, so once its
/// event is seen every earlier event has been seen too.
async fn marker(app: &TestApp, name: &str) -> Vec<ccp_proto::common::v1::DomainEvent> {
    app.api()
        .end_relationship(app.as_(
            &app.importer_bam,
            pb::EndRelationshipRequest {
                request_id: "marker".to_owned(),
                name: name.to_owned(),
                note: String::new(),
            },
        ))
        .await
        .unwrap();
    events_until(&app.ctx, |e| {
        !of_type(e, EventType::RelationshipEnded).is_empty()
    })
    .await
}

#[tokio::test]
async fn r_de_4_reminders_30_7_and_1_days_before_expiry_each_once_across_restarts() {
    for backend in TestBackend::all().await {
        let mut app = spawn_app(&backend).await;
        let expiry = t0() + Duration::days(60);
        let rel = app.relate(expiry).await;
        app.set_clock(expiry - Duration::days(30) - Duration::milliseconds(1))
            .await;
        assert_eq!(app.sweep().await.reminders, 0, "{}", app.backend);
        app.set_clock(expiry - Duration::days(30)).await;
        assert_eq!(app.sweep().await.reminders, 1);
        assert_eq!(app.sweep().await.reminders, 0);
        app.restart().await;
        assert_eq!(app.sweep().await.reminders, 0, "not again after a restart");
        app.set_clock(expiry - Duration::days(7) + Duration::hours(1))
            .await;
        assert_eq!(app.sweep().await.reminders, 1);
        app.restart().await;
        assert_eq!(app.sweep().await.reminders, 0);
        app.set_clock(expiry - Duration::days(1)).await;
        assert_eq!(app.sweep().await.reminders, 1);
        app.restart().await;
        assert_eq!(app.sweep().await.reminders, 0);
        let events = marker(&app, &rel.name).await;
        assert_eq!(reminder_days(&events), vec![30, 7, 1]);
        let r = &of_type(&events, EventType::RelationshipExpiryReminder)[0];
        assert_eq!(r.pairs[0].client, IMPORTER);
        app.shutdown().await;
    }
}

/// Has every sweeper try the leased sweep at once (each on its own task);
/// returns what each swept, None for those that did not hold the lease.
async fn sweep_at_once(
    sweepers: &[ccp_delegation::background::Sweeper],
) -> Vec<Option<ccp_delegation::background::SweepReport>> {
    let tasks: Vec<_> = sweepers
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move { s.sweep_leased().await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(tokio::time::timeout(WAIT, task).await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn r_de_4_three_replicas_sweep_in_turn_under_a_lease_and_remind_once() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let expiry = t0() + Duration::days(60);
        let rel = app.relate(expiry).await;
        // Two more delegation replicas on the same database.
        let mut sweepers = vec![app.sweeper()];
        for _ in 0..2 {
            let replica = ccp_delegation::Application::build(&app.ctx, &app.settings)
                .await
                .unwrap();
            sweepers.push(replica.sweeper());
        }
        app.set_clock(expiry - Duration::days(30)).await;
        // All three at once: exactly one holds the lease and sweeps.
        let swept = sweep_at_once(&sweepers).await;
        let holders: Vec<usize> = (0..3).filter(|i| swept[*i].is_some()).collect();
        assert_eq!(holders.len(), 1, "{}: {swept:?}", app.backend);
        let holder = holders[0];
        assert_eq!(swept[holder].unwrap().reminders, 1);
        // While its lease runs, the holder sweeps again (renewing it) and the
        // others sweep nothing.
        let swept = sweep_at_once(&sweepers).await;
        for (i, report) in swept.iter().enumerate() {
            assert_eq!(report.is_some(), i == holder, "{swept:?}");
        }
        assert_eq!(swept[holder].unwrap().reminders, 0);
        // The holder dies; once its lease (3 minutes) has lapsed one of the
        // others takes the sweep over, and the old holder is then refused.
        app.set_clock(expiry - Duration::days(7)).await;
        let others: Vec<_> = (0..3)
            .filter(|i| *i != holder)
            .map(|i| sweepers[i].clone())
            .collect();
        let swept = sweep_at_once(&others).await;
        let taken: Vec<_> = swept.iter().flatten().collect();
        assert_eq!(taken.len(), 1, "{swept:?}");
        assert_eq!(taken[0].reminders, 1);
        assert!(sweepers[holder].sweep_leased().await.unwrap().is_none());
        // Each due reminder was emitted once.
        let events = marker(&app, &rel.name).await;
        assert_eq!(reminder_days(&events), vec![30, 7]);
    }
}

#[tokio::test]
async fn r_de_4_thresholds_past_at_approval_are_skipped_and_moving_the_expiry_rearms() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        // 10 days: the 30-day threshold is already past.
        let rel = app.relate(t0() + Duration::days(10)).await;
        app.set_clock(t0() + Duration::days(3)).await;
        assert_eq!(
            app.sweep().await.reminders,
            1,
            "the 7-day one, {}",
            app.backend
        );
        // Move the expiry to 40 days from now: 30, 7 and 1 are ahead again.
        let mut moved = app.get(&rel.name).await;
        let new_expiry = app.clock.now() + Duration::days(40);
        moved.expire_time = Some(timestamp(new_expiry));
        app.api()
            .update_relationship(
                app.as_(&app.importer_bam, update(&moved, &["expire_time"], "move")),
            )
            .await
            .unwrap();
        assert_eq!(app.sweep().await.reminders, 0);
        for days in [30, 7, 1] {
            app.set_clock(new_expiry - Duration::days(days)).await;
            assert_eq!(app.sweep().await.reminders, 1, "{days}");
        }
        let events = marker(&app, &rel.name).await;
        assert_eq!(reminder_days(&events), vec![7, 30, 7, 1]);
    }
}

#[tokio::test]
async fn r_de_3_relationships_are_listed_as_client_or_as_provider() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let rel = app.relate(t0() + Duration::days(30)).await;
        let list = |bn: &str, side: pb::RelationshipSide| {
            let mut api = app.api();
            let req = app.as_(
                &app.importer_bam,
                pb::ListRelationshipsRequest {
                    parent: format!("businesses/{bn}"),
                    side: side as i32,
                    ..Default::default()
                },
            );
            async move {
                api.list_relationships(req)
                    .await
                    .unwrap()
                    .into_inner()
                    .relationships
            }
        };
        let as_client = list(IMPORTER, pb::RelationshipSide::Client).await;
        assert_eq!(as_client.len(), 1, "{}", app.backend);
        assert_eq!(as_client[0].name, rel.name);
        assert!(
            list(IMPORTER, pb::RelationshipSide::Provider)
                .await
                .is_empty()
        );
        let as_provider = list(BROKER, pb::RelationshipSide::Provider).await;
        assert_eq!(
            as_provider[0].name,
            format!("businesses/{BROKER}/relationships/{}", rel.id)
        );
        assert!(list(BROKER, pb::RelationshipSide::Client).await.is_empty());
        assert_eq!(
            list(BROKER, pb::RelationshipSide::Unspecified).await.len(),
            1
        );
    }
}
