//! R-ID-3 signing keys: rotation without downtime, retired keys published
//! until their tokens have expired, private keys encrypted at rest.

use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;

use crate::helpers::*;

async fn signing_keys(app: &TestApp) -> pb::SigningKeys {
    app.identity
        .clone()
        .get_signing_keys(app.req(pb::GetSigningKeysRequest {}, None))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn r_id_3_key_rotation_keeps_old_tokens_valid_until_they_expire() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let before = app.person("Mia").await;
        let k1 = jsonwebtoken::decode_header(&before.access_token)
            .unwrap()
            .kid
            .unwrap();
        let keys = signing_keys(&app).await;
        assert_eq!(keys.keys.len(), 1, "{}", backend.name());
        assert_eq!(keys.keys[0].kid, k1);
        assert_eq!(keys.keys[0].algorithm, "EdDSA");
        let set = ccp_platform::auth::KeySet::from_jwks_json(&keys.jwks_json).unwrap();
        assert_eq!(set.len(), 1);

        // Five minutes later, `ccp keys rotate` (the same library call) rotates.
        app.clock.advance(chrono::Duration::seconds(300));
        let db = app.db().await;
        let rotation = ccp_identity::store::keys::rotate(
            &db,
            &app.kek,
            app.now(),
            chrono::Duration::seconds(app.settings.access_token_ttl_secs as i64),
            "platform:test",
        )
        .await
        .unwrap();
        assert_eq!(
            rotation.retired.as_ref().map(|r| r.0.clone()),
            Some(k1.clone())
        );

        // During the overlap both keys are published; the old one as retired.
        let keys = signing_keys(&app).await;
        assert_eq!(keys.keys.len(), 2);
        let old = keys.keys.iter().find(|k| k.kid == k1).unwrap();
        assert_eq!(old.state, pb::SigningKeyState::Retired as i32);
        assert!(old.publish_until.is_some());
        let new = keys
            .keys
            .iter()
            .find(|k| k.kid == rotation.new_kid)
            .unwrap();
        assert_eq!(new.state, pb::SigningKeyState::Active as i32);
        assert_eq!(
            ccp_platform::auth::KeySet::from_jwks_json(&keys.jwks_json)
                .unwrap()
                .len(),
            2
        );

        // The token signed before the rotation still verifies.
        assert!(app.my_profile(&before.access_token).await.is_ok());
        // New tokens are signed with the new key and verify at once.
        let after = app.sign_in("Mia").await;
        assert_eq!(
            jsonwebtoken::decode_header(&after.access_token)
                .unwrap()
                .kid
                .as_deref(),
            Some(rotation.new_kid.as_str())
        );
        assert!(app.my_profile(&after.access_token).await.is_ok());
        app.event(EventType::SigningKeyRotated, |e| {
            e.subject.ends_with(&rotation.new_kid)
        })
        .await;

        // Once every token the old key signed has expired, it is no longer
        // published and nothing it signs verifies.
        app.clock.advance(chrono::Duration::seconds(
            app.settings.access_token_ttl_secs as i64 + 1,
        ));
        assert_unauthenticated(
            app.my_profile(&before.access_token).await,
            "expired old token",
        );
        let keys = signing_keys(&app).await;
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].kid, rotation.new_kid);
        let old_signer = ccp_identity::store::keys::load_signer(&db, &app.kek, &k1)
            .await
            .unwrap();
        let mut claims = TestApp::claims(&after.access_token);
        claims.iat = app.now().timestamp();
        claims.nbf = app.now().timestamp();
        claims.exp = app.now().timestamp() + 600;
        let forged = old_signer.sign(&claims).unwrap();
        assert_unauthenticated(
            app.my_profile(&forged).await,
            "token by a retired, unpublished key",
        );
        // The refreshed session keeps working across the rotation.
        assert!(app.refresh(&before.refresh_token).await.is_ok());
    }
}

#[tokio::test]
async fn r_id_3_private_signing_keys_are_encrypted_at_rest() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let signer = app.signer().await;
        use sea_orm::ConnectionTrait as _;
        let db = app.db().await;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT private_key FROM signing_keys",
            ))
            .await
            .unwrap()
            .unwrap();
        let sealed: Vec<u8> = row.try_get_by_index(0).unwrap();
        assert!(sealed.len() >= 12 + 32 + 16, "{}", backend.name());
        // A different key-encryption key cannot open it.
        let wrong = ccp_identity::secrets::KeyEncryptionKey::generate();
        assert!(
            ccp_identity::store::keys::load_signer(&db, &wrong, signer.kid())
                .await
                .is_err()
        );
    }
}
