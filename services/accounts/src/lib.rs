//! The accounts service: businesses and the people and credentials that act for them.
//!
//! It owns the CRA registry records, business registration (R-AC-2), program
//! accounts, employee access requests (R-AC-3), members and their roles per
//! program (R-AC-4, R-AC-7), the last-BAM invariant (R-AC-5) and employee
//! groups (R-AC-6), and serves role facts to the gateway. It never decides
//! who may do what (the gateway's policy) and never reads another service's
//! tables: names and credentials come from identity's facts RPCs.

pub mod app;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod store;

use std::sync::Arc;
use tracing::Instrument as _;

use ccp_platform::auth::{AccessTokenVerifier, KeySource, ServerAuth};
use ccp_platform::context::{RemoteKeySource, ServiceContext};
use ccp_platform::server::GrpcServer;
use ccp_platform::store::OutboxRelay;
use ccp_proto::accounts::v1::account_facts_server::AccountFactsServer;
use ccp_proto::accounts::v1::accounts_server::AccountsServer;
use futures::FutureExt as _;

pub use config::AccountsSettings;

/// The stream this service publishes its domain events to.
pub const EVENT_STREAM: &str = "ccp.events.accounts";

/// A built accounts service, bound and ready to run.
pub struct Application {
    server: GrpcServer,
    relay: OutboxRelay,
    core: app::Core,
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
    pub async fn build(ctx: &ServiceContext, settings: &AccountsSettings) -> anyhow::Result<Self> {
        let timeout = std::time::Duration::from_millis(settings.server.request_timeout_ms);
        let identity = ctx.upstream_channel(&settings.identity_endpoint, timeout)?;
        let keys = RemoteKeySource::new(identity, ctx.client_interceptor("service:accounts"));
        Self::build_with_key_source(ctx, settings, Arc::new(keys)).await
    }

    /// Builds like [`Application::build`] but verifies access tokens with keys
    /// from `keys` (e.g. a fixed JWKS).
    pub async fn build_with_key_source(
        ctx: &ServiceContext,
        settings: &AccountsSettings,
        keys: Arc<dyn KeySource>,
    ) -> anyhow::Result<Self> {
        let db = ccp_platform::db::connect_for_service::<store::Migrator>(
            &settings.database.for_service("accounts"),
        )
        .await?;
        let relay = OutboxRelay::new(db.clone(), ctx.bus.clone());
        let timeout = std::time::Duration::from_millis(settings.server.request_timeout_ms);
        let identity =
            ccp_proto::identity::v1::identity_facts_client::IdentityFactsClient::with_interceptor(
                ctx.upstream_channel(settings.identity_facts(), timeout)?,
                ctx.client_interceptor("service:accounts"),
            );
        let core = app::Core::new(
            db.clone(),
            ctx.clone(),
            relay.clone(),
            identity,
            settings.clone(),
        );
        let verifier = AccessTokenVerifier::new(ctx.clock.clone())
            .with_source(keys, std::time::Duration::from_secs(1))
            .with_cache(ccp_platform::auth::VERIFIED_TOKENS_CACHED);
        let verifier = Arc::new(verifier);
        let public = ServerAuth::with_access_tokens(ctx.internal.clone(), verifier);
        let internal = ServerAuth::internal_only(ctx.internal.clone());
        let limit = settings.server.max_message_bytes;

        let mut server = GrpcServer::bind(&settings.server).await?;
        // Readiness: NOT_SERVING while the database does not answer.
        server.readiness(
            std::time::Duration::from_secs(1),
            ccp_platform::db::readiness_probe(db.clone()),
        );
        server.add_service(
            public.wrap(
                AccountsServer::new(grpc::AccountsApi::new(core.clone()))
                    .max_decoding_message_size(limit),
            ),
        );
        server.add_internal_service(
            internal.wrap(
                AccountFactsServer::new(grpc::AccountFactsApi::new(core.clone()))
                    .max_decoding_message_size(limit),
            ),
        );
        let sweep_interval = std::time::Duration::from_secs(settings.expiry_sweep_interval_secs);
        Ok(Self {
            server,
            relay,
            core,
            sweep_interval,
        })
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
            run_sweep(self.core, self.sweep_interval, shutdown.clone()).in_current_span(),
        );
        let served = self.server.run_until_stopped(shutdown).await;
        relay.await?;
        sweep.await?;
        served
    }
}

/// Expires pending employee requests every `interval` until `shutdown` (R-AC-3).
async fn run_sweep(
    core: app::Core,
    interval: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match core.sweep_expired_requests().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "employee requests expired"),
            Err(err) => tracing::warn!(error = %err, "employee request sweep failed; will retry"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
