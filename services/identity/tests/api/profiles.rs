//! R-ID-2 (profile before anything else) and R-IN-1 (field errors, nothing written).

use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn r_id_2_first_sign_in_returns_a_session_that_may_only_create_the_profile() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let first = app.sign_in("dana").await;
        assert!(first.profile_required, "{}", backend.name());
        assert!(first.profile.is_empty());
        let claims = TestApp::claims(&first.access_token);
        assert!(claims.pid.is_none(), "no pid before the profile exists");
        assert!(claims.sid.is_some());
        let t = Some(first.access_token.as_str());

        let err = app.my_profile(&first.access_token).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let mut id = app.identity.clone();
        let err = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u1".into(),
                    profile: Some(pb::Profile {
                        etag: "1".into(),
                        ..TestApp::profile_input("Dana")
                    }),
                    update_mask: None,
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let err = app
            .create_credential(&first.access_token, "123456782", "c1")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let err = id
            .list_audit_events(app.req(
                pb::ListAuditEventsRequest {
                    parent: "businesses/123456782".into(),
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);

        let created = app.create_profile(&first, "Dana Scully").await;
        let session = created.session.unwrap();
        let profile = created.profile.unwrap();
        assert!(!session.profile_required);
        assert_eq!(session.profile, profile.name);
        assert_eq!(profile.principal, first.principal);
        assert_eq!(
            profile.name,
            format!("profiles/{}", first.principal.trim_start_matches("person:"))
        );
        let claims = TestApp::claims(&session.access_token);
        assert_eq!(
            claims.pid.as_deref(),
            Some(first.principal.trim_start_matches("person:"))
        );
        assert_eq!(
            app.my_profile(&session.access_token)
                .await
                .unwrap()
                .legal_name,
            "Dana Scully"
        );
        assert!(!created.revision.is_empty());
        app.event(EventType::ProfileCreated, |e| {
            e.principals == vec![first.principal.clone()]
        })
        .await;

        // Signing in again now yields a session naming the profile.
        let again = app.sign_in("dana").await;
        assert!(!again.profile_required);
        assert_eq!(again.profile, profile.name);
    }
}

#[tokio::test]
async fn r_id_2_a_second_profile_is_refused_and_a_replay_returns_the_first() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let first = app.sign_in("eve").await;
        let request = pb::CreateProfileRequest {
            request_id: "create-1".into(),
            profile: Some(TestApp::profile_input("Eve")),
        };
        let mut id = app.identity.clone();
        let a = id
            .create_profile(app.req(request.clone(), Some(&first.access_token)))
            .await
            .unwrap()
            .into_inner();
        let b = id
            .create_profile(app.req(request, Some(&first.access_token)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a.profile, b.profile, "{}", backend.name());
        assert_eq!(a.revision, b.revision);
        assert!(b.session.is_some_and(|s| !s.profile_required));
        let err = id
            .create_profile(app.req(
                pb::CreateProfileRequest {
                    request_id: "create-2".into(),
                    profile: Some(TestApp::profile_input("Eve Again")),
                },
                Some(&first.access_token),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);
    }
}

#[tokio::test]
async fn r_id_2_r_in_1_bad_profile_fields_are_named_and_nothing_is_written() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let first = app.sign_in("frank").await;
        let mut id = app.identity.clone();
        let err = id
            .create_profile(app.req(
                pb::CreateProfileRequest {
                    request_id: String::new(),
                    profile: Some(pb::Profile {
                        legal_name: "   ".into(),
                        email: "not-an-email".into(),
                        phone: "call me".into(),
                        preferred_language: 0,
                        email_notifications: false,
                        ..Default::default()
                    }),
                },
                Some(&first.access_token),
            ))
            .await
            .unwrap_err();
        let mut f = fields(&err);
        f.sort();
        assert_eq!(
            f,
            [
                "profile.email",
                "profile.legal_name",
                "profile.phone",
                "profile.preferred_language",
                "request_id"
            ],
            "{}",
            backend.name()
        );
        let long = "x".repeat(201);
        let err = id
            .create_profile(app.req(
                pb::CreateProfileRequest {
                    request_id: "r".into(),
                    profile: Some(pb::Profile {
                        legal_name: long,
                        ..TestApp::profile_input("Frank")
                    }),
                },
                Some(&first.access_token),
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["profile.legal_name"]);
        // Nothing written: still no profile.
        let again = app.sign_in("frank").await;
        assert!(again.profile_required);
    }
}

#[tokio::test]
async fn r_id_2_update_my_profile_checks_the_etag_and_the_mask() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let session = app.person("Gail").await;
        let t = Some(session.access_token.as_str());
        let current = app.my_profile(&session.access_token).await.unwrap();
        let mut id = app.identity.clone();
        let updated = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u1".into(),
                    profile: Some(pb::Profile {
                        preferred_language: pb::Language::Fr as i32,
                        legal_name: "ignored".into(),
                        etag: current.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["preferred_language".into()],
                    }),
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        let p = updated.profile.unwrap();
        assert_eq!(
            p.preferred_language,
            pb::Language::Fr as i32,
            "{}",
            backend.name()
        );
        assert_eq!(p.legal_name, "Gail");
        assert_ne!(p.etag, current.etag);
        // A stale etag is refused.
        let err = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u2".into(),
                    profile: Some(pb::Profile {
                        etag: current.etag.clone(),
                        ..TestApp::profile_input("Gail Two")
                    }),
                    update_mask: None,
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted);
        // A replay of u1 returns the first answer.
        let replay = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u1".into(),
                    profile: Some(pb::Profile {
                        preferred_language: pb::Language::Fr as i32,
                        etag: current.etag.clone(),
                        ..TestApp::profile_input("Gail")
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["preferred_language".into()],
                    }),
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(replay.revision, updated.revision);
        // Bad mask paths and bad values are named.
        let err = id
            .update_my_profile(app.req(
                pb::UpdateMyProfileRequest {
                    request_id: "u3".into(),
                    profile: Some(pb::Profile {
                        email: "bad".into(),
                        etag: p.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["email".into(), "name".into()],
                    }),
                },
                t,
            ))
            .await
            .unwrap_err();
        let mut f = fields(&err);
        f.sort();
        assert_eq!(f, ["profile.email", "update_mask.paths[1]"]);
        app.event(EventType::ProfileUpdated, |e| {
            e.principals == vec![session.principal.clone()]
        })
        .await;
    }
}
