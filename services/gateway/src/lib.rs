//! The gateway: the one door broker systems and portal front ends call.
//!
//! It authenticates every call (identity's access tokens), authorizes it from
//! one declarative policy table over role facts (accounts), relationship facts
//! (delegation) and the clock (R-AZ, R-GW), forwards it to the owning service,
//! and answers the decision API (`ccp.gateway.v1.Authorization`). It caches
//! facts, never decisions, and fails closed. It has no database and never
//! exposes the internal facts services.

pub mod config;
pub mod decide;
pub mod forward;
pub mod policy;

use ccp_platform::context::ServiceContext;
use ccp_platform::server::GrpcServer;
use ccp_proto::accounts::v1::accounts_server::AccountsServer;
use ccp_proto::delegation::v1::delegation_server::DelegationServer;
use ccp_proto::gateway::v1::authorization_server::AuthorizationServer;
use ccp_proto::identity::v1::identity_server::IdentityServer;

pub use config::GatewaySettings;

/// A built gateway, bound and ready to run.
#[derive(Debug)]
pub struct Application {
    server: GrpcServer,
}

impl Application {
    /// Binds the listener and wires the decision API and the three public services.
    pub async fn build(ctx: &ServiceContext, settings: &GatewaySettings) -> anyhow::Result<Self> {
        let limit = settings.server.max_message_bytes;
        let mut server = GrpcServer::bind(&settings.server).await?;
        let api = forward::GatewayApi::new(ctx.clone());
        server.add_service(AuthorizationServer::new(api.clone()).max_decoding_message_size(limit));
        server.add_service(IdentityServer::new(api.clone()).max_decoding_message_size(limit));
        server.add_service(AccountsServer::new(api.clone()).max_decoding_message_size(limit));
        server.add_service(DelegationServer::new(api).max_decoding_message_size(limit));
        Ok(Self { server })
    }

    /// Returns the bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.server.run_until_stopped(shutdown).await
    }
}
