//! The real suite in one process: identity, accounts and delegation (SQLite)
//! and one or more gateway replicas, sharing one [`ServiceContext`] (in
//! memory, or a Redis cache and bus under a unique prefix). Every service can
//! be stopped on its own (the fault tests stop accounts).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ccp_gateway::GatewaySettings;
use ccp_gateway::facts::Trust;
use ccp_identity::config::IdentitySettings;
use ccp_identity::oidc::DevIssuer;
use ccp_identity::secrets::KeyEncryptionKey;
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, InternalTokens};
use ccp_platform::bus::RedisBus;
use ccp_platform::cache::RedisCache;
use ccp_platform::clock::Clock;
use ccp_platform::config::{Environment, ServerSettings};
use ccp_platform::context::ServiceContext;
use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use chrono::{DateTime, TimeZone as _, Utc};
use secrecy::SecretString;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub const DEV_SEED: [u8; 32] = [42; 32];

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

/// A running server task with its own stop signal.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    fn spawn<F>(run: impl FnOnce(futures::future::BoxFuture<'static, ()>) -> F) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let signal: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
            let _ = rx.await;
        });
        Self {
            stop: Some(tx),
            task: Some(tokio::spawn(run(signal))),
        }
    }

    /// Stops the server and waits (bounded) for it to drain.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One gateway replica.
pub struct Replica {
    pub trust: Arc<Trust>,
    /// Its facts cache (for its hit and miss counters).
    pub facts: ccp_gateway::facts::FactsCache,
    pub channel: Channel,
    /// Its address, `http://127.0.0.1:port`, for callers of their own connection.
    pub url: String,
    /// Held: dropping it stops the replica.
    _running: Running,
}

impl Replica {
    pub fn identity(&self) -> IdentityClient<Channel> {
        IdentityClient::new(self.channel.clone())
    }
    pub fn accounts(&self) -> AccountsClient<Channel> {
        AccountsClient::new(self.channel.clone())
    }
    pub fn delegation(&self) -> DelegationClient<Channel> {
        DelegationClient::new(self.channel.clone())
    }
    pub fn authorization(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::new(self.channel.clone())
    }
}

/// The suite: three real services and the gateway replicas in front.
pub struct Suite {
    pub ctx: ServiceContext,
    pub clock: Clock,
    pub dev: DevIssuer,
    pub identity_settings: IdentitySettings,
    pub kek: KeyEncryptionKey,
    pub identity_addr: SocketAddr,
    pub accounts_addr: SocketAddr,
    pub delegation_addr: SocketAddr,
    /// The calls accounts and delegation have served (public and facts).
    pub accounts_served: Arc<std::sync::atomic::AtomicU64>,
    pub delegation_served: Arc<std::sync::atomic::AtomicU64>,
    /// Held: dropping it stops identity.
    _identity: Running,
    pub accounts: Running,
    /// Held: dropping it stops delegation.
    _delegation: Running,
    pub gateways: Vec<Replica>,
    _backend: TestBackend,
}

pub fn listen() -> ServerSettings {
    ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        ..ServerSettings::default()
    }
}

pub fn http(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// An in-memory runtime with a settable clock.
pub fn memory_context() -> ServiceContext {
    ServiceContext::in_memory(Clock::settable(t0()))
}

/// A runtime on the Redis at `url` under a fresh prefix, with a settable clock.
pub async fn redis_context(url: &str) -> ServiceContext {
    let clock = Clock::settable(t0());
    let key = base64::engine::general_purpose::STANDARD
        .decode(InternalTokens::generate_key())
        .unwrap();
    let prefix = ccp_platform::testing::unique_prefix();
    ServiceContext {
        environment: Environment::Test,
        internal: Arc::new(InternalTokens::new(
            &key,
            Duration::from_secs(300),
            clock.clone(),
        )),
        clock,
        bus: Arc::new(RedisBus::connect(url, prefix.clone()).await.unwrap()),
        cache: Arc::new(RedisCache::connect(url, prefix).await.unwrap()),
        upstream: Default::default(),
        resolver: Arc::new(ccp_platform::balance::DnsResolver),
    }
}

impl Suite {
    /// Starts the services and `replicas` gateways on `ctx`, imports the registry.
    pub async fn start(ctx: ServiceContext, replicas: usize) -> Self {
        Self::start_on(ctx, replicas, TestBackend::sqlite()).await
    }

    /// As [`Suite::start`], the services' databases on `backend` (SQLite or
    /// a PostgreSQL database of the test's own).
    pub async fn start_on(ctx: ServiceContext, replicas: usize, backend: TestBackend) -> Self {
        let clock = ctx.clock.clone();
        let kek = KeyEncryptionKey::generate();
        let mut identity_settings = IdentitySettings {
            server: listen(),
            database: backend.settings("identity"),
            key_encryption_key: SecretString::from(kek.to_base64()),
            ..IdentitySettings::default()
        };
        identity_settings.dev_issuer.enabled = Some(true);
        identity_settings.dev_issuer.key =
            SecretString::from(base64::engine::general_purpose::STANDARD.encode(DEV_SEED));
        identity_settings.machine_credentials.argon2_memory_kib = 256;
        identity_settings.machine_credentials.argon2_iterations = 1;
        let dev = DevIssuer::from_settings(&identity_settings.dev_issuer, None).unwrap();

        let identity = ccp_identity::Application::build(&ctx, &identity_settings)
            .await
            .expect("identity builds");
        let identity_addr = identity.local_addr();
        let identity = Running::spawn(|s| identity.run_until_stopped(s));

        let accounts_settings = ccp_accounts::config::AccountsSettings {
            server: listen(),
            database: backend.settings("accounts"),
            identity_endpoint: http(identity_addr),
            ..Default::default()
        };
        let accounts = ccp_accounts::Application::build(&ctx, &accounts_settings)
            .await
            .expect("accounts builds");
        let accounts_addr = accounts.local_addr();
        let accounts_served = accounts.served_calls();
        let accounts = Running::spawn(|s| accounts.run_until_stopped(s));

        let delegation_settings = ccp_delegation::config::DelegationSettings {
            server: listen(),
            database: backend.settings("delegation"),
            identity_endpoint: http(identity_addr),
            accounts_endpoint: http(accounts_addr),
            ..Default::default()
        };
        let delegation = ccp_delegation::Application::build(&ctx, &delegation_settings)
            .await
            .expect("delegation builds");
        let delegation_addr = delegation.local_addr();
        let delegation_served = delegation.served_calls();
        let delegation = Running::spawn(|s| delegation.run_until_stopped(s));

        let mut suite = Self {
            ctx,
            clock,
            dev,
            identity_settings,
            kek,
            identity_addr,
            accounts_addr,
            delegation_addr,
            accounts_served,
            delegation_served,
            _identity: identity,
            accounts,
            _delegation: delegation,
            gateways: Vec::new(),
            _backend: backend,
        };
        for _ in 0..replicas {
            suite.add_gateway().await;
        }
        suite.import_registry().await;
        suite
    }

    /// Starts one more gateway replica and waits until it trusts its cache.
    pub async fn add_gateway(&mut self) -> usize {
        self.add_gateway_with(|_| {}).await
    }

    /// Starts one more gateway replica with its settings changed by `tweak`
    /// (e.g. an upstream behind a faulty proxy) and waits until it trusts its cache.
    pub async fn add_gateway_with(&mut self, tweak: impl FnOnce(&mut GatewaySettings)) -> usize {
        let mut settings = self.gateway_settings();
        tweak(&mut settings);
        let replica = start_gateway(&self.ctx, &settings).await;
        self.gateways.push(replica);
        self.gateways.len() - 1
    }

    /// A gateway's settings on this suite's services (no rate limit).
    pub fn gateway_settings(&self) -> GatewaySettings {
        GatewaySettings {
            server: listen(),
            identity_endpoint: http(self.identity_addr),
            accounts_endpoint: http(self.accounts_addr),
            delegation_endpoint: http(self.delegation_addr),
            rate_limit_per_second: 0,
            ..GatewaySettings::default()
        }
    }

    pub fn gw(&self) -> &Replica {
        &self.gateways[0]
    }

    /// Wraps a message with the internal token (an internal caller of the gateway).
    pub fn internal<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.metadata_mut().insert(
            INTERNAL_TOKEN_HEADER,
            self.ctx.internal.mint("service:test").parse().unwrap(),
        );
        r
    }

    async fn import_registry(&self) {
        self.import(registry()).await;
    }

    /// Imports registry records through accounts' ImportRegistry.
    pub async fn import(&self, records: Vec<acc::RegistryRecord>) {
        let channel = Channel::from_shared(http(self.accounts_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut facts = AccountFactsClient::new(channel);
        let response = facts
            .import_registry(self.internal(acc::ImportRegistryRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                records,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(response.rejected.is_empty(), "{:?}", response.rejected);
    }
}

/// Starts a gateway replica on `ctx` and waits until it trusts its cache.
pub async fn start_gateway(ctx: &ServiceContext, settings: &GatewaySettings) -> Replica {
    let app = ccp_gateway::Application::build(ctx, settings)
        .await
        .expect("gateway builds");
    let addr = app.local_addr();
    let trust = app.trust();
    let facts = app.facts();
    let running = Running::spawn(|s| app.run_until_stopped(s));
    let channel = Channel::from_shared(http(addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    wait_for("gateway trusts its cache", || trust.is_trusted()).await;
    Replica {
        trust,
        facts,
        channel,
        url: http(addr),
        _running: running,
    }
}

/// Waits (bounded, 10 s) until `ok` holds.
pub async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting: {what}"));
}

/// The demo registry plus one more provider (`ENDER`, a copy of Northern Lights).
pub fn registry() -> Vec<acc::RegistryRecord> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/demo/registry.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut records: Vec<acc::RegistryRecord> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(record_of)
        .collect();
    let mut ender = records
        .iter()
        .find(|r| r.bn9 == crate::world::NORTHERN)
        .unwrap()
        .clone();
    ender.bn9 = crate::world::ENDER.to_owned();
    ender.legal_name = "Ender Brokers Inc.".to_owned();
    records.push(ender);
    records
}

fn record_of(r: &serde_json::Value) -> acc::RegistryRecord {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let a = &r["address"];
    acc::RegistryRecord {
        bn9: s(&r["bn9"]),
        legal_name: s(&r["legal_name"]),
        address: Some(ccp_proto::common::v1::Address {
            line1: s(&a["line1"]),
            line2: s(&a["line2"]),
            city: s(&a["city"]),
            province: s(&a["province"]),
            postal_code: s(&a["postal_code"]),
            country: s(&a["country"]),
        }),
        program_accounts: r["program_accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| acc::RegistryProgramAccount {
                reference: s(&p["reference"]),
                display_name: s(&p["display_name"]),
            })
            .collect(),
        known_facts: r["known_facts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| acc::KnownFact {
                question: Some(acc::KnownFactQuestion {
                    id: s(&f["id"]),
                    text_en: s(&f["text_en"]),
                    text_fr: s(&f["text_fr"]),
                    format: match f["format"].as_str().unwrap_or_default() {
                        "AMOUNT" => acc::AnswerFormat::Amount as i32,
                        "DATE" => acc::AnswerFormat::Date as i32,
                        _ => acc::AnswerFormat::Text as i32,
                    },
                }),
                answer: s(&f["answer"]),
            })
            .collect(),
    }
}
