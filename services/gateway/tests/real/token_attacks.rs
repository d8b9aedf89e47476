//! Token attacks at the gateway with identity's real signing keys (R-ID-3,
//! R-GW-1): a token signed by identity's active key but expired, not yet
//! valid, for another audience or issuer; an unknown `kid`; `alg: none`;
//! HS256 keyed with identity's public key; a tampered payload; a key identity
//! never published — every one answers UNAUTHENTICATED, on a self-service
//! RPC and on a checked one, and the untouched token still works.

use base64::Engine as _;
use ccp_platform::auth::{AccessClaims, AccessTokenSigner};
use ccp_proto::accounts::v1 as acc;
use ccp_proto::identity::v1 as idn;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::Code;

use crate::harness::{Suite, memory_context};
use crate::world::{self, ABC, Who, req};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_of(token: &str) -> AccessClaims {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn codes(suite: &Suite, token: &str) -> (Code, Code) {
    let who = Who {
        token: Some(token.to_owned()),
        ..Who::default()
    };
    let g = suite.gw();
    let own = g
        .identity()
        .get_my_profile(req(&who, idn::GetMyProfileRequest {}))
        .await
        .map_or_else(|s| s.code(), |_| Code::Ok);
    let checked = g
        .accounts()
        .get_business(req(
            &who,
            acc::GetBusinessRequest {
                name: format!("businesses/{ABC}"),
            },
        ))
        .await
        .map_or_else(|s| s.code(), |_| Code::Ok);
    (own, checked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_id_3_token_attacks_fail_at_the_gateway_with_identitys_real_keys() {
    let suite = Suite::start(memory_context(), 1).await;
    let g = suite.gw();
    let bam = world::person(&suite, g, "Alice Bam").await;
    world::register(g, &bam, ABC).await;
    let token = bam.token.clone().unwrap();
    assert_eq!(codes(&suite, &token).await, (Code::Ok, Code::Ok));

    let db = ccp_platform::db::connect(&suite.identity_settings.database)
        .await
        .unwrap();
    let signer = ccp_identity::store::keys::active_signer(&db, &suite.kek)
        .await
        .unwrap();
    let kid = kid_of(&token);
    assert_eq!(signer.kid(), kid, "the active key signed the session");
    let claims = claims_of(&token);
    let now = suite.clock.now().timestamp();

    // Identity's own key, claims untouched but for the jti: accepted.
    let resigned = signer
        .sign(&AccessClaims {
            jti: uuid::Uuid::new_v4().to_string(),
            ..claims.clone()
        })
        .unwrap();
    assert_eq!(codes(&suite, &resigned).await, (Code::Ok, Code::Ok));

    let with = |f: &dyn Fn(&mut AccessClaims)| {
        let mut c = claims.clone();
        c.jti = uuid::Uuid::new_v4().to_string();
        f(&mut c);
        c
    };
    let mut attacks: Vec<(&str, String)> = vec![
        (
            "expired",
            signer
                .sign(&with(&|c| {
                    c.exp = now - 1;
                    c.iat = now - 901;
                    c.nbf = now - 901;
                }))
                .unwrap(),
        ),
        (
            "not yet valid (nbf)",
            signer.sign(&with(&|c| c.nbf = now + 600)).unwrap(),
        ),
        (
            "another audience",
            signer
                .sign(&with(&|c| c.aud = "someone-else".into()))
                .unwrap(),
        ),
        (
            "another issuer",
            signer
                .sign(&with(&|c| c.iss = "https://evil.example".into()))
                .unwrap(),
        ),
        (
            "unknown kid",
            AccessTokenSigner::from_seed("no-such-kid", &rand_seed())
                .unwrap()
                .sign(&with(&|_| {}))
                .unwrap(),
        ),
        (
            "untrusted key under identity's kid",
            AccessTokenSigner::from_seed(kid.clone(), &rand_seed())
                .unwrap()
                .sign(&with(&|_| {}))
                .unwrap(),
        ),
    ];
    let header_none = serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid});
    let payload = serde_json::to_vec(&with(&|_| {})).unwrap();
    attacks.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(header_none.to_string().as_bytes()),
            b64(&payload)
        ),
    ));
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    for (what, secret) in [
        (
            "HS256 keyed with the raw public key",
            signer.public_key().to_vec(),
        ),
        (
            "HS256 keyed with the JWKS x",
            b64(signer.public_key()).into_bytes(),
        ),
        ("HS256 keyed with the JWKS", signer.jwks_json().into_bytes()),
    ] {
        attacks.push((
            what,
            jsonwebtoken::encode(&hs, &with(&|_| {}), &EncodingKey::from_secret(&secret)).unwrap(),
        ));
    }
    // Tampered: another principal's payload under the real signature.
    let parts: Vec<&str> = token.split('.').collect();
    let tampered_claims = with(&|c| c.sub = format!("person:{}", uuid::Uuid::new_v4()));
    attacks.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&tampered_claims).unwrap()),
            parts[2]
        ),
    ));
    attacks.push(("garbage", "not.a.token".to_owned()));

    let mut failures = Vec::new();
    for (what, forged) in &attacks {
        let got = codes(&suite, forged).await;
        if got != (Code::Unauthenticated, Code::Unauthenticated) {
            failures.push(format!("{what}: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "accepted forgeries: {failures:?}");

    // The real token, kept verified, still works — until its own exp passes.
    assert_eq!(codes(&suite, &token).await, (Code::Ok, Code::Ok));
    suite
        .clock
        .set(chrono::DateTime::from_timestamp(claims.exp, 0).unwrap());
    assert_eq!(
        codes(&suite, &token).await,
        (Code::Unauthenticated, Code::Unauthenticated)
    );
}

fn rand_seed() -> [u8; 32] {
    *uuid::Uuid::new_v4()
        .as_bytes()
        .repeat(2)
        .first_chunk::<32>()
        .unwrap()
}
