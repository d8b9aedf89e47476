//! Access tokens: identity's Ed25519 keys as a JWKS, where verifiers fetch
//! them, the verifier, the signer and a minter for tests.

#[allow(clippy::wildcard_imports)]
use super::*;

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

impl KeySet {
    /// Parses a JWKS (jsonwebtoken's `JwkSet`), keeping its Ed25519
    /// (`OKP`/`Ed25519`) keys that have a `kid`.
    pub fn from_jwks_json(json: &str) -> Result<Self, anyhow::Error> {
        use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
        let jwks: JwkSet = serde_json::from_str(json)?;
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
                continue;
            };
            if okp.curve != EllipticCurve::Ed25519 {
                continue;
            }
            if let Some(kid) = &jwk.common.key_id {
                keys.insert(kid.clone(), DecodingKey::from_ed_components(&okp.x)?);
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
    /// Tokens verified already, until their `exp` (see [`Self::with_cache`]).
    verified: Option<moka::sync::Cache<Arc<str>, Arc<Caller>>>,
}

/// Expires a verified token's cache entry at the token's own `exp` (by `clock`).
pub struct UntilExp {
    /// The clock `exp` is compared with.
    pub clock: Clock,
}

impl moka::Expiry<Arc<str>, Arc<Caller>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Arc<Caller>,
        _at: std::time::Instant,
    ) -> Option<Duration> {
        Some(
            (value.expires_at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO),
        )
    }
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
            max_key_age: Duration::from_secs(60),
            fetched_at: ArcSwap::from_pointee(None),
            last_refresh: tokio::sync::Mutex::new(None),
            verified: None,
        }
    }

    /// Keeps up to `max_tokens` verified tokens until their `exp`, so that a
    /// caller's next call with the same token costs a lookup, not an Ed25519
    /// verification. A cached token is verified again once the key that
    /// signed it is withdrawn (gone from identity's published keys).
    pub fn with_cache(mut self, max_tokens: u64) -> Self {
        self.verified = (max_tokens > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_tokens)
                .expire_after(UntilExp {
                    clock: self.clock.clone(),
                })
                .build()
        });
        self
    }

    /// Fetches keys from `source` when a token names an unknown `kid`, at most
    /// once per `min_interval`, and when the keys at hand are older than the
    /// maximum key age (a minute unless [`Self::with_max_key_age`] says
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
        let mut caller = Caller::from_claims(data.claims)?;
        caller.key_id = kid;
        Ok(caller)
    }

    /// Returns true while the keys at hand include `kid`.
    pub fn has_key(&self, kid: &str) -> bool {
        self.keys.load().keys.contains_key(kid)
    }

    /// Verifies a token, refreshing the keys first when they are older than
    /// the maximum key age, and once more (rate-limited) on an unknown `kid`.
    /// A failed refresh keeps the keys at hand.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        if self.keys_are_stale() {
            self.refresh_rate_limited(|| self.keys_are_stale()).await;
        }
        if let Some(verified) = &self.verified
            && let Some(caller) = verified.get(token)
        {
            let now = self.clock.now();
            if caller.expires_at <= now {
                verified.invalidate(token);
                return Err(AuthError::Expired);
            }
            if self.has_key(&caller.key_id) {
                return Ok((*caller).clone());
            }
            // Its key was withdrawn: verify again (refused unless it is back).
            verified.invalidate(token);
        }
        let caller = match self.verify_with_current_keys(token) {
            Err(AuthError::UnknownKey) if self.source.is_some() => {
                self.refresh_rate_limited(|| true).await;
                self.verify_with_current_keys(token)
            }
            other => other,
        }?;
        if let Some(verified) = &self.verified {
            verified.insert(Arc::from(token), Arc::new(caller.clone()));
        }
        Ok(caller)
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
