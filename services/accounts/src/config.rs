//! The accounts service's settings (`[accounts]` in the configuration).

use ccp_platform::config::{ConfigError, DatabaseSettings, ServerSettings, Validate};
use ccp_platform::context::CommonSettings;
use serde::Deserialize;

/// The compiled-in Terms & Conditions version.
pub const DEFAULT_TERMS_VERSION: &str = "2026-01";

/// The compiled-in English Terms & Conditions.
pub const DEFAULT_TERMS_EN: &str = "CARM Client Portal — Terms and Conditions (2026-01). \
By registering a business you confirm that you are authorized to act for it, that you are its \
Business Account Manager, and that you are responsible for the access you delegate to employees \
and to third-party service providers such as customs brokers, including the program accounts, \
roles, expiry and visibility rules you grant them.";

/// The compiled-in French Terms & Conditions.
pub const DEFAULT_TERMS_FR: &str = "Portail client de la GCRA — Conditions générales (2026-01). \
En inscrivant une entreprise, vous confirmez être autorisé à agir en son nom, en être le \
gestionnaire du compte d'entreprise et être responsable des accès que vous déléguez aux employés \
et aux fournisseurs de services tiers tels que les courtiers en douane, y compris les comptes de \
programme, les rôles, l'expiration et les règles de visibilité que vous leur accordez.";

/// Settings of the accounts service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AccountsSettings {
    /// The gRPC server (default `127.0.0.1:50052`).
    pub server: ServerSettings,
    /// The database (schema `accounts` on PostgreSQL).
    pub database: DatabaseSettings,
    /// The identity service's endpoint (signing keys, profile and credential facts).
    pub identity_endpoint: String,
    /// Identity's internal facts endpoint (its `server.internal_listen`);
    /// empty: `identity_endpoint`.
    pub identity_facts_endpoint: String,
    /// Days a pending employee request waits before it expires (default 30, R-AC-3).
    pub employee_request_ttl_days: u32,
    /// Seconds between sweeps that expire pending employee requests (default 60).
    pub expiry_sweep_interval_secs: u64,
    /// Failed registration attempts by one person on one BN within 24 h that
    /// lock that person's registration of that BN (default 5, R-AC-2).
    pub registration_max_failures: u32,
    /// Failed registration attempts by one person on any BNs within 24 h that
    /// lock all of that person's registrations (default 20, R-AC-2; against
    /// enumeration).
    pub registration_max_failures_per_person: u32,
    /// Hours a registration lock lasts (default 24).
    pub registration_lock_hours: u32,
    /// The current Terms & Conditions version (default `2026-01`).
    pub terms_version: String,
    /// The English T&C text; empty for the compiled-in text.
    pub terms_text_en: String,
    /// The French T&C text; empty for the compiled-in text.
    pub terms_text_fr: String,
}

impl Default for AccountsSettings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                listen: "127.0.0.1:50052".to_owned(),
                ..ServerSettings::default()
            },
            database: DatabaseSettings {
                schema: Some("accounts".to_owned()),
                ..DatabaseSettings::default()
            },
            identity_endpoint: "http://127.0.0.1:50051".to_owned(),
            identity_facts_endpoint: String::new(),
            employee_request_ttl_days: 30,
            expiry_sweep_interval_secs: 60,
            registration_max_failures: 5,
            registration_max_failures_per_person: 20,
            registration_lock_hours: 24,
            terms_version: DEFAULT_TERMS_VERSION.to_owned(),
            terms_text_en: String::new(),
            terms_text_fr: String::new(),
        }
    }
}

impl AccountsSettings {
    /// Checks the settings, naming keys under `accounts.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate_at("accounts.server")?;
        self.database.validate_at("accounts.database")?;
        ccp_platform::balance::validate_upstream(
            "accounts.identity_endpoint",
            &self.identity_endpoint,
        )?;
        if !self.identity_facts_endpoint.is_empty() {
            ccp_platform::balance::validate_upstream(
                "accounts.identity_facts_endpoint",
                &self.identity_facts_endpoint,
            )?;
        }
        if self.employee_request_ttl_days == 0 {
            return Err(ConfigError::new(
                "accounts.employee_request_ttl_days",
                "must be at least 1",
            ));
        }
        if self.expiry_sweep_interval_secs == 0 {
            return Err(ConfigError::new(
                "accounts.expiry_sweep_interval_secs",
                "must be at least 1",
            ));
        }
        if self.registration_max_failures == 0 {
            return Err(ConfigError::new(
                "accounts.registration_max_failures",
                "must be at least 1",
            ));
        }
        if self.registration_max_failures_per_person == 0 {
            return Err(ConfigError::new(
                "accounts.registration_max_failures_per_person",
                "must be at least 1",
            ));
        }
        if self.registration_lock_hours == 0 {
            return Err(ConfigError::new(
                "accounts.registration_lock_hours",
                "must be at least 1",
            ));
        }
        if self.terms_version.trim().is_empty() {
            return Err(ConfigError::new(
                "accounts.terms_version",
                "must not be empty",
            ));
        }
        Ok(())
    }

    /// Returns the English T&C text (configured, or compiled in).
    pub fn terms_en(&self) -> &str {
        if self.terms_text_en.is_empty() {
            DEFAULT_TERMS_EN
        } else {
            &self.terms_text_en
        }
    }

    /// Returns the French T&C text (configured, or compiled in).
    pub fn terms_fr(&self) -> &str {
        if self.terms_text_fr.is_empty() {
            DEFAULT_TERMS_FR
        } else {
            &self.terms_text_fr
        }
    }
}

/// The configuration of the `ccp-accounts` binary: the shared sections and `[accounts]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Shared sections (environment, telemetry, internal_auth, redis, clock).
    #[serde(flatten)]
    pub common: CommonSettings,
    /// This service.
    pub accounts: AccountsSettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        self.accounts.validate()
    }
}

impl AccountsSettings {
    /// Returns where identity's facts API is served: `identity_facts_endpoint`, else `identity_endpoint`.
    pub fn identity_facts(&self) -> &str {
        if self.identity_facts_endpoint.is_empty() {
            &self.identity_endpoint
        } else {
            &self.identity_facts_endpoint
        }
    }
}
