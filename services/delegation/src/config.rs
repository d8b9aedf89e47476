//! The identity service's settings (`[delegation]` in the configuration).

use ccp_platform::config::{
    ConfigError, DatabaseSettings, ServerSettings, Validate, validate_endpoint,
};
use ccp_platform::context::CommonSettings;
use serde::Deserialize;

/// Settings of the identity service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DelegationSettings {
    /// The gRPC server (default `127.0.0.1:50053`).
    pub server: ServerSettings,
    /// The database (schema `identity` on PostgreSQL).
    pub database: DatabaseSettings,
    /// The identity service's endpoint (signing keys, profile and credential facts).
    pub identity_endpoint: String,
    /// The accounts service's endpoint (business and role facts).
    pub accounts_endpoint: String,
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
        }
    }
}

impl DelegationSettings {
    /// Checks the settings, naming keys under `identity.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate_at("delegation.server")?;
        self.database.validate_at("delegation.database")?;
        validate_endpoint("delegation.identity_endpoint", &self.identity_endpoint)?;
        validate_endpoint("delegation.accounts_endpoint", &self.accounts_endpoint)
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
