//! Internal tokens: HMAC-SHA256 tokens that prove a call came from the
//! gateway, another service or a platform team, their minting cache and the
//! client interceptor that adds them.

#[allow(clippy::wildcard_imports)]
use super::*;

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
    pages: crate::paging::PageKey,
    /// Tokens verified already, with their claims: every call of a caller
    /// carries the same token for half its life, and checking its HMAC and
    /// parsing its JSON again cost more than the lookup. Only verified tokens
    /// go in (nobody without the key can fill it), each at most its lifetime,
    /// and a hit still checks `exp` against the clock.
    verified: moka::sync::Cache<Arc<str>, Arc<InternalClaims>>,
}

/// The most verified internal tokens kept (a few per caller process).
const VERIFIED_TOKENS: u64 = 10_000;

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
            pages: crate::paging::PageKey::derive(key),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_live(ttl.max(Duration::from_secs(1)))
                .build(),
        }
    }

    /// Returns the key page tokens are signed with, derived from the same
    /// internal key (`ccp_platform::paging::PageScope`).
    pub fn page_key(&self) -> &crate::paging::PageKey {
        &self.pages
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
        self.verified(token).map(|claims| (*claims).clone())
    }

    /// Returns whether [`Self::verify`] accepts `token`, without copying its claims.
    pub fn accepts(&self, token: &str) -> bool {
        self.verified(token).is_ok()
    }

    fn verified(&self, token: &str) -> Result<Arc<InternalClaims>, AuthError> {
        let now = self.clock.now().timestamp();
        if let Some(claims) = self.verified.get(token) {
            if claims.exp <= now {
                return Err(AuthError::Expired);
            }
            return Ok(claims);
        }
        let data = jsonwebtoken::decode::<InternalClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::Invalid)?;
        if data.claims.exp <= now {
            return Err(AuthError::Expired);
        }
        let claims = Arc::new(data.claims);
        self.verified.insert(Arc::from(token), Arc::clone(&claims));
        Ok(claims)
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
