//! The identity service's settings (`[identity]` in the configuration).

use std::path::PathBuf;

use ccp_platform::config::{ConfigError, DatabaseSettings, Environment, ServerSettings, Validate};
use ccp_platform::context::CommonSettings;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

/// The longest access-token lifetime allowed (R-ID-3: at most 15 minutes).
pub const MAX_ACCESS_TOKEN_TTL_SECS: u64 = 900;

/// Settings of the identity service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IdentitySettings {
    /// The gRPC server (default `127.0.0.1:50051`).
    pub server: ServerSettings,
    /// The database (schema `identity` on PostgreSQL).
    pub database: DatabaseSettings,
    /// A directory for files the embedded mode keeps (the development issuer's
    /// key, the key-encryption key); `ccp up` fills it from `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// The trusted OIDC issuers people sign in through (GCKey, a Sign-in Partner).
    pub issuers: Vec<TrustedIssuerSettings>,
    /// The built-in development issuer (off unless enabled).
    pub dev_issuer: DevIssuerSettings,
    /// Base64 of 32 bytes: encrypts the signing keys' private halves at rest
    /// (AES-256-GCM). Required in production; elsewhere, when empty, a key kept
    /// in `<data_dir>/identity-kek.key` is used (created on first use).
    pub key_encryption_key: SecretString,
    /// Lifetime of access tokens in seconds (at most 900).
    pub access_token_ttl_secs: u64,
    /// Lifetime of a session family (its refresh tokens) in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Clock skew tolerated on external ID tokens' `exp` and `nbf`, in seconds.
    pub id_token_leeway_secs: u64,
    /// Machine credentials: secret hashing and bad-secret throttling.
    pub machine_credentials: MachineCredentialSettings,
    /// How often the sweep emits the reminders of machine credentials expiring within 30 days,
    /// in milliseconds (default 60000). Every replica sweeps; each reminder is emitted once.
    pub sweep_interval_ms: u64,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                listen: "127.0.0.1:50051".to_owned(),
                ..ServerSettings::default()
            },
            database: DatabaseSettings {
                schema: Some("identity".to_owned()),
                ..DatabaseSettings::default()
            },
            data_dir: None,
            issuers: Vec::new(),
            dev_issuer: DevIssuerSettings::default(),
            key_encryption_key: SecretString::from(""),
            access_token_ttl_secs: MAX_ACCESS_TOKEN_TTL_SECS,
            refresh_token_ttl_secs: 12 * 3600,
            id_token_leeway_secs: 60,
            machine_credentials: MachineCredentialSettings::default(),
            sweep_interval_ms: 60_000,
        }
    }
}

/// One trusted OIDC issuer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TrustedIssuerSettings {
    /// A short name for logs and audit, e.g. `gckey`.
    pub name: String,
    /// The issuer URL that ID tokens carry in `iss`.
    pub issuer: String,
    /// The audience ID tokens must carry in `aud` (this portal's client id).
    pub audience: String,
    /// A file holding the issuer's JWKS (re-read on an unknown `kid`).
    pub jwks_file: Option<PathBuf>,
    /// A URL serving the issuer's JWKS (fetched at start and on an unknown `kid`).
    pub jwks_url: Option<String>,
    /// The asymmetric JWS algorithms accepted from this issuer
    /// (default `RS256`, `ES256`, `EdDSA`); HMAC and `none` are refused.
    pub algorithms: Vec<String>,
}

/// The built-in development issuer (R-ID-1): lets `ccp dev-token` mint sign-in
/// tokens for named test users. Never enable it in production.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DevIssuerSettings {
    /// On when true; `ccp up` turns it on unless the configuration says false.
    pub enabled: Option<bool>,
    /// The `iss` of its tokens.
    pub issuer: String,
    /// The `aud` of its tokens.
    pub audience: String,
    /// Base64 of its 32-byte Ed25519 seed; when empty, the key in
    /// `<data_dir>/dev-issuer.key` is used (created on first use).
    pub key: SecretString,
}

impl Default for DevIssuerSettings {
    fn default() -> Self {
        Self {
            enabled: None,
            issuer: "urn:ccp:dev-issuer".to_owned(),
            audience: "ccp".to_owned(),
            key: SecretString::from(""),
        }
    }
}

impl DevIssuerSettings {
    /// Returns true when the development issuer is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled == Some(true)
    }
}

/// Machine-credential settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MachineCredentialSettings {
    /// argon2id memory cost in KiB (default 19456, OWASP's minimum).
    pub argon2_memory_kib: u32,
    /// argon2id iterations (default 2).
    pub argon2_iterations: u32,
    /// Bad secrets for one client id within the window before answers are slowed.
    pub slowdown_after: u32,
    /// The delay added to the first slowed answer, in milliseconds; it doubles
    /// with each further bad secret, up to 5 seconds.
    pub slowdown_ms: u64,
    /// Bad secrets for one client id within the window that lock it.
    pub lockout_after: u32,
    /// How long a lock lasts, in seconds.
    pub lockout_secs: u64,
    /// The window bad secrets are counted in, in seconds.
    pub failure_window_secs: u64,
}

impl Default for MachineCredentialSettings {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            slowdown_after: 3,
            slowdown_ms: 250,
            lockout_after: 10,
            lockout_secs: 900,
            failure_window_secs: 900,
        }
    }
}

/// The algorithms accepted when an issuer names none.
pub const DEFAULT_ISSUER_ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// Returns the JWS algorithm named `name` if it is asymmetric.
pub fn asymmetric_algorithm(name: &str) -> Option<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm::*;
    let alg: jsonwebtoken::Algorithm = name.parse().ok()?;
    matches!(
        alg,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | EdDSA
    )
    .then_some(alg)
}

impl IdentitySettings {
    /// Checks the settings, naming keys under `identity.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate_at("identity.server")?;
        self.database.validate_at("identity.database")?;
        if self.access_token_ttl_secs == 0 || self.access_token_ttl_secs > MAX_ACCESS_TOKEN_TTL_SECS
        {
            return Err(ConfigError::new(
                "identity.access_token_ttl_secs",
                "must be 1–900 (access tokens live at most 15 minutes)",
            ));
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            return Err(ConfigError::new(
                "identity.refresh_token_ttl_secs",
                "must be at least access_token_ttl_secs",
            ));
        }
        if self.sweep_interval_ms < 10 {
            return Err(ConfigError::new(
                "identity.sweep_interval_ms",
                "must be at least 10",
            ));
        }
        if self.id_token_leeway_secs > 300 {
            return Err(ConfigError::new(
                "identity.id_token_leeway_secs",
                "must be at most 300",
            ));
        }
        for (i, issuer) in self.issuers.iter().enumerate() {
            let key = |k: &str| format!("identity.issuers.{i}.{k}");
            if issuer.name.trim().is_empty() {
                return Err(ConfigError::new(key("name"), "must not be empty"));
            }
            if issuer.issuer.trim().is_empty() {
                return Err(ConfigError::new(key("issuer"), "must not be empty"));
            }
            if issuer.audience.trim().is_empty() {
                return Err(ConfigError::new(key("audience"), "must not be empty"));
            }
            match (&issuer.jwks_file, &issuer.jwks_url) {
                (None, None) | (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        key("jwks_file"),
                        "set exactly one of jwks_file and jwks_url",
                    ));
                }
                (None, Some(url)) => {
                    ccp_platform::config::validate_endpoint(&key("jwks_url"), url)?;
                }
                (Some(_), None) => {}
            }
            for alg in &issuer.algorithms {
                if asymmetric_algorithm(alg).is_none() {
                    return Err(ConfigError::new(
                        key("algorithms"),
                        format!("`{alg}` is not an asymmetric JWS algorithm"),
                    ));
                }
            }
            if self.issuers[..i].iter().any(|o| o.issuer == issuer.issuer) {
                return Err(ConfigError::new(key("issuer"), "configured twice"));
            }
        }
        if self.dev_issuer.is_enabled() && self.dev_issuer.issuer.trim().is_empty() {
            return Err(ConfigError::new(
                "identity.dev_issuer.issuer",
                "must not be empty",
            ));
        }
        if !self.key_encryption_key.expose_secret().is_empty() {
            crate::secrets::KeyEncryptionKey::parse(self.key_encryption_key.expose_secret())
                .map_err(|e| ConfigError::new("identity.key_encryption_key", e.to_string()))?;
        }
        let m = &self.machine_credentials;
        if m.argon2_memory_kib < 8 || m.argon2_iterations == 0 {
            return Err(ConfigError::new(
                "identity.machine_credentials.argon2_memory_kib",
                "argon2 memory must be at least 8 KiB and iterations at least 1",
            ));
        }
        if m.lockout_after == 0 || m.lockout_secs == 0 || m.failure_window_secs == 0 {
            return Err(ConfigError::new(
                "identity.machine_credentials.lockout_after",
                "lockout_after, lockout_secs and failure_window_secs must be > 0",
            ));
        }
        Ok(())
    }

    /// Checks what the environment demands: production needs a configured
    /// key-encryption key and refuses the development issuer.
    pub fn validate_for(&self, environment: Environment) -> Result<(), ConfigError> {
        if environment == Environment::Production {
            if self.key_encryption_key.expose_secret().is_empty() {
                return Err(ConfigError::new(
                    "identity.key_encryption_key",
                    "required in production",
                ));
            }
            if self.dev_issuer.is_enabled() {
                return Err(ConfigError::new(
                    "identity.dev_issuer.enabled",
                    "the development issuer is refused in production",
                ));
            }
        }
        Ok(())
    }
}

/// The configuration of the `ccp-identity` binary: the shared sections and `[identity]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Shared sections (environment, telemetry, internal_auth, redis, clock).
    #[serde(flatten)]
    pub common: CommonSettings,
    /// This service.
    pub identity: IdentitySettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        self.identity.validate()?;
        self.identity.validate_for(self.common.environment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TrustedIssuerSettings {
        TrustedIssuerSettings {
            name: "gckey".into(),
            issuer: "https://idp.example".into(),
            audience: "ccp".into(),
            jwks_file: Some("/nonexistent/jwks.json".into()),
            jwks_url: None,
            algorithms: vec![],
        }
    }

    fn key_of(s: &IdentitySettings) -> Option<String> {
        let mut s = s.clone();
        s.database.url = SecretString::from("sqlite::memory:");
        s.validate().err().map(|e| e.key)
    }

    #[test]
    fn access_tokens_live_at_most_fifteen_minutes() {
        let mut s = IdentitySettings::default();
        assert_eq!(key_of(&s), None);
        s.access_token_ttl_secs = 901;
        assert_eq!(
            key_of(&s).as_deref(),
            Some("identity.access_token_ttl_secs")
        );
    }

    #[test]
    fn issuers_take_only_asymmetric_algorithms_and_one_jwks_source() {
        let mut s = IdentitySettings {
            issuers: vec![issuer()],
            ..IdentitySettings::default()
        };
        assert_eq!(key_of(&s), None);
        s.issuers[0].algorithms = vec!["HS256".into()];
        assert_eq!(key_of(&s).as_deref(), Some("identity.issuers.0.algorithms"));
        s.issuers[0].algorithms = vec!["none".into()];
        assert_eq!(key_of(&s).as_deref(), Some("identity.issuers.0.algorithms"));
        s.issuers[0].algorithms = vec!["ES256".into()];
        s.issuers[0].jwks_url = Some("https://idp.example/jwks".into());
        assert_eq!(key_of(&s).as_deref(), Some("identity.issuers.0.jwks_file"));
    }

    #[test]
    fn production_needs_a_key_encryption_key_and_refuses_the_development_issuer() {
        let mut s = IdentitySettings::default();
        let key =
            |s: &IdentitySettings| s.validate_for(Environment::Production).err().map(|e| e.key);
        assert_eq!(key(&s).as_deref(), Some("identity.key_encryption_key"));
        s.key_encryption_key =
            SecretString::from(crate::secrets::KeyEncryptionKey::generate().to_base64());
        assert_eq!(key(&s), None);
        s.dev_issuer.enabled = Some(true);
        assert_eq!(key(&s).as_deref(), Some("identity.dev_issuer.enabled"));
        assert!(s.validate_for(Environment::Development).is_ok());
    }
}
