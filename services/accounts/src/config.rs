//! The identity service's settings (`[accounts]` in the configuration).

use ccp_platform::config::{
    ConfigError, DatabaseSettings, ServerSettings, Validate, validate_endpoint,
};
use ccp_platform::context::CommonSettings;
use serde::Deserialize;

/// Settings of the identity service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AccountsSettings {
    /// The gRPC server (default `127.0.0.1:50052`).
    pub server: ServerSettings,
    /// The database (schema `identity` on PostgreSQL).
    pub database: DatabaseSettings,
    /// The identity service's endpoint (signing keys, profile and credential facts).
    pub identity_endpoint: String,
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
        }
    }
}

impl AccountsSettings {
    /// Checks the settings, naming keys under `identity.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate_at("accounts.server")?;
        self.database.validate_at("accounts.database")?;
        validate_endpoint("accounts.identity_endpoint", &self.identity_endpoint)
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
