//! The identity service: who a caller is.
//!
//! It owns federated sign-in through trusted OIDC issuers, personal profiles,
//! sessions (Ed25519 access tokens, rotating refresh tokens), the signing keys
//! and their rotation, and machine credentials (R-ID-1..5). It publishes
//! sign-out, refresh-family and credential revocations so the gateway stops
//! accepting those tokens at once, and, from a periodic sweep, a reminder of
//! each machine credential expiring within 30 days. It never decides who may do what: that is
//! the gateway's policy. It never stores orphan status (R-ID-5).
//!
//! Rooms: `grpc` (tonic handlers, request parsing) calls `app` (the use
//! cases; every write through the platform's unit of work), which uses
//! `domain` (types and rules, no I/O) and `store` (sea-orm entities and
//! repositories, migrations, the signing-key ring).

pub mod app;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod oidc;
pub mod secrets;
pub mod store;

use std::sync::Arc;
use tracing::Instrument as _;

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
    keys: Arc<app::keys::KeyRing>,
    sweeper: app::reminders::Sweeper,
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
    /// Connects to (and migrates) the database, makes sure a signing key is
    /// active, loads the trusted issuers, binds the listener and wires the
    /// public `Identity` and internal `IdentityFacts` services.
    pub async fn build(ctx: &ServiceContext, settings: &IdentitySettings) -> anyhow::Result<Self> {
        settings.validate_for(ctx.environment)?;
        let db = ccp_platform::db::connect_for_service::<store::Migrator>(
            &settings.database.for_service("identity"),
        )
        .await?;
        let relay = OutboxRelay::new(db.clone(), ctx.bus.clone());
        let kek = key_encryption_key(settings, ctx.environment)?;
        store::keys::ensure_active_key(&db, &kek, ctx.clock.now()).await?;
        let dev = if settings.dev_issuer.is_enabled() {
            let dev =
                oidc::DevIssuer::from_settings(&settings.dev_issuer, settings.data_dir.as_deref())?;
            tracing::warn!(
                issuer = %dev.issuer(),
                "THE DEVELOPMENT ISSUER IS ON: anyone with its key can sign in as anyone; never enable it in production"
            );
            Some(dev)
        } else {
            None
        };
        let issuers =
            oidc::TrustedIssuers::from_settings(settings, dev.as_ref(), ctx.clock.clone()).await?;
        if issuers.is_empty() {
            tracing::warn!("no trusted issuer is configured: nobody can sign in");
        }
        let source = Arc::new(store::keys::DbKeySource::new(db.clone(), ctx.clock.clone()));
        let verifier = Arc::new(
            AccessTokenVerifier::new(ctx.clock.clone())
                .with_source(source, std::time::Duration::from_millis(200))
                .with_cache(ccp_platform::auth::VERIFIED_TOKENS_CACHED),
        );
        verifier.refresh().await?;
        let keys = Arc::new(app::keys::KeyRing::new(
            db.clone(),
            kek,
            ctx.clock.clone(),
            verifier.clone(),
        ));
        keys.signer().await?;
        let core = Arc::new(app::Core::new(
            db.clone(),
            ctx.clone(),
            relay.clone(),
            issuers,
            keys.clone(),
            settings.clone(),
        )?);
        let sweeper = app::reminders::Sweeper::new(core.clone());
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
                IdentityServer::new(grpc::IdentityApi::new(core.clone()))
                    .max_decoding_message_size(limit),
            ),
        );
        server.add_internal_service(
            internal.wrap(
                IdentityFactsServer::new(grpc::IdentityFactsApi::new(core))
                    .max_decoding_message_size(limit),
            ),
        );
        Ok(Self {
            server,
            relay,
            keys,
            sweeper,
            sweep_interval: std::time::Duration::from_millis(settings.sweep_interval_ms),
        })
    }

    /// Returns a handle that runs sweeps on demand (tests drive the sweep at exact instants;
    /// [`Application::run_until_stopped`] runs it every `sweep_interval_ms`).
    pub fn sweeper(&self) -> app::reminders::Sweeper {
        self.sweeper.clone()
    }

    /// Returns the bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
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
        let keys = tokio::spawn(
            self.keys
                .run_sync(std::time::Duration::from_secs(10), shutdown.clone())
                .in_current_span(),
        );
        let sweep = tokio::spawn(
            self.sweeper
                .run(self.sweep_interval, shutdown.clone())
                .in_current_span(),
        );
        let served = self.server.run_until_stopped(shutdown).await;
        relay.await?;
        keys.await?;
        sweep.await?;
        served
    }
}

/// Returns the key-encryption key: `identity.key_encryption_key` when set;
/// otherwise, outside production, the key in `<data_dir>/identity-kek.key`
/// (created on first use). `ccp keys rotate` resolves it the same way.
pub fn key_encryption_key(
    settings: &IdentitySettings,
    environment: ccp_platform::config::Environment,
) -> anyhow::Result<secrets::KeyEncryptionKey> {
    let configured = secrecy::ExposeSecret::expose_secret(&settings.key_encryption_key);
    if !configured.is_empty() {
        return secrets::KeyEncryptionKey::parse(configured);
    }
    if environment == ccp_platform::config::Environment::Production {
        anyhow::bail!(
            "identity.key_encryption_key is required in production (env CCP_IDENTITY__KEY_ENCRYPTION_KEY)"
        );
    }
    let Some(dir) = &settings.data_dir else {
        anyhow::bail!(
            "set identity.key_encryption_key (env CCP_IDENTITY__KEY_ENCRYPTION_KEY) or identity.data_dir"
        );
    };
    let text = secrets::read_or_create_key_file(&secrets::kek_file(dir), || {
        secrets::KeyEncryptionKey::generate().to_base64()
    })?;
    secrets::KeyEncryptionKey::parse(&text)
}
