//! R-ID-3 sessions (rotation, reuse, sign-out) and R-ID-5 revocation events;
//! every attack on the service's own access tokens is UNAUTHENTICATED.

use ccp_platform::auth::AccessClaims;
use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn r_id_3_refresh_rotates_the_refresh_token() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let s0 = app.person("Hana").await;
        let s1 = app.refresh(&s0.refresh_token).await.unwrap();
        assert_ne!(s1.refresh_token, s0.refresh_token, "{}", backend.name());
        assert_ne!(s1.access_token, s0.access_token);
        assert_eq!(s1.principal, s0.principal);
        assert_eq!(s1.profile, s0.profile);
        let c0 = TestApp::claims(&s0.access_token);
        let c1 = TestApp::claims(&s1.access_token);
        assert_eq!(c0.sid, c1.sid, "same family");
        assert!(c1.exp - c1.iat <= 900);
        assert!(app.my_profile(&s1.access_token).await.is_ok());
        // Refresh tokens are stored only as SHA-256 hashes.
        use sea_orm::ConnectionTrait as _;
        let db = app.db().await;
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT token_hash FROM refresh_tokens",
            ))
            .await
            .unwrap();
        for row in rows {
            let h: String = row.try_get_by_index(0).unwrap();
            assert_eq!(h.len(), 64);
            assert_ne!(h, s0.refresh_token);
        }
        // Unknown refresh tokens are refused.
        assert_unauthenticated(app.refresh("rt1.nope").await, "unknown");
        assert_unauthenticated(app.refresh("").await, "empty");
    }
}

#[tokio::test]
async fn r_id_3_reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let s0 = app.person("Ivan").await;
        let s1 = app.refresh(&s0.refresh_token).await.unwrap();
        let s2 = app.refresh(&s1.refresh_token).await.unwrap();
        // An attacker replays s0's (rotated) token.
        assert_unauthenticated(app.refresh(&s0.refresh_token).await, "reuse");
        // Every token of the family is dead now, including the newest.
        assert_unauthenticated(app.refresh(&s2.refresh_token).await, "newest after reuse");
        assert_unauthenticated(app.refresh(&s1.refresh_token).await, "older after reuse");
        // Its access tokens are refused by identity too.
        assert_unauthenticated(app.my_profile(&s2.access_token).await, "access after reuse");
        let family = TestApp::claims(&s0.access_token).sid.unwrap();
        let event = app
            .event(EventType::SessionFamilyRevoked, |e| {
                e.token_families == vec![family.clone()]
            })
            .await;
        assert_eq!(
            event.principals,
            vec![s0.principal.clone()],
            "{}",
            backend.name()
        );
        // Other sessions of the person are untouched.
        let other = app.sign_in("Ivan").await;
        assert!(app.my_profile(&other.access_token).await.is_ok());
        // The revocation is recorded.
        let audit = app
            .identity
            .clone()
            .list_audit_events(app.req(
                pb::ListAuditEventsRequest {
                    parent: "profiles/me".into(),
                    ..Default::default()
                },
                Some(&other.access_token),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            audit
                .events
                .iter()
                .any(|e| e.action == "identity.session.revoke_family")
        );
    }
}

#[tokio::test]
async fn r_id_3_an_expired_refresh_token_is_refused() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let s0 = app.person("Jill").await;
        app.clock.advance(chrono::Duration::seconds(
            app.settings.refresh_token_ttl_secs as i64 + 1,
        ));
        assert_unauthenticated(app.refresh(&s0.refresh_token).await, backend.name());
    }
}

#[tokio::test]
async fn r_id_5_sign_out_revokes_the_family_and_names_it_in_an_event() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let s0 = app.person("Kim").await;
        let family = TestApp::claims(&s0.access_token).sid.unwrap();
        let mut id = app.identity.clone();
        let out = id
            .sign_out(app.req(
                pb::SignOutRequest {
                    request_id: "bye".into(),
                },
                Some(&s0.access_token),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!out.revision.is_empty(), "{}", backend.name());
        let event = app
            .event(EventType::SessionSignedOut, |e| {
                e.token_families == vec![family.clone()]
            })
            .await;
        assert_eq!(event.principals, vec![s0.principal.clone()]);
        assert_eq!(event.revision, out.revision);
        assert_unauthenticated(
            app.refresh(&s0.refresh_token).await,
            "refresh after sign-out",
        );
        assert_unauthenticated(
            app.my_profile(&s0.access_token).await,
            "access after sign-out",
        );
        // A replay of the same request answers the same.
        let again = id
            .sign_out(app.req(
                pb::SignOutRequest {
                    request_id: "bye".into(),
                },
                Some(&s0.access_token),
            ))
            .await;
        // The access token's session ended; identity refuses it, or replays.
        if let Ok(r) = again {
            assert_eq!(r.into_inner().revision, out.revision);
        }
        let err = id
            .sign_out(app.req(
                pb::SignOutRequest {
                    request_id: String::new(),
                },
                Some(&s0.access_token),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        // Without a token: unauthenticated.
        assert_unauthenticated(
            id.sign_out(app.req(
                pb::SignOutRequest {
                    request_id: "x".into(),
                },
                None,
            ))
            .await,
            "no token",
        );
    }
}

async fn access_refused(build: impl AsyncFn(&TestApp, &pb::Session) -> String, what: &str) {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let session = app.person("Lee").await;
        let token = build(&app, &session).await;
        assert_unauthenticated(
            app.my_profile(&token).await,
            &format!("{what} ({})", backend.name()),
        );
        assert!(
            app.my_profile(&session.access_token).await.is_ok(),
            "the genuine token works"
        );
    }
}

fn claims_of(session: &pb::Session) -> AccessClaims {
    TestApp::claims(&session.access_token)
}

#[tokio::test]
async fn r_id_3_access_token_expired_is_refused() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let session = app.person("Lee").await;
        assert!(app.my_profile(&session.access_token).await.is_ok());
        app.clock.advance(chrono::Duration::seconds(901));
        assert_unauthenticated(app.my_profile(&session.access_token).await, backend.name());
    }
}

#[tokio::test]
async fn r_id_3_access_token_not_yet_valid_is_refused() {
    access_refused(
        async |app, s| {
            let mut c = claims_of(s);
            c.nbf = app.now().timestamp() + 300;
            app.signer().await.sign(&c).unwrap()
        },
        "not yet valid",
    )
    .await;
}

#[tokio::test]
async fn r_id_3_access_token_wrong_audience_is_refused() {
    access_refused(
        async |app, s| {
            let mut c = claims_of(s);
            c.aud = "someone-else".into();
            app.signer().await.sign(&c).unwrap()
        },
        "wrong audience",
    )
    .await;
}

#[tokio::test]
async fn r_id_3_access_token_wrong_issuer_is_refused() {
    access_refused(
        async |app, s| {
            let mut c = claims_of(s);
            c.iss = "not-ccp-identity".into();
            app.signer().await.sign(&c).unwrap()
        },
        "wrong issuer",
    )
    .await;
}

#[tokio::test]
async fn r_id_3_access_token_unknown_kid_is_refused() {
    access_refused(
        async |_app, s| {
            let stranger =
                ccp_platform::auth::AccessTokenSigner::from_seed("kunknown", &[3; 32]).unwrap();
            stranger.sign(&claims_of(s)).unwrap()
        },
        "unknown kid",
    )
    .await;
}

#[tokio::test]
async fn r_id_3_access_token_alg_none_is_refused() {
    access_refused(
        async |app, s| {
            let kid = app.signer().await.kid().to_owned();
            raw_jwt(
                &serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}),
                &claims_of(s),
                b"",
            )
        },
        "alg none",
    )
    .await;
}

#[tokio::test]
async fn r_id_3_access_token_hs256_signed_with_the_public_key_is_refused() {
    access_refused(
        async |app, s| {
            let signer = app.signer().await;
            hs256(signer.kid(), &claims_of(s), signer.public_key())
        },
        "HS256 with the public key",
    )
    .await;
}

#[tokio::test]
async fn r_id_3_access_token_tampered_payload_is_refused() {
    access_refused(
        async |_app, s| {
            let mut c = claims_of(s);
            c.exp += 3600;
            tamper(&s.access_token, &c)
        },
        "tampered",
    )
    .await;
}

#[tokio::test]
async fn r_id_3_access_token_signed_by_an_untrusted_key_is_refused() {
    access_refused(
        async |app, s| {
            let kid = app.signer().await.kid().to_owned();
            let forger = ccp_platform::auth::AccessTokenSigner::from_seed(kid, &[4; 32]).unwrap();
            forger.sign(&claims_of(s)).unwrap()
        },
        "untrusted key with the real kid",
    )
    .await;
}

#[tokio::test]
async fn r_id_3_a_refresh_token_presented_twice_at_once_yields_at_most_one_session_postgres() {
    let Some(backend) = ccp_platform::testing::TestBackend::postgres().await else {
        return;
    };
    let app = spawn_app(&backend).await;
    let s0 = app.person("Race").await;
    let results = futures::future::join_all((0..6).map(|_| app.refresh(&s0.refresh_token))).await;
    let winners: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
    assert!(
        winners.len() <= 1,
        "{} sessions from one refresh token",
        winners.len()
    );
    // Presenting it more than once revoked the family: the winner's token is dead too.
    for w in winners {
        assert_unauthenticated(
            app.refresh(&w.refresh_token).await,
            "after a double presentation",
        );
    }
}
