//! The delegation service: what a client delegates to its service providers.
//!
//! It owns relationship requests (R-DE-1), relationships with their level,
//! expiry and visibility rules (R-DE-2..4, R-DE-6), reminders before expiry,
//! and the provider side: client groups and assignments (R-DE-5). It serves
//! relationship and assignment facts to the gateway. It never decides who may
//! do what (the gateway's policy) and asks accounts, never its tables, about
//! businesses and members.
//!
//! Rooms: `grpc` (tonic handlers) calls `app` (the use cases, [`app::Core`]),
//! which uses `domain` (records, rules, `DelegationError`; no I/O) and `store`
//! (sea-orm entities and repositories). Every write is one unit of work of
//! `ccp_platform::store::Writer`: its audit record and event commit with it.
//!
//! Revisions (R-GW-4): a change to a (provider, client) pair — a request or a
//! relationship — bumps the scope `pair:<provider>:<client>` first (on
//! PostgreSQL that row lock serializes every change to the pair: concurrent
//! approvals, approve against withdraw), and a relationship change then also
//! bumps the provider's BN9 scope (the revision of ListClients). Client-group
//! and assignment changes bump the provider's BN9 scope only. The order is
//! always pair, then provider, so two transactions never wait on each other
//! in a cycle. Write responses carry the token of the first scope bumped;
//! GetPairFacts answers the pair's counter, GetAssignmentFacts and
//! ListClients the providers' counters.
//!
//! Background work runs inside [`Application::run_until_stopped`]: the
//! outbox relay, the periodic sweep (`sweep_interval_ms`, by the one replica
//! holding the sweep lease, `sweep_lease_ms`) and the consumer of
//! accounts' BUSINESS_REGISTERED events, whose acknowledged position is
//! stored in this schema (`consumer_positions`) in the transaction that
//! applies each event, so a restart resumes after it.

pub mod app;
pub mod background;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod store;

use std::sync::Arc;
use tracing::Instrument as _;

use ccp_platform::auth::{AccessTokenVerifier, KeySource, ServerAuth};
use ccp_platform::context::{RemoteKeySource, ServiceContext};
use ccp_platform::server::GrpcServer;
use ccp_platform::store::{OutboxRelay, Writer};
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::delegation::v1::delegation_server::DelegationServer;
use ccp_proto::delegation::v1::relationship_facts_server::RelationshipFactsServer;
use futures::FutureExt as _;

pub use config::DelegationSettings;

/// The stream this service publishes its domain events to.
pub const EVENT_STREAM: &str = "ccp.events.delegation";

/// A built delegation service, bound and ready to run.
pub struct Application {
    server: GrpcServer,
    relay: OutboxRelay,
    core: app::Core,
    sweeper: background::Sweeper,
    sweep_interval: std::time::Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to (and migrates) the database, binds the listener and wires
    /// the public and internal services. Access tokens are verified with
    /// identity's published keys (GetSigningKeys at `identity_endpoint`).
    pub async fn build(
        ctx: &ServiceContext,
        settings: &DelegationSettings,
    ) -> anyhow::Result<Self> {
        let timeout = std::time::Duration::from_millis(settings.server.request_timeout_ms);
        let identity = ctx.upstream_channel(&settings.identity_endpoint, timeout)?;
        let keys = RemoteKeySource::new(identity, ctx.client_interceptor("service:delegation"));
        Self::build_with_key_source(ctx, settings, Arc::new(keys)).await
    }

    /// Builds like [`Application::build`] but verifies access tokens with keys
    /// from `keys` (tests pass the keys of a `TokenMinter`).
    pub async fn build_with_key_source(
        ctx: &ServiceContext,
        settings: &DelegationSettings,
        keys: Arc<dyn KeySource>,
    ) -> anyhow::Result<Self> {
        // Its listing statements read data skewed by provider (a broker's 50k
        // clients among providers with a handful): they run planned with their
        // values (`app::facts`, `db::begin_planned_with_values`).
        let db = ccp_platform::db::connect_for_service::<store::Migrator>(
            &settings.database.for_service("delegation"),
        )
        .await?;
        let relay = OutboxRelay::new(db.clone(), ctx.bus.clone());
        let verifier = AccessTokenVerifier::new(ctx.clock.clone())
            .with_source(keys, std::time::Duration::from_secs(1))
            .with_cache(ccp_platform::auth::VERIFIED_TOKENS_CACHED);
        let verifier = Arc::new(verifier);
        let public = ServerAuth::with_access_tokens(ctx.internal.clone(), verifier);
        let internal = ServerAuth::internal_only(ctx.internal.clone());
        let limit = settings.server.max_message_bytes;

        let timeout = std::time::Duration::from_millis(settings.server.request_timeout_ms);
        let accounts = AccountFactsClient::with_interceptor(
            ctx.upstream_channel(settings.accounts_facts(), timeout)?,
            ctx.client_interceptor("service:delegation"),
        );
        let core = app::Core {
            writer: Writer::new(
                db.clone(),
                relay.clone(),
                ctx.clock.clone(),
                app::SERVICE,
                EVENT_STREAM,
            ),
            ctx: ctx.clone(),
            accounts,
            pending_days: settings.pending_request_days,
            max_days: settings.max_relationship_days,
        };

        let mut server = GrpcServer::bind(&settings.server).await?;
        // Readiness: NOT_SERVING while the database does not answer.
        server.readiness(
            std::time::Duration::from_secs(1),
            ccp_platform::db::readiness_probe(db.clone()),
        );
        server.add_service(
            public.wrap(
                DelegationServer::new(grpc::DelegationApi::new(core.clone()))
                    .max_decoding_message_size(limit),
            ),
        );
        server.add_internal_service(
            internal.wrap(
                RelationshipFactsServer::new(grpc::RelationshipFactsApi::new(core.clone()))
                    .max_decoding_message_size(limit),
            ),
        );
        let sweeper = background::Sweeper::new(
            core.clone(),
            background::SweepLease::new(std::time::Duration::from_millis(settings.sweep_lease_ms)),
        );
        Ok(Self {
            server,
            relay,
            core,
            sweeper,
            sweep_interval: std::time::Duration::from_millis(settings.sweep_interval_ms),
        })
    }

    /// Returns a handle that runs sweeps on demand (tests drive the sweep
    /// at exact instants of a settable clock), as the same lease holder as
    /// the background sweep.
    pub fn sweeper(&self) -> background::Sweeper {
        self.sweeper.clone()
    }

    /// Returns the bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Returns the count of calls this replica has served.
    pub fn served_calls(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.server.served()
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Returns the address the internal facts API is served on (the bound
    /// address unless `server.internal_listen` is set).
    pub fn internal_addr(&self) -> std::net::SocketAddr {
        self.server.internal_addr()
    }

    /// Serves until `shutdown` completes, then drains (see [`GrpcServer::run_until_stopped`]).
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = shutdown.shared();
        let relay = tokio::spawn(
            self.relay
                .with_health(self.server.health())
                .run(shutdown.clone())
                .in_current_span(),
        );
        let sweep = tokio::spawn(
            self.sweeper
                .clone()
                .run(self.sweep_interval, shutdown.clone())
                .in_current_span(),
        );
        let consumer = tokio::spawn(
            background::consume_accounts_events(self.core.clone(), shutdown.clone())
                .in_current_span(),
        );
        let served = self.server.run_until_stopped(shutdown).await;
        relay.await?;
        sweep.await?;
        consumer.await?;
        served
    }
}
