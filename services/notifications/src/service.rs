//! The notifications service as a process runs it: the consumers of the bus and the operator
//! API (`NotificationsAdmin`, with health and reflection, on `notifications.server.listen`),
//! every call of which needs an internal token.

use std::sync::Arc;

use ccp_platform::auth::ServerAuth;
use ccp_platform::bus::EventBus;
use ccp_platform::context::ServiceContext;
use ccp_platform::server::GrpcServer;
use ccp_proto::notifications::v1::notifications_admin_server::NotificationsAdminServer;
use futures::FutureExt as _;
use tracing::Instrument as _;

use crate::{NotificationsSettings, Notifier};

/// A built notifications service, bound and ready to run.
pub struct Application {
    server: GrpcServer,
    notifier: Notifier,
    bus: Arc<dyn EventBus>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds the notifier of the settings ([`crate::build`]) and binds its operator API.
    pub async fn build(
        ctx: &ServiceContext,
        settings: &NotificationsSettings,
    ) -> anyhow::Result<Self> {
        let notifier = crate::build(ctx, settings).await?;
        Self::with_notifier(ctx, &settings.server, notifier).await
    }

    /// Binds the operator API of `notifier` on `server` (tests give a notifier of their own).
    pub async fn with_notifier(
        ctx: &ServiceContext,
        server: &ccp_platform::config::ServerSettings,
        notifier: Notifier,
    ) -> anyhow::Result<Self> {
        let mut grpc = GrpcServer::bind(server).await?;
        // Readiness: NOT_SERVING while the database does not answer.
        grpc.readiness(
            std::time::Duration::from_secs(1),
            ccp_platform::db::readiness_probe(notifier.db().clone()),
        );
        let auth = ServerAuth::internal_only(ctx.internal.clone());
        grpc.add_service(
            auth.wrap(NotificationsAdminServer::new(crate::grpc::AdminApi::new(
                notifier.clone(),
                ctx.internal.page_key().clone(),
            ))),
        );
        Ok(Self {
            server: grpc,
            notifier,
            bus: ctx.bus.clone(),
        })
    }

    /// Returns the operator API's bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Returns the scheme callers use (`https` with TLS, else `http`).
    pub fn scheme(&self) -> &'static str {
        self.server.scheme()
    }

    /// Consumes the bus and serves the operator API until `shutdown`, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = shutdown.shared();
        let consumer = tokio::spawn(
            crate::consume(self.notifier, self.bus, shutdown.clone()).in_current_span(),
        );
        let served = self.server.run_until_stopped(shutdown).await;
        consumer.await?;
        served
    }
}
