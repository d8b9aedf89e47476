//! The shared runtime every service is built with: environment, clock,
//! internal tokens, event bus and cache, chosen from the common settings
//! (Redis when a URL is configured, in-memory otherwise).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{InternalClientInterceptor, InternalTokenSource, InternalTokens};
use crate::balance::{BalancedChannel, DnsResolver, Resolver, UpstreamSettings};
use crate::bus::{EventBus, MemoryBus, RedisBus};
use crate::cache::{Cache, MemoryCache, RedisCache};
use crate::clock::Clock;
use crate::config::{
    ClockSettings, ConfigError, Environment, InternalAuthSettings, RedisSettings, Validate,
};
use crate::telemetry::TelemetrySettings;

/// The settings every binary shares (the top level of the configuration tree).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CommonSettings {
    /// Where the suite runs.
    pub environment: Environment,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// Internal tokens.
    pub internal_auth: InternalAuthSettings,
    /// Redis; empty URL for in-memory cache and bus.
    pub redis: RedisSettings,
    /// The clock.
    pub clock: ClockSettings,
    /// How calls to other services are balanced over their replicas.
    pub upstream: UpstreamSettings,
}

impl Validate for CommonSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.internal_auth.validate_for(self.environment)?;
        self.redis.validate_at("redis")?;
        self.clock.check(self.environment)?;
        self.upstream.validate_at("upstream")?;
        if self.environment == Environment::Production && self.redis.url.is_empty() {
            return Err(ConfigError::new("redis.url", "required in production"));
        }
        Ok(())
    }
}

/// The shared runtime of one process.
#[derive(Clone)]
pub struct ServiceContext {
    /// Where the suite runs.
    pub environment: Environment,
    /// The clock every expiry is measured against.
    pub clock: Clock,
    /// Internal token minting and verification.
    pub internal: Arc<InternalTokens>,
    /// The event bus.
    pub bus: Arc<dyn EventBus>,
    /// The shared cache.
    pub cache: Arc<dyn Cache>,
    /// How upstream channels balance over replicas.
    pub upstream: UpstreamSettings,
    /// How upstream names are resolved to replicas (DNS; tests supply their own).
    pub resolver: Arc<dyn Resolver>,
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("environment", &self.environment)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Whether a process needs Redis reachable to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisAtStart {
    /// Refuse to start while Redis is unreachable.
    Required,
    /// Start anyway and connect when Redis answers (services publish through
    /// their outbox, so events wait until it is back; the gateway confirms
    /// revocations with identity meanwhile and trusts no cached fact).
    Optional,
}

impl ServiceContext {
    /// Builds the runtime from the common settings: Redis cache and bus when
    /// a URL is set, in-memory otherwise; a generated internal key when none
    /// is configured (embedded mode only; validation refuses it in production).
    pub async fn from_settings(settings: &CommonSettings) -> anyhow::Result<Self> {
        Self::from_settings_with(settings, RedisAtStart::Required).await
    }

    /// Builds the runtime as [`Self::from_settings`] does, connecting to Redis
    /// as `redis` says ([`RedisAtStart::Optional`]: start without it).
    pub async fn from_settings_with(
        settings: &CommonSettings,
        redis: RedisAtStart,
    ) -> anyhow::Result<Self> {
        let clock = settings.clock.build(settings.environment)?;
        let key = match settings.internal_auth.key_bytes()? {
            Some(key) => key,
            None => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(InternalTokens::generate_key())?
            }
        };
        let internal = Arc::new(InternalTokens::new(
            &key,
            Duration::from_secs(settings.internal_auth.token_ttl_secs),
            clock.clone(),
        ));
        let (bus, cache): (Arc<dyn EventBus>, Arc<dyn Cache>) = match settings.redis.target()? {
            None => (
                Arc::new(MemoryBus::new(crate::bus::DEFAULT_MAX_LEN)),
                Arc::new(MemoryCache::process_local(100_000)),
            ),
            Some(target) => {
                let prefix = settings.redis.key_prefix.clone();
                match redis {
                    RedisAtStart::Required => (
                        Arc::new(RedisBus::connect(target.clone(), prefix.clone()).await?),
                        Arc::new(RedisCache::connect(target, prefix).await?),
                    ),
                    RedisAtStart::Optional => (
                        Arc::new(RedisBus::connect_lazy(target.clone(), prefix.clone())?),
                        Arc::new(RedisCache::connect_lazy(target, prefix)?),
                    ),
                }
            }
        };
        Ok(Self {
            environment: settings.environment,
            clock,
            internal,
            bus,
            cache,
            upstream: settings.upstream.clone(),
            resolver: Arc::new(DnsResolver),
        })
    }

    /// Returns an in-memory runtime for tests, with a settable clock when given.
    pub fn in_memory(clock: Clock) -> Self {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .decode(InternalTokens::generate_key())
            .unwrap_or_else(|_| vec![7; 32]);
        Self {
            environment: Environment::Test,
            internal: Arc::new(InternalTokens::new(
                &key,
                Duration::from_secs(300),
                clock.clone(),
            )),
            clock,
            bus: Arc::new(MemoryBus::new(crate::bus::DEFAULT_MAX_LEN)),
            cache: Arc::new(MemoryCache::new(100_000)),
            upstream: UpstreamSettings::default(),
            resolver: Arc::new(DnsResolver),
        }
    }

    /// Returns a channel balancing over the replicas of the upstream `spec`
    /// names (one URL, its host resolved to all its addresses, or a
    /// comma-separated list), each call given `timeout`.
    pub fn upstream_channel(
        &self,
        spec: &str,
        timeout: Duration,
    ) -> anyhow::Result<BalancedChannel> {
        BalancedChannel::new(spec, timeout, &self.upstream, self.resolver.clone())
    }

    /// Returns a client interceptor presenting internal tokens for `subject`
    /// (e.g. `service:accounts`) and propagating trace context.
    pub fn client_interceptor(&self, subject: &str) -> InternalClientInterceptor {
        InternalClientInterceptor::new(Arc::new(InternalTokenSource::new(
            self.internal.clone(),
            subject,
        )))
    }
}

/// Returns a lazily connecting channel to `endpoint` (e.g.
/// `http://127.0.0.1:50051`; an `https://` one verified with the system's roots).
pub fn lazy_channel(
    endpoint: &str,
    timeout: Duration,
) -> anyhow::Result<tonic::transport::Channel> {
    lazy_channel_with(endpoint, timeout, &UpstreamSettings::default())
}

/// Returns a lazily connecting channel to `endpoint`, an `https://` one
/// speaking TLS as `upstream` says (its CA, its client certificate).
pub fn lazy_channel_with(
    endpoint: &str,
    timeout: Duration,
    upstream: &UpstreamSettings,
) -> anyhow::Result<tonic::transport::Channel> {
    let mut endpoint = upstream_endpoint(endpoint, timeout)?;
    if let Some(tls) = crate::tls::client_config(upstream, endpoint.uri())? {
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint.connect_lazy())
}

/// Returns the endpoint [`lazy_channel`] connects to, configured alike (connect
/// timeout, call timeout, no Nagle, adaptive window), for a caller that makes
/// connections of its own (the gateway's retry on a fresh connection).
pub fn upstream_endpoint(
    endpoint: &str,
    timeout: Duration,
) -> anyhow::Result<tonic::transport::Endpoint> {
    Ok(
        tonic::transport::Endpoint::from_shared(endpoint.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .tcp_nodelay(true)
            .http2_adaptive_window(true),
    )
}

/// Fetches identity's signing keys over gRPC (GetSigningKeys), for services
/// that verify access tokens but do not own the keys.
pub struct RemoteKeySource {
    client: ccp_proto::identity::v1::identity_client::IdentityClient<
        tonic::service::interceptor::InterceptedService<BalancedChannel, InternalClientInterceptor>,
    >,
}

impl RemoteKeySource {
    /// Returns a source calling identity at `channel` with internal tokens.
    pub fn new(channel: BalancedChannel, interceptor: InternalClientInterceptor) -> Self {
        Self {
            client: ccp_proto::identity::v1::identity_client::IdentityClient::with_interceptor(
                channel,
                interceptor,
            ),
        }
    }
}

#[async_trait::async_trait]
impl crate::auth::KeySource for RemoteKeySource {
    async fn fetch_jwks(&self) -> anyhow::Result<String> {
        let mut client = self.client.clone();
        let keys = client
            .get_signing_keys(ccp_proto::identity::v1::GetSigningKeysRequest {})
            .await?
            .into_inner();
        Ok(keys.jwks_json)
    }
}
