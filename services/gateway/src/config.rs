//! The gateway's settings (`[gateway]` in the configuration).

use ccp_platform::config::{ConfigError, ServerSettings, Validate};
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
    /// Identity's internal facts endpoint (revocations); empty: `identity_endpoint`.
    pub identity_facts_endpoint: String,
    /// Accounts' internal facts endpoint; empty: `accounts_endpoint`.
    pub accounts_facts_endpoint: String,
    /// Delegation's internal facts endpoint; empty: `delegation_endpoint`.
    pub delegation_facts_endpoint: String,
    /// Longest life of a cached fact, in seconds (events evict sooner; entries
    /// holding a relationship never outlive its end).
    pub facts_ttl_secs: u64,
    /// Most facts entries kept in process.
    pub facts_local_entries: u64,
    /// Most verified access tokens kept in process (each until its `exp`).
    pub token_cache_entries: u64,
    /// Shortest interval between two signing-key fetches on an unknown `kid`, in ms.
    pub key_refresh_interval_ms: u64,
    /// How long fetched signing keys are trusted before they are fetched
    /// again, in ms: a key identity withdraws stops verifying within this
    /// bound (at most 60 s; cached tokens signed with it are dropped).
    pub key_max_age_ms: u64,
    /// How often identity's revocations are polled while the event bus cannot
    /// vouch for them (down, or not yet confirmed after a reconnect), in ms (R-GW-4).
    pub revocation_poll_ms: u64,
    /// How often they are polled while the bus vouches for them, in ms.
    pub revocation_poll_live_ms: u64,
    /// Tokens are refused with UNAVAILABLE when neither the bus vouches for
    /// the revocations nor a poll of identity succeeded within this many ms.
    pub revocation_max_staleness_ms: u64,
    /// Calls per second each principal may make (sustained); 0 turns the limit off.
    pub rate_limit_per_second: u32,
    /// Calls a principal may make in a burst above the sustained rate.
    pub rate_limit_burst: u32,
    /// Longest wait, in ms, for the shared rate limit in Redis; without an
    /// answer by then the replica's own count decides (and Redis is asked
    /// again a second later).
    pub rate_limit_shared_timeout_ms: u64,
    /// Largest message forwarded to or accepted from a service, in bytes
    /// (requests are also bounded by `server.max_message_bytes`).
    pub max_message_bytes: usize,
    /// Largest facts answer read from accounts or delegation, in bytes: a
    /// broker employee assigned to tens of thousands of clients has facts of
    /// several MiB, which must not fail closed at the forwarding limit.
    pub facts_max_message_bytes: usize,
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
            identity_facts_endpoint: String::new(),
            accounts_facts_endpoint: String::new(),
            delegation_facts_endpoint: String::new(),
            facts_ttl_secs: 60,
            facts_local_entries: 100_000,
            token_cache_entries: 100_000,
            key_refresh_interval_ms: 1_000,
            key_max_age_ms: 60_000,
            revocation_poll_ms: 100,
            revocation_poll_live_ms: 200,
            revocation_max_staleness_ms: 250,
            rate_limit_per_second: 200,
            rate_limit_burst: 400,
            rate_limit_shared_timeout_ms: 20,
            max_message_bytes: 4 * 1024 * 1024,
            facts_max_message_bytes: 64 * 1024 * 1024,
        }
    }
}

impl GatewaySettings {
    /// Returns where identity's facts API is served (the facts endpoint, else the public one).
    pub fn identity_facts(&self) -> &str {
        or_public(&self.identity_facts_endpoint, &self.identity_endpoint)
    }

    /// Returns where accounts' facts API is served.
    pub fn accounts_facts(&self) -> &str {
        or_public(&self.accounts_facts_endpoint, &self.accounts_endpoint)
    }

    /// Returns where delegation's facts API is served.
    pub fn delegation_facts(&self) -> &str {
        or_public(&self.delegation_facts_endpoint, &self.delegation_endpoint)
    }

    /// Checks the settings, naming keys under `gateway.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate_at("gateway.server")?;
        for (key, endpoint) in [
            ("gateway.identity_endpoint", &self.identity_endpoint),
            ("gateway.accounts_endpoint", &self.accounts_endpoint),
            ("gateway.delegation_endpoint", &self.delegation_endpoint),
        ] {
            ccp_platform::balance::validate_upstream(key, endpoint)?;
        }
        for (key, endpoint) in [
            (
                "gateway.identity_facts_endpoint",
                &self.identity_facts_endpoint,
            ),
            (
                "gateway.accounts_facts_endpoint",
                &self.accounts_facts_endpoint,
            ),
            (
                "gateway.delegation_facts_endpoint",
                &self.delegation_facts_endpoint,
            ),
        ] {
            if !endpoint.is_empty() {
                ccp_platform::balance::validate_upstream(key, endpoint)?;
            }
        }
        if !(1..=3600).contains(&self.facts_ttl_secs) {
            return Err(ConfigError::new("gateway.facts_ttl_secs", "must be 1–3600"));
        }
        if self.facts_local_entries == 0 {
            return Err(ConfigError::new(
                "gateway.facts_local_entries",
                "must be positive",
            ));
        }
        if self.token_cache_entries == 0 {
            return Err(ConfigError::new(
                "gateway.token_cache_entries",
                "must be positive",
            ));
        }
        if !(100..=60_000).contains(&self.key_max_age_ms) {
            return Err(ConfigError::new(
                "gateway.key_max_age_ms",
                "must be 100–60000",
            ));
        }
        if !(10..=250).contains(&self.revocation_poll_ms) {
            return Err(ConfigError::new(
                "gateway.revocation_poll_ms",
                "must be 10–250",
            ));
        }
        if !(10..=10_000).contains(&self.revocation_poll_live_ms) {
            return Err(ConfigError::new(
                "gateway.revocation_poll_live_ms",
                "must be 10–10000",
            ));
        }
        if self.revocation_max_staleness_ms < self.revocation_poll_ms {
            return Err(ConfigError::new(
                "gateway.revocation_max_staleness_ms",
                "must be at least revocation_poll_ms",
            ));
        }
        if self.rate_limit_per_second > 0 && self.rate_limit_burst == 0 {
            return Err(ConfigError::new(
                "gateway.rate_limit_burst",
                "must be positive when rate_limit_per_second is set",
            ));
        }
        if !(1..=1_000).contains(&self.rate_limit_shared_timeout_ms) {
            return Err(ConfigError::new(
                "gateway.rate_limit_shared_timeout_ms",
                "must be 1–1000",
            ));
        }
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::new(
                "gateway.max_message_bytes",
                "must be at least 1024",
            ));
        }
        if self.facts_max_message_bytes < 1024 * 1024 {
            return Err(ConfigError::new(
                "gateway.facts_max_message_bytes",
                "must be at least 1048576",
            ));
        }
        Ok(())
    }
}

/// Returns `facts` unless empty, else `public`.
fn or_public<'a>(facts: &'a str, public: &'a str) -> &'a str {
    if facts.is_empty() { public } else { facts }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        assert!(GatewaySettings::default().validate().is_ok());
        let mut split = GatewaySettings {
            accounts_facts_endpoint: "http://accounts:50062".to_owned(),
            ..GatewaySettings::default()
        };
        assert!(split.validate().is_ok());
        assert_eq!(split.accounts_facts(), "http://accounts:50062");
        assert_eq!(split.delegation_facts(), split.delegation_endpoint);
        split.identity_facts_endpoint = String::new();
        assert_eq!(split.identity_facts(), split.identity_endpoint);
        type Spoil = fn(&mut GatewaySettings);
        let cases: [(&str, Spoil); 11] = [
            ("gateway.key_max_age_ms", |s| s.key_max_age_ms = 120_000),
            ("gateway.revocation_poll_ms", |s| {
                s.revocation_poll_ms = 1_000
            }),
            ("gateway.revocation_max_staleness_ms", |s| {
                s.revocation_max_staleness_ms = 50;
            }),
            ("gateway.facts_ttl_secs", |s| s.facts_ttl_secs = 0),
            ("gateway.accounts_facts_endpoint", |s| {
                s.accounts_facts_endpoint = "not a url".to_owned();
            }),
            ("gateway.facts_local_entries", |s| s.facts_local_entries = 0),
            ("gateway.token_cache_entries", |s| s.token_cache_entries = 0),
            ("gateway.rate_limit_burst", |s| s.rate_limit_burst = 0),
            ("gateway.rate_limit_shared_timeout_ms", |s| {
                s.rate_limit_shared_timeout_ms = 0;
            }),
            ("gateway.max_message_bytes", |s| s.max_message_bytes = 10),
            ("gateway.facts_max_message_bytes", |s| {
                s.facts_max_message_bytes = 1024;
            }),
        ];
        for (key, spoil) in cases {
            let mut s = GatewaySettings::default();
            spoil(&mut s);
            assert_eq!(s.validate().map_err(|e| e.key).err().as_deref(), Some(key));
        }
    }
}
