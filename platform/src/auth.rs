//! Who is calling: principals, access tokens (signed by identity's Ed25519
//! keys) and internal tokens (HMAC with a key from configuration).
//!
//! Every service requires an internal token on every call: it proves the
//! call came through the gateway (or from another service or a platform
//! team), which has already authorized it. Public calls also carry the
//! caller's access token, verified again here and exposed to handlers as a
//! [`Caller`]. Expiry is measured against the configured [`Clock`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::server::NamedService;
use uuid::Uuid;

use crate::clock::Clock;

/// Metadata key of the internal token.
pub const INTERNAL_TOKEN_HEADER: &str = "x-ccp-internal-token";
/// Metadata key of a revision token a read must be at least as fresh as.
pub const REVISION_HEADER: &str = "x-ccp-revision";
/// Metadata key of the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Issuer of access tokens.
pub const ACCESS_TOKEN_ISSUER: &str = "ccp-identity";
/// Audience of access tokens.
pub const ACCESS_TOKEN_AUDIENCE: &str = "ccp";
/// Issuer and audience of internal tokens.
pub const INTERNAL_TOKEN_AUDIENCE: &str = "ccp-internal";

/// A failed verification. Every variant answers UNAUTHENTICATED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token where one is required.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The token is malformed, wrongly signed, or has the wrong algorithm, issuer or audience.
    #[error("invalid token")]
    Invalid,
    /// The header names a key that is not published.
    #[error("unknown signing key")]
    UnknownKey,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token is not valid yet.
    #[error("token not yet valid")]
    NotYetValid,
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        Status::unauthenticated(err.to_string())
    }
}

/// Who acts: a person (by profile id) or a machine credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// `person:<uuid>`: a person; the uuid is the profile id.
    Person(Uuid),
    /// `credential:<uuid>`: a machine credential.
    Credential(Uuid),
}

impl Principal {
    /// Returns the uuid.
    pub fn id(&self) -> Uuid {
        match self {
            Self::Person(id) | Self::Credential(id) => *id,
        }
    }

    /// Returns true for a person.
    pub fn is_person(&self) -> bool {
        matches!(self, Self::Person(_))
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(id) => write!(f, "person:{id}"),
            Self::Credential(id) => write!(f, "credential:{id}"),
        }
    }
}

/// A malformed principal string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be person:<uuid> or credential:<uuid>")]
pub struct PrincipalParseError;

impl FromStr for Principal {
    type Err = PrincipalParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, text) = s.split_once(':').ok_or(PrincipalParseError)?;
        let id = Uuid::parse_str(text).map_err(|_| PrincipalParseError)?;
        // Only the canonical spelling (lowercase, hyphenated): a principal is
        // used as a text key (caches, audit, idempotency) and must have one form.
        if id.hyphenated().to_string() != text {
            return Err(PrincipalParseError);
        }
        match kind {
            "person" => Ok(Self::Person(id)),
            "credential" => Ok(Self::Credential(id)),
            _ => Err(PrincipalParseError),
        }
    }
}

impl Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer, [`ACCESS_TOKEN_ISSUER`].
    pub iss: String,
    /// Audience, [`ACCESS_TOKEN_AUDIENCE`].
    pub aud: String,
    /// The principal, `person:<uuid>` or `credential:<uuid>`.
    pub sub: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Not before (seconds since the epoch).
    pub nbf: i64,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// The session's token family (people only); sign-out revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The profile id, absent until the profile exists (people only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// The credential's business BN9 (machine credentials only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bn: Option<String>,
}

/// A verified caller, put in each request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who calls.
    pub principal: Principal,
    /// The profile, once it exists (people only).
    pub profile: Option<Uuid>,
    /// The credential's business (machine credentials only).
    pub business: Option<String>,
    /// The session's token family (people only).
    pub session_family: Option<Uuid>,
    /// The token's id.
    pub token_id: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

impl Caller {
    /// Returns the caller's profile id, or FAILED_PRECONDITION when the person
    /// has not created one yet (R-ID-2).
    pub fn require_profile(&self) -> Result<Uuid, crate::error::Error> {
        match (self.principal, self.profile) {
            (Principal::Person(_), Some(profile)) => Ok(profile),
            (Principal::Person(_), None) => Err(crate::error::Error::failed_precondition(
                "create your profile first",
            )),
            (Principal::Credential(_), _) => Err(crate::error::Error::permission_denied(
                "a machine credential has no profile",
            )),
        }
    }

    fn from_claims(claims: AccessClaims) -> Result<Self, AuthError> {
        let principal: Principal = claims.sub.parse().map_err(|_| AuthError::Invalid)?;
        let parse_uuid = |v: Option<String>| -> Result<Option<Uuid>, AuthError> {
            v.map(|s| Uuid::parse_str(&s).map_err(|_| AuthError::Invalid))
                .transpose()
        };
        let profile = parse_uuid(claims.pid)?;
        let session_family = parse_uuid(claims.sid)?;
        match principal {
            Principal::Person(id) => {
                if profile.is_some_and(|p| p != id) || claims.bn.is_some() {
                    return Err(AuthError::Invalid);
                }
            }
            Principal::Credential(_) => {
                if claims.bn.is_none() || profile.is_some() {
                    return Err(AuthError::Invalid);
                }
            }
        }
        Ok(Self {
            principal,
            profile,
            business: claims.bn,
            session_family,
            token_id: claims.jti,
            expires_at: DateTime::from_timestamp(claims.exp, 0).ok_or(AuthError::Invalid)?,
        })
    }
}

/// Returns the verified caller of a request, or UNAUTHENTICATED.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("missing access token"))
}

/// The claims of an internal token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalClaims {
    /// Issuer and audience, [`INTERNAL_TOKEN_AUDIENCE`].
    pub iss: String,
    /// Audience, [`INTERNAL_TOKEN_AUDIENCE`].
    pub aud: String,
    /// Who presents it, e.g. `service:gateway` or `platform:ops`.
    pub sub: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
}

/// Mints and verifies internal tokens with a shared HMAC-SHA256 key.
pub struct InternalTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    clock: Clock,
}

impl fmt::Debug for InternalTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl InternalTokens {
    /// Returns tokens keyed by `key` (at least 32 bytes).
    pub fn new(key: &[u8], ttl: Duration, clock: Clock) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the configured clock below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_audience(&[INTERNAL_TOKEN_AUDIENCE]);
        validation.set_issuer(&[INTERNAL_TOKEN_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            ttl,
            clock,
        }
    }

    /// Returns a random 32-byte key (base64) for the embedded mode and tests.
    pub fn generate_key() -> String {
        let key: [u8; 32] = rand::random();
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// Mints a token for `subject` valid for the configured lifetime.
    pub fn mint(&self, subject: &str) -> String {
        self.mint_until(subject, self.clock.now() + self.ttl)
    }

    /// Mints a token for `subject` expiring at `exp` (tests mint expired ones).
    pub fn mint_until(&self, subject: &str, exp: DateTime<Utc>) -> String {
        let now = self.clock.now();
        let claims = InternalClaims {
            iss: INTERNAL_TOKEN_AUDIENCE.to_owned(),
            aud: INTERNAL_TOKEN_AUDIENCE.to_owned(),
            sub: subject.to_owned(),
            exp: exp.timestamp(),
            iat: now.timestamp(),
        };
        // HS256 encoding of a plain struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Verifies a token: signature, algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<InternalClaims, AuthError> {
        let data = jsonwebtoken::decode::<InternalClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::Invalid)?;
        if data.claims.exp <= self.clock.now().timestamp() {
            return Err(AuthError::Expired);
        }
        Ok(data.claims)
    }

    /// Returns the configured token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// A cached internal token for one subject, re-minted when half its life is gone
/// (by the wall clock, or by the configured [`Clock`] when a settable one moves).
#[derive(Debug)]
pub struct InternalTokenSource {
    tokens: Arc<InternalTokens>,
    subject: String,
    current: ArcSwap<(String, Instant)>,
    /// When the current token was minted by the configured clock (µs since the epoch).
    minted_at: std::sync::atomic::AtomicI64,
}

impl InternalTokenSource {
    /// Returns a source minting tokens for `subject`.
    pub fn new(tokens: Arc<InternalTokens>, subject: impl Into<String>) -> Self {
        let subject = subject.into();
        let minted_at = tokens.clock.now().timestamp_micros();
        let token = tokens.mint(&subject);
        Self {
            tokens,
            subject,
            current: ArcSwap::from_pointee((token, Instant::now())),
            minted_at: std::sync::atomic::AtomicI64::new(minted_at),
        }
    }

    /// Returns a valid token, minting a new one when the cached one is half-spent.
    pub fn token(&self) -> Arc<(String, Instant)> {
        use std::sync::atomic::Ordering;
        let current = self.current.load_full();
        let half = self.tokens.ttl() / 2;
        let now = self.tokens.clock.now().timestamp_micros();
        // A settable clock moved forward (tests, demos) can expire the token
        // while little wall-clock time has passed: check both.
        let clock_age = now.saturating_sub(self.minted_at.load(Ordering::Acquire));
        let half_micros = i64::try_from(half.as_micros()).unwrap_or(i64::MAX);
        if current.1.elapsed() < half && clock_age < half_micros {
            return current;
        }
        let fresh = Arc::new((self.tokens.mint(&self.subject), Instant::now()));
        self.minted_at.store(now, Ordering::Release);
        self.current.store(fresh.clone());
        fresh
    }
}

/// A tonic client interceptor adding the internal token and W3C trace
/// context to every call; used by services and the gateway for their clients.
#[derive(Debug, Clone)]
pub struct InternalClientInterceptor {
    source: Arc<InternalTokenSource>,
}

impl InternalClientInterceptor {
    /// Returns an interceptor presenting tokens from `source`.
    pub fn new(source: Arc<InternalTokenSource>) -> Self {
        Self { source }
    }
}

impl tonic::service::Interceptor for InternalClientInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let token = self.source.token();
        let value = token
            .0
            .parse()
            .map_err(|_| Status::internal("internal token is not valid metadata"))?;
        request.metadata_mut().insert(INTERNAL_TOKEN_HEADER, value);
        crate::telemetry::TraceContextInterceptor.call(request)
    }
}

/// A set of Ed25519 public keys by `kid`.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
struct JwkJson {
    kid: Option<String>,
    kty: String,
    crv: Option<String>,
    x: Option<String>,
}

#[derive(Deserialize)]
struct JwksJson {
    keys: Vec<JwkJson>,
}

impl KeySet {
    /// Parses a JWKS, keeping its Ed25519 (`OKP`/`Ed25519`) keys that have a `kid`.
    pub fn from_jwks_json(json: &str) -> Result<Self, anyhow::Error> {
        let jwks: JwksJson = serde_json::from_str(json)?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys {
            if jwk.kty != "OKP" || jwk.crv.as_deref() != Some("Ed25519") {
                continue;
            }
            if let (Some(kid), Some(x)) = (jwk.kid, jwk.x) {
                keys.insert(kid, DecodingKey::from_ed_components(&x)?);
            }
        }
        Ok(Self { keys })
    }

    /// Returns the number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns true when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Returns a JWKS holding Ed25519 public keys given as `(kid, raw 32-byte key)`.
pub fn jwks_json<'a>(keys: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let keys: Vec<serde_json::Value> = keys
        .into_iter()
        .map(|(kid, public)| {
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": kid,
                "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public),
            })
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Where a verifier fetches the current JWKS (identity's GetSigningKeys).
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// Returns the current JWKS as JSON.
    async fn fetch_jwks(&self) -> anyhow::Result<String>;
}

/// A key source serving a fixed JWKS (tests, and deployments that pin keys).
#[derive(Debug, Clone)]
pub struct StaticKeySource(pub String);

#[async_trait::async_trait]
impl KeySource for StaticKeySource {
    async fn fetch_jwks(&self) -> anyhow::Result<String> {
        Ok(self.0.clone())
    }
}

/// Verifies access tokens against identity's published keys. An unknown `kid`
/// triggers a refresh from the [`KeySource`], at most once per interval.
pub struct AccessTokenVerifier {
    keys: ArcSwap<KeySet>,
    validation: Validation,
    clock: Clock,
    source: Option<Arc<dyn KeySource>>,
    min_refresh_interval: Duration,
    max_key_age: Duration,
    fetched_at: ArcSwap<Option<Instant>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl fmt::Debug for AccessTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenVerifier")
            .field("keys", &self.keys.load())
            .finish_non_exhaustive()
    }
}

impl AccessTokenVerifier {
    /// Returns a verifier with no keys yet.
    pub fn new(clock: Clock) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_audience(&[ACCESS_TOKEN_AUDIENCE]);
        validation.set_issuer(&[ACCESS_TOKEN_ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Self {
            keys: ArcSwap::from_pointee(KeySet::default()),
            validation,
            clock,
            source: None,
            min_refresh_interval: Duration::from_secs(1),
            max_key_age: Duration::from_secs(300),
            fetched_at: ArcSwap::from_pointee(None),
            last_refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// Fetches keys from `source` when a token names an unknown `kid`, at most
    /// once per `min_interval`, and when the keys at hand are older than the
    /// maximum key age (5 minutes unless [`Self::with_max_key_age`] says
    /// otherwise), so that a key identity stops publishing stops verifying.
    pub fn with_source(mut self, source: Arc<dyn KeySource>, min_interval: Duration) -> Self {
        self.source = Some(source);
        self.min_refresh_interval = min_interval;
        self
    }

    /// Sets how long fetched keys are trusted before they are fetched again.
    pub fn with_max_key_age(mut self, max_age: Duration) -> Self {
        self.max_key_age = max_age;
        self
    }

    /// Replaces the key set.
    pub fn set_keys(&self, keys: KeySet) {
        self.keys.store(Arc::new(keys));
    }

    /// Fetches the keys from the source now. Returns false when there is no source.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let json = source.fetch_jwks().await?;
        self.set_keys(KeySet::from_jwks_json(&json)?);
        self.fetched_at.store(Arc::new(Some(Instant::now())));
        Ok(true)
    }

    fn keys_are_stale(&self) -> bool {
        self.source.is_some()
            && (*self.fetched_at.load()).is_some_and(|at| at.elapsed() >= self.max_key_age)
    }

    /// Refreshes the keys unless another refresh happened within the minimum
    /// interval; `needed` is re-checked under the lock.
    async fn refresh_rate_limited(&self, needed: impl Fn() -> bool) {
        let mut last = self.last_refresh.lock().await;
        let due = last.is_none_or(|t| t.elapsed() >= self.min_refresh_interval);
        if due && needed() {
            *last = Some(Instant::now());
            if let Err(err) = self.refresh().await {
                tracing::warn!(error = %err, "signing key refresh failed");
            }
        }
    }

    /// Verifies a token with the keys at hand, without fetching.
    pub fn verify_with_current_keys(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        let keys = self.keys.load();
        let key = keys.keys.get(&kid).ok_or(AuthError::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|_| AuthError::Invalid)?;
        let now = self.clock.now().timestamp();
        if data.claims.exp <= now {
            return Err(AuthError::Expired);
        }
        if data.claims.nbf > now {
            return Err(AuthError::NotYetValid);
        }
        Caller::from_claims(data.claims)
    }

    /// Verifies a token, refreshing the keys first when they are older than
    /// the maximum key age, and once more (rate-limited) on an unknown `kid`.
    /// A failed refresh keeps the keys at hand.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        if self.keys_are_stale() {
            self.refresh_rate_limited(|| self.keys_are_stale()).await;
        }
        match self.verify_with_current_keys(token) {
            Err(AuthError::UnknownKey) if self.source.is_some() => {
                self.refresh_rate_limited(|| true).await;
                self.verify_with_current_keys(token)
            }
            other => other,
        }
    }
}

/// An Ed25519 signing key for access tokens.
pub struct AccessTokenSigner {
    kid: String,
    encoding: EncodingKey,
    public: [u8; 32],
}

impl fmt::Debug for AccessTokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AccessTokenSigner {
    /// Returns a signer from a 32-byte Ed25519 seed.
    pub fn from_seed(kid: impl Into<String>, seed: &[u8; 32]) -> anyhow::Result<Self> {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(seed);
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("pkcs8: {e}"))?;
        Ok(Self {
            kid: kid.into(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public: signing.verifying_key().to_bytes(),
        })
    }

    /// Returns a signer with a fresh random key and a random `kid`.
    pub fn generate() -> anyhow::Result<Self> {
        let seed: [u8; 32] = rand::random();
        Self::from_seed(Uuid::new_v4().simple().to_string(), &seed)
    }

    /// Returns the key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Returns the raw 32-byte public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// Returns a JWKS holding this key only.
    pub fn jwks_json(&self) -> String {
        jwks_json([(self.kid.as_str(), self.public.as_slice())])
    }

    /// Signs claims into a compact JWS with `alg: EdDSA` and this `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// Mints access tokens for tests and development, as identity would.
#[derive(Debug)]
pub struct TokenMinter {
    signer: AccessTokenSigner,
    clock: Clock,
}

impl TokenMinter {
    /// Returns a minter with a fresh key.
    pub fn new(clock: Clock) -> anyhow::Result<Self> {
        Ok(Self {
            signer: AccessTokenSigner::generate()?,
            clock,
        })
    }

    /// Returns the minter's signer (for its JWKS).
    pub fn signer(&self) -> &AccessTokenSigner {
        &self.signer
    }

    /// Returns claims for a principal valid for 15 minutes from now.
    pub fn claims(&self, principal: Principal) -> AccessClaims {
        let now = self.clock.now().timestamp();
        let (pid, bn, sid) = match principal {
            Principal::Person(id) => (Some(id.to_string()), None, Some(Uuid::new_v4().to_string())),
            Principal::Credential(_) => (None, Some("000000000".to_owned()), None),
        };
        AccessClaims {
            iss: ACCESS_TOKEN_ISSUER.to_owned(),
            aud: ACCESS_TOKEN_AUDIENCE.to_owned(),
            sub: principal.to_string(),
            exp: now + 900,
            nbf: now,
            iat: now,
            jti: Uuid::new_v4().to_string(),
            sid,
            pid,
            bn,
        }
    }

    /// Mints a token for a person with a profile.
    pub fn person(&self, id: Uuid) -> anyhow::Result<String> {
        self.signer.sign(&self.claims(Principal::Person(id)))
    }

    /// Mints a token for a machine credential of business `bn9`.
    pub fn credential(&self, id: Uuid, bn9: &str) -> anyhow::Result<String> {
        let mut claims = self.claims(Principal::Credential(id));
        claims.bn = Some(bn9.to_owned());
        self.signer.sign(&claims)
    }

    /// Signs arbitrary claims.
    pub fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        self.signer.sign(claims)
    }
}

/// What a service requires of every call.
#[derive(Clone)]
pub struct ServerAuth {
    internal: Arc<InternalTokens>,
    access: Option<Arc<AccessTokenVerifier>>,
}

impl fmt::Debug for ServerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAuth")
            .field("access", &self.access.is_some())
            .finish()
    }
}

impl ServerAuth {
    /// Internal facts services: an internal token and nothing else.
    pub fn internal_only(internal: Arc<InternalTokens>) -> Self {
        Self {
            internal,
            access: None,
        }
    }

    /// Public services: an internal token, plus the caller's access token when
    /// present (verified; handlers that need one call [`caller`]).
    pub fn with_access_tokens(
        internal: Arc<InternalTokens>,
        access: Arc<AccessTokenVerifier>,
    ) -> Self {
        Self {
            internal,
            access: Some(access),
        }
    }

    /// Wraps a generated server so that every call is authenticated first.
    pub fn wrap<S>(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            auth: self.clone(),
        }
    }

    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<(InternalClaims, Option<Caller>), AuthError> {
        let internal = headers
            .get(INTERNAL_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing("internal token"))?;
        let claims = self.internal.verify(internal)?;
        let caller = match (&self.access, bearer(headers)) {
            (Some(verifier), Some(token)) => Some(verifier.verify(token).await?),
            _ => None,
        };
        Ok((claims, caller))
    }
}

/// Returns the bearer token of an `authorization` header.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A generated server wrapped by [`ServerAuth::wrap`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: ServerAuth,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Take the service that was driven to readiness; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.authenticate(request.headers()).await {
                Ok((claims, caller)) => {
                    request.extensions_mut().insert(claims);
                    if let Some(caller) = caller {
                        request.extensions_mut().insert(caller);
                    }
                    inner.call(request).await
                }
                Err(err) => Ok(Status::from(err).into_http()),
            }
        })
    }
}
