//! Verification of external ID tokens from the trusted OIDC issuers (R-ID-1),
//! and the built-in development issuer that mints them for named test users.
//!
//! A token is accepted only when its `iss` names a configured issuer, its
//! header names one of that issuer's asymmetric algorithms and a `kid` in the
//! issuer's JWKS (an unknown `kid` re-reads the JWKS once, rate-limited), its
//! signature verifies, its `aud` is the issuer's audience, and `exp`/`nbf`
//! hold against the service's clock with a small leeway.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine as _;
use ccp_platform::clock::Clock;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{
    DEFAULT_ISSUER_ALGORITHMS, DevIssuerSettings, IdentitySettings, TrustedIssuerSettings,
    asymmetric_algorithm,
};

/// Why an ID token was refused; every variant answers UNAUTHENTICATED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Not a well-formed compact JWS with a JSON payload.
    #[error("malformed id token")]
    Malformed,
    /// `iss` names no trusted issuer.
    #[error("untrusted issuer")]
    UntrustedIssuer,
    /// The algorithm is not one the issuer is trusted with.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The header has no `kid`, or names a key the issuer does not publish.
    #[error("unknown signing key")]
    UnknownKey,
    /// Signature or audience failed.
    #[error("invalid id token")]
    Invalid,
    /// Past `exp` (beyond the leeway).
    #[error("id token expired")]
    Expired,
    /// Before `nbf` (beyond the leeway).
    #[error("id token not yet valid")]
    NotYetValid,
}

/// A verified external identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The issuer's `iss`.
    pub issuer: String,
    /// The issuer's configured name.
    pub issuer_name: String,
    /// The subject (`sub`) at that issuer.
    pub subject: String,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct PeekClaims {
    iss: Option<String>,
}

/// Where an issuer's JWKS comes from.
#[derive(Debug, Clone)]
enum JwksSource {
    File(PathBuf),
    Url(String),
    Fixed(String),
}

impl JwksSource {
    async fn fetch(&self) -> anyhow::Result<String> {
        match self {
            Self::File(path) => Ok(tokio::fs::read_to_string(path).await?),
            Self::Url(url) => {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()?;
                Ok(client
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?)
            }
            Self::Fixed(json) => Ok(json.clone()),
        }
    }
}

struct IssuerKey {
    key: DecodingKey,
    alg: Option<Algorithm>,
}

struct TrustedIssuer {
    name: String,
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    source: JwksSource,
    keys: ArcSwap<HashMap<String, Arc<IssuerKey>>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

fn parse_jwks(json: &str) -> anyhow::Result<HashMap<String, Arc<IssuerKey>>> {
    let set: JwkSet = serde_json::from_str(json)?;
    let mut keys = HashMap::new();
    for jwk in set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        // Symmetric keys in a JWKS are never trusted for ID tokens.
        if matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
        ) {
            continue;
        }
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => {
                keys.insert(kid, Arc::new(IssuerKey { key, alg }));
            }
            Err(err) => tracing::warn!(kid = %kid, error = %err, "skipping an unusable jwk"),
        }
    }
    Ok(keys)
}

impl TrustedIssuer {
    async fn refresh(&self) -> anyhow::Result<()> {
        let json = self.source.fetch().await?;
        self.keys.store(Arc::new(parse_jwks(&json)?));
        Ok(())
    }

    async fn key(&self, kid: &str) -> Option<Arc<IssuerKey>> {
        if let Some(key) = self.keys.load().get(kid) {
            return Some(key.clone());
        }
        let mut last = self.last_refresh.lock().await;
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            if let Err(err) = self.refresh().await {
                tracing::warn!(issuer = %self.name, error = %err, "jwks refresh failed");
            }
        }
        drop(last);
        self.keys.load().get(kid).cloned()
    }
}

/// The trusted issuers of this deployment.
pub struct TrustedIssuers {
    issuers: Vec<TrustedIssuer>,
    leeway: i64,
    clock: Clock,
}

impl std::fmt::Debug for TrustedIssuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedIssuers")
            .field(
                "issuers",
                &self.issuers.iter().map(|i| &i.issuer).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TrustedIssuers {
    /// Builds the issuers from settings (and the development issuer, when
    /// given), loading each JWKS once; a JWKS that cannot be loaded yet is
    /// retried on the first token naming it.
    pub async fn from_settings(
        settings: &IdentitySettings,
        dev: Option<&DevIssuer>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let mut issuers = Vec::new();
        for s in &settings.issuers {
            issuers.push(Self::issuer_from(s)?);
        }
        if let Some(dev) = dev {
            issuers.push(TrustedIssuer {
                name: "development".to_owned(),
                issuer: dev.issuer.clone(),
                audience: dev.audience.clone(),
                algorithms: vec![Algorithm::EdDSA],
                source: JwksSource::Fixed(dev.jwks_json()),
                keys: ArcSwap::from_pointee(HashMap::new()),
                last_refresh: tokio::sync::Mutex::new(None),
            });
        }
        for issuer in &issuers {
            if let Err(err) = issuer.refresh().await {
                tracing::warn!(issuer = %issuer.name, error = %err, "jwks not loaded at start; will retry");
            }
        }
        Ok(Self {
            issuers,
            leeway: i64::try_from(settings.id_token_leeway_secs).unwrap_or(60),
            clock,
        })
    }

    fn issuer_from(s: &TrustedIssuerSettings) -> anyhow::Result<TrustedIssuer> {
        let names: Vec<String> = if s.algorithms.is_empty() {
            DEFAULT_ISSUER_ALGORITHMS
                .iter()
                .map(|a| (*a).to_owned())
                .collect()
        } else {
            s.algorithms.clone()
        };
        let algorithms = names
            .iter()
            .map(|n| {
                asymmetric_algorithm(n)
                    .ok_or_else(|| anyhow::anyhow!("`{n}` is not an asymmetric algorithm"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let source = match (&s.jwks_file, &s.jwks_url) {
            (Some(file), _) => JwksSource::File(file.clone()),
            (None, Some(url)) => JwksSource::Url(url.clone()),
            (None, None) => anyhow::bail!("issuer {} has no jwks_file or jwks_url", s.name),
        };
        Ok(TrustedIssuer {
            name: s.name.clone(),
            issuer: s.issuer.clone(),
            audience: s.audience.clone(),
            algorithms,
            source,
            keys: ArcSwap::from_pointee(HashMap::new()),
            last_refresh: tokio::sync::Mutex::new(None),
        })
    }

    /// Returns how many issuers are trusted.
    pub fn len(&self) -> usize {
        self.issuers.len()
    }

    /// Returns true when no issuer is trusted (nobody can sign in).
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Verifies an external ID token and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<ExternalIdentity, IdTokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
        // Pick the issuer by the (unverified) `iss`; everything is verified below.
        let peek: PeekClaims = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| IdTokenError::Malformed)?;
        let iss = peek.iss.ok_or(IdTokenError::UntrustedIssuer)?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or(IdTokenError::UntrustedIssuer)?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(IdTokenError::AlgorithmNotAllowed);
        }
        let kid = header.kid.as_deref().ok_or(IdTokenError::UnknownKey)?;
        let key = issuer.key(kid).await.ok_or(IdTokenError::UnknownKey)?;
        if key.alg.is_some_and(|a| a != header.alg) {
            return Err(IdTokenError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[issuer.issuer.as_str()]);
        validation.set_audience(&[issuer.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<IdClaims>(token, &key.key, &validation)
            .map_err(|_| IdTokenError::Invalid)?;
        let claims = data.claims;
        let now = self.clock.now().timestamp();
        if claims.exp + self.leeway <= now {
            return Err(IdTokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf - self.leeway > now) {
            return Err(IdTokenError::NotYetValid);
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 || claims.iss != issuer.issuer {
            return Err(IdTokenError::Invalid);
        }
        Ok(ExternalIdentity {
            issuer: issuer.issuer.clone(),
            issuer_name: issuer.name.clone(),
            subject: claims.sub,
        })
    }
}

/// The development issuer: an Ed25519 key that mints ID tokens for named test users.
pub struct DevIssuer {
    issuer: String,
    audience: String,
    kid: String,
    encoding: EncodingKey,
    public: [u8; 32],
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct DevClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    exp: i64,
    nbf: i64,
    iat: i64,
    name: &'a str,
}

impl DevIssuer {
    /// Returns the development issuer of these settings: its key from
    /// `dev_issuer.key`, or else from `<data_dir>/dev-issuer.key` (created on
    /// first use). Fails when neither is available.
    pub fn from_settings(
        settings: &DevIssuerSettings,
        data_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let configured = secrecy::ExposeSecret::expose_secret(&settings.key).to_owned();
        let text = if !configured.is_empty() {
            configured
        } else if let Some(dir) = data_dir {
            crate::secrets::read_or_create_key_file(
                &crate::secrets::dev_issuer_key_file(dir),
                || {
                    let seed: [u8; 32] = rand::random();
                    base64::engine::general_purpose::STANDARD.encode(seed)
                },
            )?
        } else {
            anyhow::bail!(
                "the development issuer needs identity.dev_issuer.key or identity.data_dir"
            );
        };
        let seed: [u8; 32] = crate::secrets::decode_base64(&text)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                anyhow::anyhow!("the development issuer key must be base64 of 32 bytes")
            })?;
        Self::from_seed(&settings.issuer, &settings.audience, &seed)
    }

    /// Returns an issuer signing with the Ed25519 `seed`.
    pub fn from_seed(issuer: &str, audience: &str, seed: &[u8; 32]) -> anyhow::Result<Self> {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(seed);
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("pkcs8: {e}"))?;
        let public = signing.verifying_key().to_bytes();
        let kid = format!(
            "dev-{}",
            &crate::secrets::refresh_token_hash(&hex::encode(public))[..12]
        );
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            kid,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public,
        })
    }

    /// Returns the issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Returns the JWKS publishing its public key.
    pub fn jwks_json(&self) -> String {
        ccp_platform::auth::jwks_json([(self.kid.as_str(), self.public.as_slice())])
    }

    /// Mints an ID token for test user `user` (the subject), valid from `now` for `ttl`.
    pub fn mint(&self, user: &str, now: DateTime<Utc>, ttl: Duration) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let claims = DevClaims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: user,
            exp: now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(300),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            name: user,
        };
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}
