//! The gateway: the one door broker systems and portal front ends call.
//!
//! It authenticates every call (identity's access tokens), authorizes it from
//! one declarative policy table over role facts (accounts), relationship facts
//! (delegation) and the clock (R-AZ, R-GW), forwards it to the owning service,
//! and answers the decision API (`ccp.gateway.v1.Authorization`). It caches
//! facts, never decisions, and fails closed. It has no database and never
//! exposes the internal facts services.
//!
//! - [`policy`]: the table, RPC → anonymous / self / requirements read from the
//!   request, what each need asks of the facts, and the table in words.
//! - [`decide`]: the pure decision function (R-AZ-0..6), the `ccp-decision` crate.
//! - [`facts`]: the two-level facts cache (R-GW-2, R-GW-4, R-GW-5).
//! - [`tokens`]: verified-token cache and the revocation set.
//! - [`revocations`]: the revocations in force, loaded from identity before
//!   any token is accepted and polled after (R-GW-4); signing-key refresh.
//! - [`events`]: the event consumer (evictions, revocations, trust).
//! - [`gate`]: authentication, rate limit, authorization of a policy entry.
//! - [`limit`]: the per-principal rate limit, shared by the replicas through Redis.
//! - [`authz`]: the decision API; [`forward`]: the forwarded public services.
//! - [`metrics`]: the gateway's own series (decisions, facts cache, lags, rate limit).

pub mod authz;
pub mod config;
pub use ccp_decision as decide;
pub mod events;
pub mod facts;
pub mod forward;
pub mod gate;
pub mod limit;
pub mod metrics;
pub mod policy;
pub mod revocations;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

use ccp_platform::auth::{AccessTokenVerifier, KeySource};
use ccp_platform::context::{RemoteKeySource, ServiceContext};
use ccp_platform::server::GrpcServer;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::accounts_server::AccountsServer;
use ccp_proto::delegation::v1::delegation_server::DelegationServer;
use ccp_proto::delegation::v1::relationship_facts_client::RelationshipFactsClient;
use ccp_proto::gateway::v1::authorization_server::AuthorizationServer;
use ccp_proto::identity::v1::identity_server::IdentityServer;

pub use config::GatewaySettings;

/// A built gateway, bound and ready to run.
pub struct Application {
    server: GrpcServer,
    gate: gate::Gate,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener and wires the decision API and the three public
    /// services. Access tokens are verified with identity's published keys.
    pub async fn build(ctx: &ServiceContext, settings: &GatewaySettings) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.server.request_timeout_ms);
        let identity = ctx.upstream_channel(&settings.identity_endpoint, timeout)?;
        let interceptor = ctx.client_interceptor("service:gateway");
        let keys = RemoteKeySource::new(identity, interceptor.clone());
        let revocations = revocations::RemoteRevocations::new(
            ctx.upstream_channel(settings.identity_facts(), timeout)?,
            interceptor,
        );
        Self::build_with_sources(ctx, settings, Arc::new(keys), Arc::new(revocations)).await
    }

    /// Builds like [`Application::build`] but verifies access tokens with keys
    /// from `keys` (tests pass the keys of a `TokenMinter`) and knows only the
    /// revocations the bus brings (the test double has no facts API).
    pub async fn build_with_key_source(
        ctx: &ServiceContext,
        settings: &GatewaySettings,
        keys: Arc<dyn KeySource>,
    ) -> anyhow::Result<Self> {
        Self::build_with_sources(ctx, settings, keys, Arc::new(revocations::NoRevocations)).await
    }

    /// Builds with the given sources of signing keys and of revocations.
    pub async fn build_with_sources(
        ctx: &ServiceContext,
        settings: &GatewaySettings,
        keys: Arc<dyn KeySource>,
        revocation_source: Arc<dyn revocations::RevocationSource>,
    ) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.server.request_timeout_ms);
        let channel = |endpoint: &str| ctx.upstream_channel(endpoint, timeout);
        let interceptor = ctx.client_interceptor("service:gateway");
        let limit = settings.max_message_bytes;

        let key_max_age = Duration::from_millis(settings.key_max_age_ms);
        let verifier = AccessTokenVerifier::new(ctx.clock.clone())
            .with_source(
                keys,
                Duration::from_millis(settings.key_refresh_interval_ms),
            )
            .with_max_key_age(key_max_age);
        let tokens = tokens::Authenticator::new(
            Arc::new(verifier),
            ctx.clock.clone(),
            settings.token_cache_entries,
        );
        let revocations = revocations::Revocations::new(
            revocation_source,
            tokens.clone(),
            revocations::RevocationTiming {
                poll: Duration::from_millis(settings.revocation_poll_ms),
                poll_live: Duration::from_millis(settings.revocation_poll_live_ms),
                max_staleness: Duration::from_millis(settings.revocation_max_staleness_ms),
                key_max_age,
            },
        );
        let facts = facts::FactsCache::new(
            AccountFactsClient::with_interceptor(
                channel(settings.accounts_facts())?,
                interceptor.clone(),
            )
            .max_decoding_message_size(settings.facts_max_message_bytes),
            RelationshipFactsClient::with_interceptor(
                channel(settings.delegation_facts())?,
                interceptor.clone(),
            )
            .max_decoding_message_size(settings.facts_max_message_bytes),
            ctx.cache.clone(),
            ctx.clock.clone(),
            Arc::new(facts::Trust::default()),
            &facts::FactsCacheSettings {
                ttl: Duration::from_secs(settings.facts_ttl_secs),
                local_entries: settings.facts_local_entries,
            },
        );
        let limiter =
            limit::RateLimiter::new(settings.rate_limit_per_second, settings.rate_limit_burst)
                .shared_through(
                    ctx.cache.clone(),
                    Duration::from_millis(settings.rate_limit_shared_timeout_ms),
                );
        let gate = gate::Gate::new(ctx.clone(), tokens, revocations, facts, limiter);
        let clients = forward::PublicClients::new(ctx, settings, interceptor)?;

        let request_limit = settings.server.max_message_bytes.min(limit);
        let mut server = GrpcServer::bind(&settings.server).await?;
        let revocations = gate.revocations.clone();
        server.readiness(Duration::from_millis(200), move || {
            let ready = revocations.is_ready();
            Box::pin(async move { ready })
        });
        let decisions = authz::AuthorizationApi::new(gate.clone());
        let forwarding = forward::ForwardingApi::new(gate.clone(), clients);
        server.add_service(
            AuthorizationServer::new(decisions).max_decoding_message_size(request_limit),
        );
        server.add_service(
            IdentityServer::new(forwarding.clone()).max_decoding_message_size(request_limit),
        );
        server.add_service(
            AccountsServer::new(forwarding.clone()).max_decoding_message_size(request_limit),
        );
        server.add_service(
            DelegationServer::new(forwarding).max_decoding_message_size(request_limit),
        );
        Ok(Self { server, gate })
    }

    /// Returns the bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Returns the facts cache's trust state (tests wait for the event consumer to be live).
    pub fn trust(&self) -> Arc<facts::Trust> {
        self.gate.facts.trust().clone()
    }

    /// Returns the facts cache (benchmarks read its hit and miss counters).
    pub fn facts(&self) -> facts::FactsCache {
        self.gate.facts.clone()
    }

    /// Returns the revocations in force (tests wait until they are loaded).
    pub fn revocations(&self) -> revocations::Revocations {
        self.gate.revocations.clone()
    }

    /// Serves until `shutdown` completes, then drains. The event consumer and
    /// the revocation poller run alongside.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let consumer = tokio::spawn(
            events::run(
                self.gate.ctx.bus.clone(),
                self.gate.facts.clone(),
                self.gate.tokens.clone(),
                self.gate.revocations.clone(),
            )
            .in_current_span(),
        );
        let revocations = tokio::spawn(self.gate.revocations.clone().run().in_current_span());
        let served = self.server.run_until_stopped(shutdown).await;
        consumer.abort();
        revocations.abort();
        served
    }
}
