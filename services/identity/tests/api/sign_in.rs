//! R-ID-1: sign-in only through trusted issuers; every ID-token attack is refused.

use ccp_identity::oidc::DevIssuer;
use ccp_proto::identity::v1 as pb;

use crate::helpers::*;

#[tokio::test]
async fn r_id_1_a_subject_maps_to_exactly_one_person() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let first = app.sign_in("alice").await;
        let again = app.sign_in("alice").await;
        let bob = app.sign_in("bob").await;
        assert!(first.principal.starts_with("person:"), "{}", backend.name());
        assert_eq!(first.principal, again.principal, "{}", backend.name());
        assert_ne!(first.principal, bob.principal);
        assert_ne!(first.refresh_token, again.refresh_token);
        // The same subject at another issuer is another person.
        let dev = DevIssuer::from_seed("urn:ccp:dev-issuer", "ccp", &DEV_SEED).unwrap();
        let via_dev = app
            .sign_in_token(
                dev.mint("alice", app.now(), std::time::Duration::from_secs(60))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_ne!(via_dev.principal, first.principal);
        let claims = TestApp::claims(&first.access_token);
        assert_eq!(claims.iss, "ccp-identity");
        assert_eq!(claims.aud, "ccp");
        assert_eq!(claims.sub, first.principal);
        assert!(claims.exp - claims.iat <= 900);
    }
}

#[tokio::test]
async fn r_id_1_the_development_issuer_signs_in_named_test_users_when_enabled() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let dev = DevIssuer::from_seed("urn:ccp:dev-issuer", "ccp", &DEV_SEED).unwrap();
        let token = dev
            .mint("test-user-1", app.now(), std::time::Duration::from_secs(60))
            .unwrap();
        let session = app.sign_in_token(token).await.unwrap();
        assert!(session.profile_required, "{}", backend.name());
        assert!(
            logs().contains("DEVELOPMENT ISSUER IS ON"),
            "a loud warning at start"
        );
    }
}

#[tokio::test]
async fn r_id_1_the_development_issuer_is_off_unless_configured() {
    for backend in backends().await {
        let app = spawn_app_with(&backend, |s| s.dev_issuer.enabled = None).await;
        let dev = DevIssuer::from_seed("urn:ccp:dev-issuer", "ccp", &DEV_SEED).unwrap();
        let token = dev
            .mint("test-user-1", app.now(), std::time::Duration::from_secs(60))
            .unwrap();
        assert_unauthenticated(app.sign_in_token(token).await, backend.name());
    }
}

async fn refused(build: impl Fn(&TestApp) -> String, what: &str) {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let token = build(&app);
        assert_unauthenticated(
            app.sign_in_token(token).await,
            &format!("{what} ({})", backend.name()),
        );
        // Nothing was written: no person exists for the subject.
        let ok = app.sign_in("victim").await;
        assert!(ok.profile_required);
    }
}

#[tokio::test]
async fn r_id_1_id_token_expired_is_refused() {
    refused(
        |app| {
            let mut c = app.issuer.claims("victim", app.now());
            c.exp = app.now().timestamp() - 120; // beyond the 60 s leeway
            app.issuer.sign(&c)
        },
        "expired",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_id_token_not_yet_valid_is_refused() {
    refused(
        |app| {
            let mut c = app.issuer.claims("victim", app.now());
            c.nbf = app.now().timestamp() + 120;
            c.exp = app.now().timestamp() + 600;
            app.issuer.sign(&c)
        },
        "not yet valid",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_id_token_wrong_audience_is_refused() {
    refused(
        |app| {
            let mut c = app.issuer.claims("victim", app.now());
            c.aud = "another-portal".to_owned();
            app.issuer.sign(&c)
        },
        "wrong audience",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_id_token_wrong_issuer_is_refused() {
    refused(
        |app| {
            let mut c = app.issuer.claims("victim", app.now());
            c.iss = "https://evil.example/".to_owned();
            app.issuer.sign(&c)
        },
        "wrong issuer",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_id_token_unknown_kid_is_refused() {
    refused(
        |app| {
            let c = app.issuer.claims("victim", app.now());
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            header.kid = Some("not-published".to_owned());
            jsonwebtoken::encode(&header, &c, &ed_key(&app.issuer.seed)).unwrap()
        },
        "unknown kid",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_id_token_alg_none_is_refused() {
    refused(
        |app| {
            let c = app.issuer.claims("victim", app.now());
            raw_jwt(
                &serde_json::json!({"alg": "none", "typ": "JWT", "kid": app.issuer.kid}),
                &c,
                b"",
            )
        },
        "alg none",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_id_token_hs256_signed_with_the_public_key_is_refused() {
    refused(
        |app| {
            let c = app.issuer.claims("victim", app.now());
            let public = ed_public(&app.issuer.seed);
            let jwks = std::fs::read(app.issuer.jwks_path()).unwrap();
            // Both the raw key and the published JWKS text as the HMAC secret.
            let _ = hs256(&app.issuer.kid, &c, &jwks);
            hs256(&app.issuer.kid, &c, &public)
        },
        "HS256 with the public key",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_id_token_tampered_payload_is_refused() {
    refused(
        |app| {
            let token = app.issuer.token("mallory", app.now());
            tamper(&token, &app.issuer.claims("victim", app.now()))
        },
        "tampered",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_id_token_signed_by_an_untrusted_key_is_refused() {
    refused(
        |app| {
            let c = app.issuer.claims("victim", app.now());
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            header.kid = Some(app.issuer.kid.clone());
            jsonwebtoken::encode(&header, &c, &ed_key(&[9; 32])).unwrap()
        },
        "untrusted key",
    )
    .await;
}

#[tokio::test]
async fn r_id_1_garbage_and_empty_id_tokens_are_unauthenticated() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        for token in ["", "x", "a.b.c", "..", &"A".repeat(20_000)] {
            assert_unauthenticated(app.sign_in_token(token.to_owned()).await, token);
        }
        let _ = pb::SignInRequest::default();
    }
}

#[tokio::test]
async fn r_id_1_a_key_added_to_the_issuers_jwks_is_picked_up_on_unknown_kid() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let new_seed = [5u8; 32];
        let jwks = ccp_platform::auth::jwks_json([
            (
                app.issuer.kid.as_str(),
                ed_public(&app.issuer.seed).as_slice(),
            ),
            ("idp-key-2", ed_public(&new_seed).as_slice()),
        ]);
        std::fs::write(app.issuer.jwks_path(), jwks).unwrap();
        let c = app.issuer.claims("carol", app.now());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("idp-key-2".to_owned());
        let token = jsonwebtoken::encode(&header, &c, &ed_key(&new_seed)).unwrap();
        assert!(app.sign_in_token(token).await.is_ok(), "{}", backend.name());
    }
}

#[tokio::test]
async fn r_id_1_only_the_issuers_configured_algorithms_are_accepted() {
    for backend in backends().await {
        let app = spawn_app_with(&backend, |s| {
            s.issuers[0].algorithms = vec!["RS256".to_owned()]
        })
        .await;
        // A correctly signed EdDSA token from the right key: its algorithm is not allowed.
        assert_unauthenticated(
            app.sign_in_token(app.issuer.token("victim", app.now()))
                .await,
            backend.name(),
        );
    }
}

/// Serves `body` as the answer to every HTTP request on a loopback port.
async fn serve_jwks(body: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/.well-known/jwks.json")
}

#[tokio::test]
async fn r_id_1_an_issuers_jwks_is_fetched_from_its_url() {
    for backend in backends().await {
        let seed = [11u8; 32];
        let url = serve_jwks(ccp_platform::auth::jwks_json([(
            "url-key",
            ed_public(&seed).as_slice(),
        )]))
        .await;
        let app = spawn_app_with(&backend, |s| {
            s.issuers[0].jwks_file = None;
            s.issuers[0].jwks_url = Some(url.clone());
        })
        .await;
        let c = app.issuer.claims("urla", app.now());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("url-key".to_owned());
        let token = jsonwebtoken::encode(&header, &c, &ed_key(&seed)).unwrap();
        let session = app.sign_in_token(token).await.unwrap();
        assert!(session.profile_required, "{}", backend.name());
        // The file key is not trusted by this issuer any more.
        assert_unauthenticated(
            app.sign_in_token(app.issuer.token("urlb", app.now())).await,
            "old key",
        );
    }
}

#[tokio::test]
async fn r_id_1_concurrent_first_sign_ins_map_to_one_person_postgres() {
    let Some(backend) = ccp_platform::testing::TestBackend::postgres().await else {
        return;
    };
    let app = spawn_app(&backend).await;
    let sessions = futures::future::join_all(
        (0..8).map(|_| app.sign_in_token(app.issuer.token("zoe", app.now()))),
    )
    .await;
    let principals: std::collections::BTreeSet<_> =
        sessions.into_iter().map(|s| s.unwrap().principal).collect();
    assert_eq!(principals.len(), 1, "{principals:?}");
}

#[tokio::test]
async fn r_id_1_an_rs256_issuer_is_trusted_by_its_jwks() {
    use crate::rsa_fixture::{RSA_N, RSA_PRIVATE_PKCS1_DER_BASE64};
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let jwks = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": app.issuer.kid,
             "x": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, ed_public(&app.issuer.seed))},
            {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": RSA_N, "e": "AQAB"},
        ]});
        std::fs::write(app.issuer.jwks_path(), jwks.to_string()).unwrap();
        let der = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            RSA_PRIVATE_PKCS1_DER_BASE64,
        )
        .unwrap();
        let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
        let c = app.issuer.claims("rsa-user", app.now());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("rsa-1".to_owned());
        let token = jsonwebtoken::encode(&header, &c, &key).unwrap();
        assert!(
            app.sign_in_token(token.clone()).await.is_ok(),
            "{}",
            backend.name()
        );
        // The RSA key with another algorithm than its JWK names, and an
        // EdDSA-signed token naming the RSA kid, are refused.
        let mut ps = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        ps.kid = Some("rsa-1".to_owned());
        assert_unauthenticated(
            app.sign_in_token(jsonwebtoken::encode(&ps, &c, &key).unwrap())
                .await,
            "PS256 with an RS256 key",
        );
        let mut ed = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        ed.kid = Some("rsa-1".to_owned());
        assert_unauthenticated(
            app.sign_in_token(jsonwebtoken::encode(&ed, &c, &ed_key(&app.issuer.seed)).unwrap())
                .await,
            "EdDSA naming the RSA kid",
        );
        // HS256 keyed with the RSA public modulus.
        assert_unauthenticated(
            app.sign_in_token(hs256("rsa-1", &c, RSA_N.as_bytes()))
                .await,
            "HS256 with the RSA public key",
        );
    }
}
