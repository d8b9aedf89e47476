//! The embedded mode: all four services in one process, sharing one runtime
//! (clock, internal key, in-memory cache and bus unless Redis is configured).

use std::net::SocketAddr;

use ccp_platform::context::ServiceContext;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::settings::SuiteSettings;

/// Where each service of a running suite listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// The gateway: the endpoint users and broker systems call.
    pub gateway: SocketAddr,
    /// The identity service (internal callers).
    pub identity: SocketAddr,
    /// The accounts service (internal callers).
    pub accounts: SocketAddr,
    /// Accounts' internal facts API (its own port when
    /// `accounts.server.internal_listen` is set, else `accounts`).
    pub accounts_facts: SocketAddr,
    /// The delegation service (internal callers).
    pub delegation: SocketAddr,
    /// The notifications service's operator API (`ccp notifications failed|retry`).
    pub notifications: SocketAddr,
}

impl Endpoints {
    /// Returns `(name, address)` for each service, gateway first.
    pub fn all(&self) -> [(&'static str, SocketAddr); 5] {
        [
            ("gateway", self.gateway),
            ("identity", self.identity),
            ("accounts", self.accounts),
            ("delegation", self.delegation),
            ("notifications", self.notifications),
        ]
    }
}

/// A running embedded suite.
#[derive(Debug)]
pub struct Suite {
    endpoints: Endpoints,
    context: ServiceContext,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

// The span a service starts and runs in: its log lines (start, calls,
// background jobs, stop) say which of the four services wrote them.
use ccp_platform::telemetry::service_span;

fn http(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

impl Suite {
    /// Starts identity, accounts, delegation and then the gateway, wiring each
    /// to the addresses the others actually bound (ports may be 0).
    pub async fn start(settings: SuiteSettings, context: ServiceContext) -> anyhow::Result<Self> {
        // The embedded services call each other over plain HTTP/2 on
        // loopback: TLS is for `ccp serve` (docs/operations.md#tls).
        for (service, server) in [
            ("identity", &settings.identity.server),
            ("accounts", &settings.accounts.server),
            ("delegation", &settings.delegation.server),
            ("gateway", &settings.gateway.server),
            ("notifications", &settings.notifications.server),
        ] {
            anyhow::ensure!(
                server.tls_cert.is_empty() && server.tls_client_ca.is_empty(),
                "{service}.server.tls_cert / tls_client_ca: `ccp up` serves plain HTTP/2 on \
                 loopback; TLS is for `ccp serve` (see docs/operations.md, TLS)"
            );
        }
        let mut settings = settings.with_embedded_databases();
        std::fs::create_dir_all(&settings.data_dir)?;
        // The embedded default: identity keeps its key files in the data
        // directory and the development issuer is on unless configured off.
        if settings.identity.data_dir.is_none() {
            settings.identity.data_dir = Some(settings.data_dir.clone());
        }
        if context.environment != ccp_platform::config::Environment::Production {
            settings.identity.dev_issuer.enabled.get_or_insert(true);
        }
        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::new();

        let identity = ccp_identity::Application::build(&context, &settings.identity)
            .instrument(service_span("identity"))
            .await?;
        let identity_addr = identity.local_addr();
        let identity_facts = http(identity.internal_addr());

        settings.accounts.identity_endpoint = http(identity_addr);
        settings.accounts.identity_facts_endpoint = identity_facts.clone();
        let accounts = ccp_accounts::Application::build(&context, &settings.accounts)
            .instrument(service_span("accounts"))
            .await?;
        let accounts_addr = accounts.local_addr();
        let accounts_facts_addr = accounts.internal_addr();
        let accounts_facts = http(accounts_facts_addr);

        settings.delegation.identity_endpoint = http(identity_addr);
        settings.delegation.accounts_endpoint = http(accounts_addr);
        settings.delegation.accounts_facts_endpoint = accounts_facts.clone();
        let delegation = ccp_delegation::Application::build(&context, &settings.delegation)
            .instrument(service_span("delegation"))
            .await?;
        let delegation_addr = delegation.local_addr();

        settings.gateway.identity_endpoint = http(identity_addr);
        settings.gateway.accounts_endpoint = http(accounts_addr);
        settings.gateway.delegation_endpoint = http(delegation_addr);
        settings.gateway.identity_facts_endpoint = identity_facts;
        settings.gateway.accounts_facts_endpoint = accounts_facts;
        settings.gateway.delegation_facts_endpoint = http(delegation.internal_addr());
        let gateway = ccp_gateway::Application::build(&context, &settings.gateway)
            .instrument(service_span("gateway"))
            .await?;
        let gateway_addr = gateway.local_addr();

        // Notifications: e-mails from delegation's events (`.eml` files under the data
        // directory unless an SMTP server is configured).
        settings.notifications.identity_facts_endpoint =
            settings.gateway.identity_facts_endpoint.clone();
        settings.notifications.accounts_facts_endpoint =
            settings.gateway.accounts_facts_endpoint.clone();
        let notifications =
            ccp_notifications::Application::build(&context, &settings.notifications)
                .instrument(service_span("notifications"))
                .await?;
        let notifications_addr = notifications.local_addr();

        let signal = |stop: &watch::Sender<bool>| {
            let mut rx = stop.subscribe();
            async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            }
        };
        tasks.push((
            "gateway",
            tokio::spawn(
                gateway
                    .run_until_stopped(signal(&stop))
                    .instrument(service_span("gateway")),
            ),
        ));
        tasks.push((
            "identity",
            tokio::spawn(
                identity
                    .run_until_stopped(signal(&stop))
                    .instrument(service_span("identity")),
            ),
        ));
        tasks.push((
            "accounts",
            tokio::spawn(
                accounts
                    .run_until_stopped(signal(&stop))
                    .instrument(service_span("accounts")),
            ),
        ));
        tasks.push((
            "delegation",
            tokio::spawn(
                delegation
                    .run_until_stopped(signal(&stop))
                    .instrument(service_span("delegation")),
            ),
        ));
        tasks.push((
            "notifications",
            tokio::spawn(
                notifications
                    .run_until_stopped(signal(&stop))
                    .instrument(service_span("notifications")),
            ),
        ));

        Ok(Self {
            endpoints: Endpoints {
                gateway: gateway_addr,
                identity: identity_addr,
                accounts: accounts_addr,
                accounts_facts: accounts_facts_addr,
                delegation: delegation_addr,
                notifications: notifications_addr,
            },
            context,
            stop,
            tasks,
        })
    }

    /// Returns where each service listens.
    pub fn endpoints(&self) -> Endpoints {
        self.endpoints
    }

    /// Returns the shared runtime (its clock, internal tokens, bus and cache).
    pub fn context(&self) -> &ServiceContext {
        &self.context
    }

    /// Stops every service gracefully and waits for them to drain.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(service = name, error = %err, "service failed");
                    first_error.get_or_insert(err);
                }
                Err(join) => {
                    first_error.get_or_insert(anyhow::anyhow!("{name} panicked: {join}"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
