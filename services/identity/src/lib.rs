//! The identity service: who a caller is.
//!
//! It owns federated sign-in through trusted OIDC issuers, personal profiles,
//! sessions (Ed25519 access tokens, rotating refresh tokens), the signing keys
//! and their rotation, and machine credentials (R-ID-1..5). It publishes
//! sign-out, refresh-family and credential revocations so the gateway stops
//! accepting those tokens at once. It never decides who may do what: that is
//! the gateway's policy. It never stores orphan status (R-ID-5).

pub mod config;
pub mod domain;
pub mod grpc;
pub mod store;

use std::sync::Arc;

use ccp_platform::auth::{AccessTokenVerifier, ServerAuth};
use ccp_platform::context::ServiceContext;
use ccp_platform::server::GrpcServer;
use ccp_platform::store::OutboxRelay;
use ccp_proto::identity::v1::identity_facts_server::IdentityFactsServer;
use ccp_proto::identity::v1::identity_server::IdentityServer;
use futures::FutureExt as _;

pub use config::IdentitySettings;

/// The stream this service publishes its domain events to.
pub const EVENT_STREAM: &str = "ccp.events.identity";

/// A built identity service, bound and ready to run.
pub struct Application {
    server: GrpcServer,
    relay: OutboxRelay,
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
    /// the public `Identity` and internal `IdentityFacts` services.
    pub async fn build(ctx: &ServiceContext, settings: &IdentitySettings) -> anyhow::Result<Self> {
        let db =
            ccp_platform::db::connect_for_service::<store::Migrator>(&settings.database).await?;
        let relay = OutboxRelay::new(db.clone(), ctx.bus.clone());
        let verifier = Arc::new(AccessTokenVerifier::new(ctx.clock.clone()));
        let public = ServerAuth::with_access_tokens(ctx.internal.clone(), verifier);
        let internal = ServerAuth::internal_only(ctx.internal.clone());
        let limit = settings.server.max_message_bytes;

        let mut server = GrpcServer::bind(&settings.server).await?;
        server.add_service(
            public.wrap(
                IdentityServer::new(grpc::IdentityApi::new(db.clone(), ctx.clone()))
                    .max_decoding_message_size(limit),
            ),
        );
        server.add_service(
            internal.wrap(
                IdentityFactsServer::new(grpc::IdentityFactsApi::new(db, ctx.clone()))
                    .max_decoding_message_size(limit),
            ),
        );
        Ok(Self { server, relay })
    }

    /// Returns the bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes, then drains (see [`GrpcServer::run_until_stopped`]).
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = shutdown.shared();
        let relay = tokio::spawn(self.relay.run(shutdown.clone()));
        let served = self.server.run_until_stopped(shutdown).await;
        relay.await?;
        served
    }
}
