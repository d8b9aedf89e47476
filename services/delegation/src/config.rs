//! The delegation service's settings (`[delegation]` in the configuration).

use ccp_platform::config::{ConfigError, DatabaseSettings, ServerSettings, Validate};
use ccp_platform::context::CommonSettings;
use serde::Deserialize;

/// Settings of the delegation service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DelegationSettings {
    /// The gRPC server (default `127.0.0.1:50053`).
    pub server: ServerSettings,
    /// The database (schema `delegation` on PostgreSQL).
    pub database: DatabaseSettings,
    /// The identity service's endpoint (signing keys, profile and credential facts).
    pub identity_endpoint: String,
    /// The accounts service's endpoint (business and role facts).
    pub accounts_endpoint: String,
    /// Accounts' internal facts endpoint (its `server.internal_listen`);
    /// empty: `accounts_endpoint`.
    pub accounts_facts_endpoint: String,
    /// Days a visible relationship request stays pending before it expires (default 30).
    pub pending_request_days: i64,
    /// The furthest a relationship's expiry may be set, in days after the
    /// approval or change (default 730, two years).
    pub max_relationship_days: i64,
    /// How often the sweep records expired requests and relationships and
    /// emits due reminders, in milliseconds (default 60000).
    pub sweep_interval_ms: u64,
    /// How long the sweep lease lasts, in milliseconds (default 180000): one
    /// replica sweeps at a time, renewing it; when it dies another takes the
    /// sweep over within this bound (plus one interval).
    pub sweep_lease_ms: u64,
}

impl Default for DelegationSettings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                listen: "127.0.0.1:50053".to_owned(),
                ..ServerSettings::default()
            },
            database: DatabaseSettings {
                schema: Some("delegation".to_owned()),
                ..DatabaseSettings::default()
            },
            identity_endpoint: "http://127.0.0.1:50051".to_owned(),
            accounts_endpoint: "http://127.0.0.1:50052".to_owned(),
            accounts_facts_endpoint: String::new(),
            pending_request_days: 30,
            max_relationship_days: 730,
            sweep_interval_ms: 60_000,
            sweep_lease_ms: 180_000,
        }
    }
}

impl DelegationSettings {
    /// Checks the settings, naming keys under `delegation.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate_at("delegation.server")?;
        if !(1..=3650).contains(&self.pending_request_days) {
            return Err(ConfigError::new(
                "delegation.pending_request_days",
                "must be 1–3650",
            ));
        }
        if !(1..=36500).contains(&self.max_relationship_days) {
            return Err(ConfigError::new(
                "delegation.max_relationship_days",
                "must be 1–36500",
            ));
        }
        if self.sweep_interval_ms < 10 {
            return Err(ConfigError::new(
                "delegation.sweep_interval_ms",
                "must be at least 10",
            ));
        }
        if !(1_000..=86_400_000).contains(&self.sweep_lease_ms) {
            return Err(ConfigError::new(
                "delegation.sweep_lease_ms",
                "must be 1000–86400000",
            ));
        }
        self.database.validate_at("delegation.database")?;
        ccp_platform::balance::validate_upstream(
            "delegation.identity_endpoint",
            &self.identity_endpoint,
        )?;
        if !self.accounts_facts_endpoint.is_empty() {
            ccp_platform::balance::validate_upstream(
                "delegation.accounts_facts_endpoint",
                &self.accounts_facts_endpoint,
            )?;
        }
        ccp_platform::balance::validate_upstream(
            "delegation.accounts_endpoint",
            &self.accounts_endpoint,
        )
    }
}

impl DelegationSettings {
    /// Returns where accounts' facts API is served: `accounts_facts_endpoint`, else `accounts_endpoint`.
    pub fn accounts_facts(&self) -> &str {
        if self.accounts_facts_endpoint.is_empty() {
            &self.accounts_endpoint
        } else {
            &self.accounts_facts_endpoint
        }
    }
}

/// The configuration of the `ccp-delegation` binary: the shared sections and `[delegation]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Shared sections (environment, telemetry, internal_auth, redis, clock).
    #[serde(flatten)]
    pub common: CommonSettings,
    /// This service.
    pub delegation: DelegationSettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        self.delegation.validate()
    }
}
