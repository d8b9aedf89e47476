//! R-ID-4 machine credentials: the secret shown once and hashed with
//! argon2id, expiry at most two years, revocation, token issuance with
//! slow-down and lockout; the secret never reaches logs or audit records.

use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;
use tonic::Code;

use crate::helpers::*;

const BN: &str = "123456782";

#[tokio::test]
async fn r_id_4_a_credential_secret_is_shown_once_and_issues_tokens_naming_the_business() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let bam = app.person("Nora").await;
        let created = app
            .create_credential(&bam.access_token, BN, "mc-1")
            .await
            .unwrap();
        let cred = created.credential.clone().unwrap();
        assert!(
            created.client_secret.starts_with("cs1."),
            "{}",
            backend.name()
        );
        assert_eq!(cred.business, BN);
        assert_eq!(cred.state, pb::MachineCredentialState::Active as i32);
        assert_eq!(
            cred.name,
            format!("businesses/{BN}/machineCredentials/{}", cred.client_id)
        );
        assert_eq!(cred.principal, format!("credential:{}", cred.client_id));
        assert_eq!(cred.creator, bam.principal);
        // A replay returns the credential without its secret.
        let replay = app
            .create_credential(&bam.access_token, BN, "mc-1")
            .await
            .unwrap();
        assert_eq!(replay.credential, created.credential);
        assert!(replay.client_secret.is_empty());
        app.event(EventType::CredentialCreated, |e| {
            e.principals == vec![cred.principal.clone()]
        })
        .await;

        let token = app
            .issue(&cred.client_id, &created.client_secret)
            .await
            .unwrap();
        assert_eq!(token.business, BN);
        assert_eq!(token.principal, cred.principal);
        let claims = TestApp::claims(&token.access_token);
        assert_eq!(claims.sub, cred.principal);
        assert_eq!(claims.bn.as_deref(), Some(BN));
        assert!(claims.pid.is_none() && claims.sid.is_none());
        assert!(claims.exp - claims.iat <= 900);

        // The stored secret is an argon2id hash.
        use sea_orm::ConnectionTrait as _;
        let db = app.db().await;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT secret_hash FROM machine_credentials",
            ))
            .await
            .unwrap()
            .unwrap();
        let hash: String = row.try_get_by_index(0).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains(&created.client_secret));

        // Facts for the other services.
        let facts = app
            .facts
            .clone()
            .get_credential(app.req(
                pb::GetCredentialRequest {
                    credential_id: cred.client_id.clone(),
                },
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(facts.exists && !facts.revoked);
        assert_eq!(facts.business, BN);
        assert_eq!(facts.display_name, "broker system");
    }
}

#[tokio::test]
async fn r_id_4_expiry_must_be_in_the_future_and_at_most_two_years_away() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let bam = app.person("Omar").await;
        let mut id = app.identity.clone();
        for (days, ok) in [(-1i64, false), (0, false), (730, true), (731, false)] {
            let r = id
                .create_machine_credential(app.req(
                    pb::CreateMachineCredentialRequest {
                        request_id: format!("e{days}"),
                        parent: format!("businesses/{BN}"),
                        display_name: "x".into(),
                        expire_time: Some(ccp_platform::store::timestamp(
                            app.now() + chrono::Duration::days(days),
                        )),
                    },
                    Some(&bam.access_token),
                ))
                .await;
            match (r, ok) {
                (Ok(_), true) => {}
                (Err(s), false) => assert_eq!(fields(&s), ["expire_time"], "{days} days"),
                (r, _) => panic!("{days} days ({}): {r:?}", backend.name()),
            }
        }
        let err = id
            .create_machine_credential(app.req(
                pb::CreateMachineCredentialRequest {
                    request_id: String::new(),
                    parent: "businesses/123456789".into(),
                    display_name: String::new(),
                    expire_time: None,
                },
                Some(&bam.access_token),
            ))
            .await
            .unwrap_err();
        let mut f = fields(&err);
        f.sort();
        assert_eq!(f, ["display_name", "expire_time", "parent", "request_id"]);
    }
}

#[tokio::test]
async fn r_id_4_revoked_and_expired_credentials_issue_no_tokens() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let bam = app.person("Pia").await;
        let created = app
            .create_credential(&bam.access_token, BN, "mc-1")
            .await
            .unwrap();
        let other = app
            .create_credential(&bam.access_token, BN, "mc-2")
            .await
            .unwrap();
        let cred = created.credential.unwrap();
        let revoked_token = app
            .issue(&cred.client_id, &created.client_secret)
            .await
            .unwrap();
        let other_token = app
            .issue(
                &other.credential.as_ref().unwrap().client_id,
                &other.client_secret,
            )
            .await
            .unwrap();
        let mut id = app.identity.clone();
        // Revocation under another business is NOT_FOUND.
        let err = id
            .revoke_machine_credential(app.req(
                pb::RevokeMachineCredentialRequest {
                    request_id: "r0".into(),
                    name: format!("businesses/000000000/machineCredentials/{}", cred.client_id),
                    reason: String::new(),
                },
                Some(&bam.access_token),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{}", backend.name());
        let revoked = id
            .revoke_machine_credential(app.req(
                pb::RevokeMachineCredentialRequest {
                    request_id: "r1".into(),
                    name: cred.name.clone(),
                    reason: "system retired".into(),
                },
                Some(&bam.access_token),
            ))
            .await
            .unwrap()
            .into_inner();
        let after = revoked.credential.unwrap();
        assert_eq!(after.state, pb::MachineCredentialState::Revoked as i32);
        assert!(after.revoke_time.is_some());
        let event = app
            .event(EventType::CredentialRevoked, |e| {
                e.principals == vec![cred.principal.clone()]
            })
            .await;
        assert_eq!(event.businesses, vec![BN.to_owned()]);
        assert_eq!(event.revision, revoked.revision);
        assert_unauthenticated(
            app.issue(&cred.client_id, &created.client_secret).await,
            "revoked",
        );
        // Identity itself refuses the revoked credential's tokens too.
        let list_as = |token: &str| {
            app.req(
                pb::ListMachineCredentialsRequest {
                    parent: format!("businesses/{BN}"),
                    ..Default::default()
                },
                Some(token),
            )
        };
        assert!(
            id.list_machine_credentials(list_as(&other_token.access_token))
                .await
                .is_ok()
        );
        assert_unauthenticated(
            id.list_machine_credentials(list_as(&revoked_token.access_token))
                .await,
            "a revoked credential's token",
        );
        let facts = app
            .facts
            .clone()
            .get_credential(app.req(
                pb::GetCredentialRequest {
                    credential_id: cred.client_id.clone(),
                },
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(facts.revoked && facts.revoke_time.is_some());

        // Listing: active only by default, everything with show_inactive.
        let list = |show_inactive| pb::ListMachineCredentialsRequest {
            parent: format!("businesses/{BN}"),
            page_size: 1,
            page_token: String::new(),
            show_inactive,
        };
        let active = id
            .list_machine_credentials(app.req(list(false), Some(&bam.access_token)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(active.credentials.len(), 1);
        assert_eq!(
            active.credentials[0].client_id,
            other.credential.as_ref().unwrap().client_id
        );
        assert!(active.next_page_token.is_empty());
        let all1 = id
            .list_machine_credentials(app.req(list(true), Some(&bam.access_token)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            all1.credentials[0].client_id, cred.client_id,
            "oldest first"
        );
        assert!(!all1.next_page_token.is_empty());
        let mut second = list(true);
        second.page_token = all1.next_page_token;
        let all2 = id
            .list_machine_credentials(app.req(second, Some(&bam.access_token)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all2.credentials.len(), 1);
        assert!(all2.next_page_token.is_empty());

        // Expiry: a year and a day later the other credential issues nothing.
        app.clock.advance(chrono::Duration::days(366));
        assert_unauthenticated(
            app.issue(&other.credential.unwrap().client_id, &other.client_secret)
                .await,
            "expired",
        );
    }
}

#[tokio::test]
async fn r_id_4_repeated_bad_secrets_are_slowed_then_locked() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let bam = app.person("Quinn").await;
        let created = app
            .create_credential(&bam.access_token, BN, "mc-1")
            .await
            .unwrap();
        let client = created.credential.unwrap().client_id;
        // lockout_after = 5 in the test settings.
        for i in 0..5 {
            assert_unauthenticated(
                app.issue(&client, "cs1.wrong").await,
                &format!("bad secret {i}"),
            );
        }
        let err = app.issue(&client, "cs1.wrong").await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{}", backend.name());
        // Locked: even the right secret is refused until the lock ends.
        let err = app
            .issue(&client, &created.client_secret)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        app.clock.advance(chrono::Duration::seconds(601));
        assert!(app.issue(&client, &created.client_secret).await.is_ok());
        // Unknown and malformed client ids are plain UNAUTHENTICATED.
        assert_unauthenticated(
            app.issue(&uuid::Uuid::new_v4().to_string(), "x").await,
            "unknown",
        );
        assert_unauthenticated(app.issue("not-a-uuid", "x").await, "malformed");
    }
}

#[tokio::test]
async fn r_id_4_concurrent_bad_secrets_cannot_outrun_the_lockout_postgres() {
    let Some(backend) = ccp_platform::testing::TestBackend::postgres().await else {
        return;
    };
    let app = spawn_app(&backend).await;
    let bam = app.person("Rae").await;
    let created = app
        .create_credential(&bam.access_token, BN, "mc-1")
        .await
        .unwrap();
    let client = created.credential.unwrap().client_id;
    let guesses = futures::future::join_all((0..40).map(|i| {
        let client = client.clone();
        let app = &app;
        async move { app.issue(&client, &format!("cs1.guess-{i}")).await }
    }))
    .await;
    let checked = guesses
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Unauthenticated))
        .count();
    let locked = guesses
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::ResourceExhausted))
        .count();
    assert!(
        checked <= 5,
        "at most lockout_after guesses were checked, got {checked}"
    );
    assert_eq!(checked + locked, 40);
    let err = app
        .issue(&client, &created.client_secret)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn r_id_4_a_credential_secret_never_appears_in_logs_or_audit_records() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let bam = app.person("Sam").await;
        let created = app
            .create_credential(&bam.access_token, BN, "mc-1")
            .await
            .unwrap();
        let secret = created.client_secret.clone();
        let client = created.credential.clone().unwrap().client_id;
        app.issue(&client, &secret).await.unwrap();
        for _ in 0..6 {
            let _ = app.issue(&client, "cs1.bad").await;
        }
        app.identity
            .clone()
            .revoke_machine_credential(app.req(
                pb::RevokeMachineCredentialRequest {
                    request_id: "r1".into(),
                    name: created.credential.unwrap().name,
                    reason: "done".into(),
                },
                Some(&bam.access_token),
            ))
            .await
            .unwrap();
        let _ = app.issue(&client, &secret).await;
        tracing::info!("marker: logs are captured");
        let captured = logs();
        assert!(
            captured.contains("marker: logs are captured"),
            "the capture works"
        );
        assert!(captured.contains("machine credential created"));
        assert!(
            !captured.contains(&secret),
            "secret in logs ({})",
            backend.name()
        );
        let secret_body = secret.trim_start_matches("cs1.");
        assert!(!captured.contains(secret_body));

        use sea_orm::ConnectionTrait as _;
        let db = app.db().await;
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT actor, action, target, before_json, after_json, request_id FROM audit_events",
            ))
            .await
            .unwrap();
        assert!(rows.len() >= 3);
        for row in rows {
            for i in 0..6 {
                let v: Option<String> = row.try_get_by_index(i).unwrap();
                let v = v.unwrap_or_default();
                assert!(
                    !v.contains(secret_body),
                    "secret in audit ({})",
                    backend.name()
                );
                assert!(!v.contains("$argon2"), "hash in audit");
            }
        }
        // Nor in the idempotency records (the replay answer has no secret).
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT response FROM idempotency_records",
            ))
            .await
            .unwrap();
        for row in rows {
            let v: Vec<u8> = row.try_get_by_index(0).unwrap();
            assert!(!String::from_utf8_lossy(&v).contains(secret_body));
        }
    }
}

#[tokio::test]
async fn r_id_4_machine_tokens_never_outlive_their_credential() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let bam = app.person("Tom").await;
        let expire = app.now() + chrono::Duration::seconds(120);
        let created = app
            .identity
            .clone()
            .create_machine_credential(app.req(
                pb::CreateMachineCredentialRequest {
                    request_id: "short".into(),
                    parent: format!("businesses/{BN}"),
                    display_name: "short-lived".into(),
                    expire_time: Some(ccp_platform::store::timestamp(expire)),
                },
                Some(&bam.access_token),
            ))
            .await
            .unwrap()
            .into_inner();
        let token = app
            .issue(
                &created.credential.unwrap().client_id,
                &created.client_secret,
            )
            .await
            .unwrap();
        let claims = TestApp::claims(&token.access_token);
        assert!(claims.exp <= expire.timestamp(), "{}", backend.name());
        assert_eq!(token.expire_time.unwrap().seconds, claims.exp);
    }
}
