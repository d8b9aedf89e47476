//! The gateway's settings (`[gateway]` in the configuration).

use ccp_platform::config::{ConfigError, ServerSettings, Validate, validate_endpoint};
use ccp_platform::context::CommonSettings;
use serde::Deserialize;

/// Settings of the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// The gRPC server (default `127.0.0.1:50050`): the endpoint users call.
    pub server: ServerSettings,
    /// The identity service's endpoint.
    pub identity_endpoint: String,
    /// The accounts service's endpoint.
    pub accounts_endpoint: String,
    /// The delegation service's endpoint.
    pub delegation_endpoint: String,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                listen: "127.0.0.1:50050".to_owned(),
                ..ServerSettings::default()
            },
            identity_endpoint: "http://127.0.0.1:50051".to_owned(),
            accounts_endpoint: "http://127.0.0.1:50052".to_owned(),
            delegation_endpoint: "http://127.0.0.1:50053".to_owned(),
        }
    }
}

impl GatewaySettings {
    /// Checks the settings, naming keys under `gateway.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate_at("gateway.server")?;
        validate_endpoint("gateway.identity_endpoint", &self.identity_endpoint)?;
        validate_endpoint("gateway.accounts_endpoint", &self.accounts_endpoint)?;
        validate_endpoint("gateway.delegation_endpoint", &self.delegation_endpoint)
    }
}

/// The configuration of the `ccp-gateway` binary: the shared sections and `[gateway]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Shared sections (environment, telemetry, internal_auth, redis, clock).
    #[serde(flatten)]
    pub common: CommonSettings,
    /// The gateway.
    pub gateway: GatewaySettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        self.gateway.validate()
    }
}
