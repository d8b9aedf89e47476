//! The identity service's settings (`[identity]` in the configuration).

use ccp_platform::config::{ConfigError, DatabaseSettings, ServerSettings, Validate};
use ccp_platform::context::CommonSettings;
use serde::Deserialize;

/// Settings of the identity service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IdentitySettings {
    /// The gRPC server (default `127.0.0.1:50051`).
    pub server: ServerSettings,
    /// The database (schema `identity` on PostgreSQL).
    pub database: DatabaseSettings,
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
        }
    }
}

impl IdentitySettings {
    /// Checks the settings, naming keys under `identity.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate_at("identity.server")?;
        self.database.validate_at("identity.database")
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
        self.identity.validate()
    }
}
