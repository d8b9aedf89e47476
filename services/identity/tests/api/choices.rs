//! R-ID-2: a profile's choice per kind of e-mail notice (set, read, replaced through the mask,
//! carried to the facts other services read; a bad kind named and nothing written), and R-ID-4:
//! the reminder of a machine credential expiring within 30 days, once per credential however
//! many replicas sweep, none for a revoked one.

use std::collections::BTreeMap;
use std::time::Duration;

use ccp_platform::bus::{Delivery, StartFrom};
use ccp_proto::common::v1::{DomainEvent, EventType};
use ccp_proto::identity::v1 as pb;
use futures::StreamExt as _;
use prost::Message as _;
use tonic::Code;

use crate::helpers::*;

const BN: &str = "123456782";

fn choice(kind: &str, enabled: bool) -> pb::NotificationChoice {
    pb::NotificationChoice {
        kind: kind.to_owned(),
        enabled,
    }
}

fn choices(p: &pb::Profile) -> Vec<(String, bool)> {
    p.notification_choices
        .iter()
        .map(|c| (c.kind.clone(), c.enabled))
        .collect()
}

fn pairs(list: &[(&str, bool)]) -> Vec<(String, bool)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn r_id_2_notice_choices_are_set_read_replaced_and_carried_to_the_facts() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let first = app.sign_in("hana").await;
        let mut id = app.identity.clone();
        // Given out of the kinds' order; listed in it.
        let created = id
            .create_profile(app.req(
                pb::CreateProfileRequest {
                    request_id: "c1".into(),
                    profile: Some(pb::Profile {
                        notification_choices: vec![
                            choice("credential-expiry-reminder", true),
                            choice("relationship-ended", false),
                        ],
                        email_notifications: true,
                        ..TestApp::profile_input("Hana")
                    }),
                },
                Some(&first.access_token),
            ))
            .await
            .unwrap()
            .into_inner();
        let expected = pairs(&[
            ("relationship-ended", false),
            ("credential-expiry-reminder", true),
        ]);
        let profile = created.profile.unwrap();
        assert_eq!(choices(&profile), expected, "{}", backend.name());
        let session = created.session.unwrap();
        let t = Some(session.access_token.as_str());
        let mine = app.my_profile(&session.access_token).await.unwrap();
        assert_eq!(choices(&mine), expected);

        // The facts notifications read carry them, with the opt-in they refine.
        let uuid = profile.principal.trim_start_matches("person:").to_owned();
        let facts = |ids: Vec<String>| {
            let mut facts = app.facts.clone();
            let req = app.req(pb::GetProfilesRequest { profile_ids: ids }, None);
            async move { facts.get_profiles(req).await.unwrap().into_inner() }
        };
        let found = facts(vec![uuid.clone()]).await;
        let summary = &found.profiles[0];
        assert!(summary.email_notifications);
        let read: Vec<(String, bool)> = summary
            .notification_choices
            .iter()
            .map(|c| (c.kind.clone(), c.enabled))
            .collect();
        assert_eq!(read, expected);

        // Another field's update keeps them; a stale etag is still refused.
        let updated = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u1".into(),
                    profile: Some(pb::Profile {
                        email_notifications: false,
                        etag: mine.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["email_notifications".into()],
                    }),
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap();
        assert!(!updated.email_notifications);
        assert_eq!(choices(&updated), expected);
        let stale = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u2".into(),
                    profile: Some(pb::Profile {
                        etag: mine.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["notification_choices".into()],
                    }),
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(stale.code(), Code::Aborted);

        // The mask's `notification_choices` replaces the whole list.
        let replaced = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u3".into(),
                    profile: Some(pb::Profile {
                        notification_choices: vec![choice("employee-request-received", true)],
                        etag: updated.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["notification_choices".into()],
                    }),
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap();
        let expected = pairs(&[("employee-request-received", true)]);
        assert_eq!(choices(&replaced), expected);
        assert_ne!(replaced.etag, updated.etag);
        assert_eq!(
            choices(&app.my_profile(&session.access_token).await.unwrap()),
            expected
        );
        let found = facts(vec![uuid]).await;
        assert!(!found.profiles[0].email_notifications);
        assert_eq!(found.profiles[0].notification_choices.len(), 1);
        // The change is recorded with what was chosen before and after.
        let event = app
            .event(EventType::ProfileUpdated, |e| {
                e.principals == vec![session.principal.clone()]
            })
            .await;
        assert_eq!(event.subject, profile.name);
    }
}

#[tokio::test]
async fn r_id_2_r_in_1_a_bad_notice_choice_is_named_and_nothing_is_written() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let first = app.sign_in("ivan").await;
        let mut id = app.identity.clone();
        let create = |request_id: &str, list: Vec<pb::NotificationChoice>| {
            app.req(
                pb::CreateProfileRequest {
                    request_id: request_id.into(),
                    profile: Some(pb::Profile {
                        notification_choices: list,
                        ..TestApp::profile_input("Ivan")
                    }),
                },
                Some(&first.access_token),
            )
        };
        // An unknown kind, a kind chosen twice.
        let err = id
            .create_profile(create(
                "c1",
                vec![
                    choice("relationship-ended", true),
                    choice("newsletter", true),
                    choice("relationship-ended", false),
                ],
            ))
            .await
            .unwrap_err();
        assert_eq!(
            fields(&err),
            [
                "profile.notification_choices[1].kind",
                "profile.notification_choices[2].kind"
            ],
            "{}",
            backend.name()
        );
        let why: Vec<String> = ccp_platform::error::field_violations(&err)
            .into_iter()
            .map(|v| v.description)
            .collect();
        assert!(why[0].contains("credential-expiry-reminder"), "{why:?}");
        assert_eq!(why[1], "is chosen twice");
        // More choices than there could be kinds: the count is named, no entry read.
        let many = (0..33).map(|_| choice("newsletter", true)).collect();
        let err = id.create_profile(create("c2", many)).await.unwrap_err();
        assert_eq!(fields(&err), ["profile.notification_choices"]);
        // Nothing written: still no profile.
        assert!(app.sign_in("ivan").await.profile_required);

        // On update: named, and the profile is as it was.
        let session = app.person("Jill").await;
        let before = app.my_profile(&session.access_token).await.unwrap();
        let err = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u1".into(),
                    profile: Some(pb::Profile {
                        notification_choices: vec![
                            choice("credential-expiry-reminder", false),
                            choice("Relationship-Ended", false),
                        ],
                        etag: before.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["notification_choices".into()],
                    }),
                },
                Some(&session.access_token),
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["profile.notification_choices[1].kind"]);
        let after = app.my_profile(&session.access_token).await.unwrap();
        assert_eq!(after, before);
        assert!(after.notification_choices.is_empty());
    }
}

/// Creates a credential of [`BN`] named `name` expiring `days` days from now.
async fn credential(app: &TestApp, token: &str, name: &str, days: i64) -> pb::MachineCredential {
    app.identity
        .clone()
        .create_machine_credential(app.req(
            pb::CreateMachineCredentialRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                parent: format!("businesses/{BN}"),
                display_name: name.to_owned(),
                expire_time: Some(ccp_platform::store::timestamp(
                    app.now() + chrono::Duration::days(days),
                )),
            },
            Some(token),
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap()
}

/// Returns identity's events from the beginning up to the first `CREDENTIAL_REVOKED` of
/// `marker` (the outbox publishes in commit order, so every earlier event is among them).
async fn events_until_revoked(app: &TestApp, marker: &str) -> Vec<DomainEvent> {
    let mut sub = app
        .ctx
        .bus
        .subscribe(ccp_identity::EVENT_STREAM, StartFrom::Beginning)
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(item) = sub.next().await {
            if let Ok(Delivery::Event(d)) = item {
                let e = DomainEvent::decode(d.payload.as_slice()).unwrap();
                let done = e.r#type == EventType::CredentialRevoked as i32
                    && e.principals.iter().any(|p| p == marker);
                seen.push(e);
                if done {
                    return;
                }
            }
        }
        panic!("subscription ended");
    })
    .await
    .expect("the marker within 20 s");
    seen
}

async fn revoke(app: &TestApp, token: &str, name: &str) {
    app.identity
        .clone()
        .revoke_machine_credential(app.req(
            pb::RevokeMachineCredentialRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                name: name.to_owned(),
                reason: String::new(),
            },
            Some(token),
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn r_id_4_each_credential_expiring_within_30_days_is_reminded_of_once_even_by_racing_replicas()
 {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let bam = app.person("Kim").await;
        let token = bam.access_token.as_str();
        // Six expire in 40 days, one in 35 days (revoked before it is due), one in 60 days
        // (the marker), one in 10 days (due at once: the reminder says 10 days).
        let mut due = Vec::new();
        for i in 0..6 {
            due.push(credential(&app, token, &format!("sync {i}"), 40).await);
        }
        let revoked = credential(&app, token, "retired", 35).await;
        let later = credential(&app, token, "later", 60).await;
        let soon = credential(&app, token, "soon", 10).await;
        revoke(&app, token, &revoked.name).await;

        let sweep = app.sweeper.sweep_once().await.unwrap();
        assert_eq!(sweep.credential_reminders, 1, "{}", backend.name());
        assert_eq!(
            app.sweeper.sweep_once().await.unwrap().credential_reminders,
            0
        );
        // One day before the 30 days: nothing more.
        app.clock.advance(chrono::Duration::days(9));
        assert_eq!(
            app.sweeper.sweep_once().await.unwrap().credential_reminders,
            0
        );

        // At 30 days: two replicas on the same database sweep at once, twice.
        app.clock.advance(chrono::Duration::days(1));
        let replica = ccp_identity::Application::build(&app.ctx, &app.settings)
            .await
            .unwrap();
        let sweepers = [app.sweeper.clone(), replica.sweeper()];
        let mut total = 0;
        for _ in 0..2 {
            let tasks: Vec<_> = sweepers
                .iter()
                .map(|s| {
                    let s = s.clone();
                    tokio::spawn(async move { s.sweep_once().await.unwrap() })
                })
                .collect();
            for task in tasks {
                let report = tokio::time::timeout(Duration::from_secs(20), task)
                    .await
                    .unwrap()
                    .unwrap();
                total += report.credential_reminders;
            }
        }
        assert_eq!(total, 6, "each due credential swept once");

        // The events: one per due credential, none for the revoked or the later one.
        let again = app.sign_in("Kim").await;
        revoke(&app, &again.access_token, &later.name).await;
        let events = events_until_revoked(&app, &later.principal).await;
        let reminders: Vec<&DomainEvent> = events
            .iter()
            .filter(|e| e.r#type == EventType::CredentialExpiryReminder as i32)
            .collect();
        let mut by_credential: BTreeMap<&str, Vec<&DomainEvent>> = BTreeMap::new();
        for e in &reminders {
            by_credential.entry(e.subject.as_str()).or_default().push(e);
        }
        let mut expected: Vec<&str> = due.iter().map(|c| c.name.as_str()).collect();
        expected.push(&soon.name);
        expected.sort_unstable();
        assert_eq!(
            by_credential.keys().copied().collect::<Vec<_>>(),
            expected,
            "{}",
            backend.name()
        );
        assert!(
            by_credential.values().all(|e| e.len() == 1),
            "{reminders:?}"
        );
        for c in due.iter().chain([&soon]) {
            let e = by_credential[c.name.as_str()][0];
            assert_eq!(e.businesses, [BN]);
            assert_eq!(e.principals, std::slice::from_ref(&c.principal));
            assert_eq!(e.actor, "system");
            let details: serde_json::Value = serde_json::from_str(&e.details_json).unwrap();
            let days = if c.name == soon.name { 10 } else { 30 };
            assert_eq!(details["days"], days, "{details}");
            assert_eq!(details["display_name"], c.display_name.as_str());
            assert_eq!(details["business"], BN);
            let expire =
                ccp_platform::store::from_timestamp(c.expire_time.as_ref().unwrap()).unwrap();
            assert_eq!(details["expire_time"], expire.to_rfc3339());
        }
        drop(replica);
    }
}
