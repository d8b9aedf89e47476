//! Who is calling (`auth`): principals, internal tokens (HMAC, shared key) and access tokens
//! (Ed25519 by `kid`), including the usual attacks on JWT verification, exact expiry against a
//! settable clock, and key refresh from a `KeySource` on an unknown `kid`, rate-limited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ccp_platform::auth::{
    ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, AccessClaims, AccessTokenSigner,
    AccessTokenVerifier, AuthError, Caller, InternalTokenSource, InternalTokens, KeySet, KeySource,
    Principal, TokenMinter,
};
use ccp_platform::clock::Clock;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use uuid::Uuid;

/// A whole second, so that `exp` falls exactly on an instant the clock can be set to.
fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn key(byte: u8) -> Vec<u8> {
    vec![byte; 32]
}

// ---------------------------------------------------------------------------------------------
// Principals

#[test]
fn principal_display_and_parse_round_trip() {
    let id = Uuid::new_v4();
    for principal in [Principal::Person(id), Principal::Credential(id)] {
        let text = principal.to_string();
        assert_eq!(text.parse::<Principal>().unwrap(), principal);
        assert_eq!(principal.id(), id);
        // Serde uses the same text.
        let json = serde_json::to_string(&principal).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Principal>(&json).unwrap(), principal);
    }
    assert_eq!(Principal::Person(id).to_string(), format!("person:{id}"));
    assert_eq!(
        Principal::Credential(id).to_string(),
        format!("credential:{id}")
    );
    assert!(Principal::Person(id).is_person());
    assert!(!Principal::Credential(id).is_person());
}

#[test]
fn principal_rejects_garbage() {
    let id = Uuid::new_v4();
    for garbage in [
        String::new(),
        "person".to_owned(),
        "person:".to_owned(),
        ":".to_owned(),
        format!(":{id}"),
        "person:not-a-uuid".to_owned(),
        format!("robot:{id}"),
        format!("Person:{id}"),
        format!("service:{id}"),
        format!(" person:{id}"),
        format!("person:{id} "),
        format!("person:{id}:x"),
        format!("person;{id}"),
    ] {
        assert!(
            garbage.parse::<Principal>().is_err(),
            "accepted {garbage:?}"
        );
    }
    assert!(serde_json::from_str::<Principal>("\"person:nope\"").is_err());
}

// ---------------------------------------------------------------------------------------------
// Internal tokens

#[test]
fn internal_token_minted_verifies() {
    let clock = Clock::settable(start());
    let tokens = InternalTokens::new(&key(1), Duration::from_secs(300), clock.clone());
    let claims = tokens.verify(&tokens.mint("service:gateway")).unwrap();
    assert_eq!(claims.sub, "service:gateway");
    assert_eq!(claims.exp, start().timestamp() + 300);
    assert_eq!(claims.iat, start().timestamp());

    // Another instance with the same key (another process) verifies it too.
    let other = InternalTokens::new(&key(1), Duration::from_secs(300), clock);
    assert!(other.verify(&tokens.mint("service:accounts")).is_ok());
}

#[test]
fn internal_token_expires_exactly_at_exp() {
    let clock = Clock::settable(start());
    let tokens = InternalTokens::new(&key(1), Duration::from_secs(300), clock.clone());
    let past = tokens.mint_until("service:gateway", start() - ChronoDuration::seconds(1));
    assert_eq!(tokens.verify(&past), Err(AuthError::Expired));

    let token = tokens.mint("service:gateway");
    clock.set(start() + ChronoDuration::seconds(299));
    assert!(tokens.verify(&token).is_ok());
    assert!(tokens.accepts(&token));
    // Verified tokens are kept: the check at `exp` is a cache hit and still refuses.
    clock.set(start() + ChronoDuration::seconds(300));
    assert_eq!(tokens.verify(&token), Err(AuthError::Expired));
    assert!(!tokens.accepts(&token));
}

#[test]
fn internal_token_with_another_key_or_garbage_is_invalid() {
    let clock = Clock::settable(start());
    let ours = InternalTokens::new(&key(1), Duration::from_secs(300), clock.clone());
    let theirs = InternalTokens::new(&key(2), Duration::from_secs(300), clock);
    assert_eq!(
        ours.verify(&theirs.mint("service:gateway")),
        Err(AuthError::Invalid)
    );
    for garbage in ["", "garbage", "a.b.c", "..", "eyJhbGciOiJIUzI1NiJ9.e30."] {
        assert_eq!(ours.verify(garbage), Err(AuthError::Invalid), "{garbage:?}");
    }
    // Tampered subject, same signature.
    let token = ours.mint("service:gateway");
    let forged = replace_payload(&token, |claims| claims["sub"] = "platform:root".into());
    assert_eq!(ours.verify(&forged), Err(AuthError::Invalid));
}

#[test]
fn internal_token_source_follows_the_clock() {
    // A test or demo that moves a settable clock forward (to reach an expiry) must not leave
    // every internal call presenting a token that is expired by that clock.
    let clock = Clock::settable(start());
    let tokens = Arc::new(InternalTokens::new(
        &key(1),
        Duration::from_secs(300),
        clock.clone(),
    ));
    let source = InternalTokenSource::new(tokens.clone(), "service:gateway");
    let first = source.token();
    assert!(tokens.verify(&first.0).is_ok());
    assert_eq!(source.token().0, first.0, "cached while fresh");

    clock.advance(ChronoDuration::days(31));
    let later = source.token();
    let claims = tokens
        .verify(&later.0)
        .expect("a fresh token after the clock moved");
    assert_eq!(claims.sub, "service:gateway");
}

#[test]
fn internal_and_access_tokens_are_not_interchangeable() {
    let clock = Clock::settable(start());
    let internal = InternalTokens::new(&key(1), Duration::from_secs(300), clock.clone());
    let minter = TokenMinter::new(clock.clone()).unwrap();
    let verifier = trusting(&clock, &[minter.signer()]);

    // An internal token presented as an access token.
    let token = internal.mint("person:00000000-0000-0000-0000-000000000001");
    assert_eq!(
        verifier.verify_with_current_keys(&token),
        Err(AuthError::Invalid)
    );
    // An access token presented as an internal token.
    let access = minter.person(Uuid::new_v4()).unwrap();
    assert_eq!(internal.verify(&access), Err(AuthError::Invalid));
}

// ---------------------------------------------------------------------------------------------
// Access tokens

fn trusting(clock: &Clock, signers: &[&AccessTokenSigner]) -> AccessTokenVerifier {
    let verifier = AccessTokenVerifier::new(clock.clone());
    let keys: Vec<(&str, &[u8])> = signers
        .iter()
        .map(|s| (s.kid(), s.public_key().as_slice()))
        .collect();
    let jwks = ccp_platform::auth::jwks_json(keys);
    let set = KeySet::from_jwks_json(&jwks).unwrap();
    assert_eq!(set.len(), signers.len());
    verifier.set_keys(set);
    verifier
}

/// Returns `token` with its payload rewritten by `edit`, keeping header and signature.
fn replace_payload(token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

struct Setup {
    clock: Clock,
    minter: TokenMinter,
    verifier: AccessTokenVerifier,
}

fn setup() -> Setup {
    let clock = Clock::settable(start());
    let minter = TokenMinter::new(clock.clone()).unwrap();
    // The keys as identity publishes them.
    let verifier = AccessTokenVerifier::new(clock.clone());
    verifier.set_keys(KeySet::from_jwks_json(&minter.signer().jwks_json()).unwrap());
    Setup {
        clock,
        minter,
        verifier,
    }
}

#[test]
fn valid_person_token_gives_the_caller() {
    let s = setup();
    let id = Uuid::new_v4();
    let caller: Caller = s
        .verifier
        .verify_with_current_keys(&s.minter.person(id).unwrap())
        .unwrap();
    assert_eq!(caller.principal, Principal::Person(id));
    assert_eq!(caller.profile, Some(id));
    assert_eq!(caller.business, None);
    assert!(caller.session_family.is_some());
    assert!(!caller.token_id.is_empty());
    assert_eq!(caller.expires_at, start() + ChronoDuration::seconds(900));
    assert_eq!(caller.require_profile().unwrap(), id);
}

#[test]
fn valid_credential_token_gives_the_business() {
    let s = setup();
    let id = Uuid::new_v4();
    let token = s.minter.credential(id, "123456782").unwrap();
    let caller = s.verifier.verify_with_current_keys(&token).unwrap();
    assert_eq!(caller.principal, Principal::Credential(id));
    assert_eq!(caller.business.as_deref(), Some("123456782"));
    assert_eq!(caller.profile, None);
    assert!(caller.require_profile().is_err());
}

#[test]
fn person_token_without_a_profile_is_valid_but_has_no_profile() {
    let s = setup();
    let id = Uuid::new_v4();
    let mut claims = s.minter.claims(Principal::Person(id));
    claims.pid = None;
    let caller = s
        .verifier
        .verify_with_current_keys(&s.minter.sign(&claims).unwrap())
        .unwrap();
    assert_eq!(caller.profile, None);
    assert!(caller.require_profile().is_err());
}

#[test]
fn access_token_expires_exactly_at_exp() {
    let s = setup();
    let token = s.minter.person(Uuid::new_v4()).unwrap();
    let exp = start() + ChronoDuration::seconds(900);
    s.clock.set(exp - ChronoDuration::seconds(1));
    assert!(s.verifier.verify_with_current_keys(&token).is_ok());
    s.clock.set(exp - ChronoDuration::milliseconds(1));
    assert!(s.verifier.verify_with_current_keys(&token).is_ok());
    s.clock.set(exp);
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::Expired)
    );
    s.clock.set(exp + ChronoDuration::days(1));
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::Expired)
    );
}

#[test]
fn access_token_not_yet_valid_is_refused() {
    let s = setup();
    let mut claims = s.minter.claims(Principal::Person(Uuid::new_v4()));
    claims.nbf = start().timestamp() + 60;
    let token = s.minter.sign(&claims).unwrap();
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::NotYetValid)
    );
    s.clock.set(start() + ChronoDuration::seconds(60));
    assert!(s.verifier.verify_with_current_keys(&token).is_ok());
}

#[test]
fn access_token_with_wrong_audience_or_issuer_is_invalid() {
    let s = setup();
    let base = s.minter.claims(Principal::Person(Uuid::new_v4()));
    assert_eq!(base.aud, ACCESS_TOKEN_AUDIENCE);
    assert_eq!(base.iss, ACCESS_TOKEN_ISSUER);
    let cases: Vec<(&str, AccessClaims)> = vec![
        (
            "audience",
            AccessClaims {
                aud: "someone-else".to_owned(),
                ..base.clone()
            },
        ),
        (
            "internal audience",
            AccessClaims {
                aud: "ccp-internal".to_owned(),
                ..base.clone()
            },
        ),
        (
            "issuer",
            AccessClaims {
                iss: "https://evil.example".to_owned(),
                ..base.clone()
            },
        ),
        (
            "subject",
            AccessClaims {
                sub: "root".to_owned(),
                ..base.clone()
            },
        ),
        (
            "profile of another person",
            AccessClaims {
                pid: Some(Uuid::new_v4().to_string()),
                ..base.clone()
            },
        ),
        (
            "person with a business",
            AccessClaims {
                bn: Some("123456782".to_owned()),
                ..base.clone()
            },
        ),
    ];
    for (what, claims) in cases {
        let token = s.minter.sign(&claims).unwrap();
        assert_eq!(
            s.verifier.verify_with_current_keys(&token),
            Err(AuthError::Invalid),
            "{what}"
        );
    }
    // A credential without its business.
    let mut claims = s.minter.claims(Principal::Credential(Uuid::new_v4()));
    claims.bn = None;
    let token = s.minter.sign(&claims).unwrap();
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::Invalid)
    );
}

/// Signs an arbitrary JSON payload with the Ed25519 key of `seed` under `kid`.
fn sign_raw(seed: &[u8; 32], kid: Option<&str>, claims: &serde_json::Value) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let der = ed25519_dalek::SigningKey::from_bytes(seed)
        .to_pkcs8_der()
        .unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

#[test]
fn access_token_missing_a_required_claim_is_invalid() {
    const SEED: [u8; 32] = [9; 32];
    let clock = Clock::settable(start());
    let signer = AccessTokenSigner::from_seed("raw", &SEED).unwrap();
    let verifier = trusting(&clock, &[&signer]);
    let minter = TokenMinter::new(clock).unwrap();
    let full = serde_json::to_value(minter.claims(Principal::Person(Uuid::new_v4()))).unwrap();
    // Control: the complete payload, signed the same way, verifies.
    assert!(
        verifier
            .verify_with_current_keys(&sign_raw(&SEED, Some("raw"), &full))
            .is_ok()
    );
    for claim in ["exp", "nbf", "iss", "aud", "sub", "jti"] {
        let mut claims = full.clone();
        claims.as_object_mut().unwrap().remove(claim);
        let token = sign_raw(&SEED, Some("raw"), &claims);
        assert_eq!(
            verifier.verify_with_current_keys(&token),
            Err(AuthError::Invalid),
            "without {claim}"
        );
    }
    // A token without a kid at all.
    assert_eq!(
        verifier.verify_with_current_keys(&sign_raw(&SEED, None, &full)),
        Err(AuthError::Invalid)
    );
}

#[test]
fn token_from_an_unknown_key_is_refused() {
    let s = setup();
    let stranger = TokenMinter::new(s.clock.clone()).unwrap();
    let token = stranger.person(Uuid::new_v4()).unwrap();
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::UnknownKey)
    );
}

#[test]
fn alg_none_is_refused() {
    let s = setup();
    let claims = s.minter.claims(Principal::Person(Uuid::new_v4()));
    let header = serde_json::json!({ "alg": "none", "typ": "JWT", "kid": s.minter.signer().kid() });
    let token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
    );
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::Invalid)
    );
    // Also with the original signature left on.
    let signed = s.minter.person(Uuid::new_v4()).unwrap();
    let parts: Vec<&str> = signed.split('.').collect();
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::Invalid)
    );
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let s = setup();
    let claims = s.minter.claims(Principal::Person(Uuid::new_v4()));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(s.minter.signer().kid().to_owned());
    let public = s.minter.signer().public_key();
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(public)).unwrap();
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::Invalid)
    );
    // And with the public key as it appears in the JWKS (base64url text).
    let x = URL_SAFE_NO_PAD.encode(public);
    let token =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(x.as_bytes())).unwrap();
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::Invalid)
    );
}

#[test]
fn tampered_payload_is_refused() {
    let s = setup();
    let victim = Uuid::new_v4();
    let token = s.minter.person(Uuid::new_v4()).unwrap();
    let forged = replace_payload(&token, |claims| {
        claims["sub"] = format!("person:{victim}").into();
        claims["pid"] = victim.to_string().into();
    });
    assert_eq!(
        s.verifier.verify_with_current_keys(&forged),
        Err(AuthError::Invalid)
    );
    let extended = replace_payload(&token, |claims| {
        claims["exp"] = (start().timestamp() + 86_400 * 365).into();
    });
    assert_eq!(
        s.verifier.verify_with_current_keys(&extended),
        Err(AuthError::Invalid)
    );
    // The untouched token still verifies.
    assert!(s.verifier.verify_with_current_keys(&token).is_ok());
}

#[test]
fn untrusted_key_claiming_a_trusted_kid_is_refused() {
    let s = setup();
    let impostor = AccessTokenSigner::from_seed(s.minter.signer().kid(), &[42; 32]).unwrap();
    assert_eq!(impostor.kid(), s.minter.signer().kid());
    assert_ne!(impostor.public_key(), s.minter.signer().public_key());
    let claims = s.minter.claims(Principal::Person(Uuid::new_v4()));
    let token = impostor.sign(&claims).unwrap();
    assert_eq!(
        s.verifier.verify_with_current_keys(&token),
        Err(AuthError::Invalid)
    );
}

#[test]
fn same_seed_gives_the_same_key() {
    let a = AccessTokenSigner::from_seed("k1", &[5; 32]).unwrap();
    let b = AccessTokenSigner::from_seed("k1", &[5; 32]).unwrap();
    assert_eq!(a.public_key(), b.public_key());
    let clock = Clock::settable(start());
    let verifier = trusting(&clock, &[&a]);
    let minter = TokenMinter::new(clock.clone()).unwrap();
    let token = b
        .sign(&minter.claims(Principal::Person(Uuid::new_v4())))
        .unwrap();
    assert!(verifier.verify_with_current_keys(&token).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Key refresh

/// A key source publishing a fixed JWKS and counting fetches.
struct CountingSource {
    jwks: String,
    fetches: AtomicUsize,
}

#[async_trait::async_trait]
impl KeySource for CountingSource {
    async fn fetch_jwks(&self) -> anyhow::Result<String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.jwks.clone())
    }
}

#[tokio::test]
async fn unknown_kid_refreshes_once_per_interval() {
    let clock = Clock::settable(start());
    let old = TokenMinter::new(clock.clone()).unwrap();
    let rotated = TokenMinter::new(clock.clone()).unwrap();
    let jwks = ccp_platform::auth::jwks_json([
        (old.signer().kid(), old.signer().public_key().as_slice()),
        (
            rotated.signer().kid(),
            rotated.signer().public_key().as_slice(),
        ),
    ]);
    let source = Arc::new(CountingSource {
        jwks,
        fetches: AtomicUsize::new(0),
    });
    let verifier = AccessTokenVerifier::new(clock.clone())
        .with_source(source.clone(), Duration::from_secs(3600));
    verifier.set_keys(KeySet::from_jwks_json(&old.signer().jwks_json()).unwrap());

    // Known kid: no fetch.
    assert!(
        verifier
            .verify(&old.person(Uuid::new_v4()).unwrap())
            .await
            .is_ok()
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 0);

    // A rotated key: one fetch, then it verifies, and the old key still does.
    let id = Uuid::new_v4();
    let caller = verifier.verify(&rotated.person(id).unwrap()).await.unwrap();
    assert_eq!(caller.principal, Principal::Person(id));
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    assert!(
        verifier
            .verify(&old.person(Uuid::new_v4()).unwrap())
            .await
            .is_ok()
    );
    assert!(
        verifier
            .verify(&rotated.person(Uuid::new_v4()).unwrap())
            .await
            .is_ok()
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);

    // Another unknown kid within the interval: refused without fetching again.
    let stranger = TokenMinter::new(clock.clone()).unwrap();
    for _ in 0..3 {
        let token = stranger.person(Uuid::new_v4()).unwrap();
        assert_eq!(verifier.verify(&token).await, Err(AuthError::UnknownKey));
    }
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_kid_refreshes_again_once_the_interval_has_passed() {
    let clock = Clock::settable(start());
    let stranger = TokenMinter::new(clock.clone()).unwrap();
    let source = Arc::new(CountingSource {
        jwks: ccp_platform::auth::jwks_json([]),
        fetches: AtomicUsize::new(0),
    });
    let verifier = AccessTokenVerifier::new(clock).with_source(source.clone(), Duration::ZERO);
    for n in 1..=3 {
        let token = stranger.person(Uuid::new_v4()).unwrap();
        assert_eq!(verifier.verify(&token).await, Err(AuthError::UnknownKey));
        assert_eq!(source.fetches.load(Ordering::SeqCst), n);
    }
}

#[tokio::test]
async fn verify_without_a_source_never_fetches() {
    let s = setup();
    let stranger = TokenMinter::new(s.clock.clone()).unwrap();
    let token = stranger.person(Uuid::new_v4()).unwrap();
    assert_eq!(s.verifier.verify(&token).await, Err(AuthError::UnknownKey));
    assert!(!s.verifier.refresh().await.unwrap());
}

/// A key source whose published JWKS can be changed, counting fetches.
struct ChangingSource {
    jwks: std::sync::Mutex<String>,
    fetches: AtomicUsize,
}

#[async_trait::async_trait]
impl KeySource for ChangingSource {
    async fn fetch_jwks(&self) -> anyhow::Result<String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.jwks.lock().unwrap().clone())
    }
}

#[tokio::test]
async fn r_id_3_a_key_identity_stops_publishing_stops_verifying_once_the_keys_age_out() {
    let clock = Clock::settable(start());
    let withdrawn = TokenMinter::new(clock.clone()).unwrap();
    let kept = TokenMinter::new(clock.clone()).unwrap();
    let both = ccp_platform::auth::jwks_json([
        (
            withdrawn.signer().kid(),
            withdrawn.signer().public_key().as_slice(),
        ),
        (kept.signer().kid(), kept.signer().public_key().as_slice()),
    ]);
    let source = Arc::new(ChangingSource {
        jwks: std::sync::Mutex::new(both),
        fetches: AtomicUsize::new(0),
    });
    let verifier = AccessTokenVerifier::new(clock.clone())
        .with_source(source.clone(), Duration::ZERO)
        .with_max_key_age(Duration::from_millis(100));
    let token = withdrawn.person(Uuid::new_v4()).unwrap();
    assert!(
        verifier.verify(&token).await.is_ok(),
        "first fetch knows the key"
    );
    let fetches = source.fetches.load(Ordering::SeqCst);

    // Identity withdraws the key; within the key age the verifier still trusts it.
    *source.jwks.lock().unwrap() = kept.signer().jwks_json();
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(
        source.fetches.load(Ordering::SeqCst),
        fetches,
        "no fetch while fresh"
    );

    // Once the keys age out the next verification fetches again and refuses it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(verifier.verify(&token).await, Err(AuthError::UnknownKey));
    assert!(source.fetches.load(Ordering::SeqCst) > fetches);
    assert!(
        verifier
            .verify(&kept.person(Uuid::new_v4()).unwrap())
            .await
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------------
// The verified-token cache

#[tokio::test]
async fn r_id_3_a_cached_token_still_expires_at_exp_and_stops_verifying_once_its_key_is_withdrawn()
{
    let clock = Clock::settable(start());
    let minter = TokenMinter::new(clock.clone()).unwrap();
    let other = TokenMinter::new(clock.clone()).unwrap();
    let verifier = AccessTokenVerifier::new(clock.clone()).with_cache(10);
    verifier.set_keys(KeySet::from_jwks_json(&minter.signer().jwks_json()).unwrap());
    let token = minter.person(Uuid::new_v4()).unwrap();
    let first = verifier.verify(&token).await.unwrap();
    // Answered again (from the cache) with the same caller.
    assert_eq!(verifier.verify(&token).await.unwrap(), first);
    // The key is withdrawn (identity publishes only another): refused at once.
    verifier.set_keys(KeySet::from_jwks_json(&other.signer().jwks_json()).unwrap());
    assert_eq!(verifier.verify(&token).await, Err(AuthError::UnknownKey));
    // Published again: verified again, and cached until its exp, not after.
    verifier.set_keys(KeySet::from_jwks_json(&minter.signer().jwks_json()).unwrap());
    assert_eq!(verifier.verify(&token).await.unwrap(), first);
    clock.set(first.expires_at);
    assert_eq!(verifier.verify(&token).await, Err(AuthError::Expired));
    // A tampered copy of a cached token is not the cached token.
    let fresh = minter.person(Uuid::new_v4()).unwrap();
    verifier.verify(&fresh).await.unwrap();
    let tampered = replace_payload(&fresh, |p| {
        p["sub"] = serde_json::json!("person:00000000-0000-0000-0000-000000000000")
    });
    assert_eq!(verifier.verify(&tampered).await, Err(AuthError::Invalid));
}
