//! `spawn_app`: the real delegation `Application` on 127.0.0.1:0 over a test
//! database, wired like the embedded suite to the REAL identity (development
//! issuer on) and accounts services: one runtime (settable clock, internal
//! key, in-memory bus, so accounts' events reach delegation's consumer) and
//! one backend (schemas `identity`, `accounts`, `delegation`).
//!
//! Everything upstream is real: people sign in through the development
//! issuer and create their profiles; businesses are imported into accounts'
//! registry and registered through RegisterBusiness by their first BAM; the
//! provider's members join through employee requests approved with roles, or
//! are machine credentials of identity given roles; delegation verifies the
//! access tokens identity issued with identity's published keys. Access
//! tokens live 15 minutes after the clock, so moving the clock
//! ([`TestApp::set_clock`], [`TestApp::advance_clock`]) signs everyone in again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccp_accounts::AccountsSettings;
use ccp_delegation::{Application, DelegationSettings};
use ccp_identity::IdentitySettings;
use ccp_identity::oidc::DevIssuer;
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, Principal};
use ccp_platform::bus::{Delivery, EventBus, MemoryBus, StartFrom};
use ccp_platform::clock::Clock;
use ccp_platform::config::ServerSettings;
use ccp_platform::context::ServiceContext;
use ccp_platform::store::timestamp;
use ccp_platform::testing::TestBackend;
use ccp_platform::testing::tempfile_dir::TempDir;
use ccp_proto::accounts::v1 as apb;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::{Address, DomainEvent, EventType, ProgramRole, Role, RoleGrants};
use ccp_proto::delegation::v1 as pb;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::delegation::v1::relationship_facts_client::RelationshipFactsClient;
use ccp_proto::identity::v1 as ipb;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use prost::Message as _;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use uuid::Uuid;

/// Upper bound of every wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// A provider (customs broker) BN9, registered by every `spawn_app`.
pub const BROKER: &str = "123456782";
/// A client (importer) BN9 with two program accounts, registered by every `spawn_app`.
pub const IMPORTER: &str = "888316171";
/// Another valid BN9 in the registry (never registered unless a test says so).
pub const OTHER: &str = "100000009";
/// A fourth valid BN9 in the registry (never registered unless a test says so).
pub const FOURTH: &str = "200000008";

/// The test registry: (BN9, legal name, number of RM program accounts).
const REGISTRY: [(&str, &str, usize); 4] = [
    (BROKER, "Harbour Customs Brokers Inc.", 1),
    (IMPORTER, "Lakeshore Importers Ltd.", 2),
    (OTHER, "Prairie Goods Co.", 1),
    (FOURTH, "Northern Trading Co.", 1),
];

/// The registry's address of every test business.
fn registry_address() -> Address {
    Address {
        line1: "100 Queen Street West".to_owned(),
        line2: "Suite 200".to_owned(),
        city: "Toronto".to_owned(),
        province: "ON".to_owned(),
        postal_code: "M5H 2N2".to_owned(),
        country: "CA".to_owned(),
    }
}

fn registry_record(bn: &str, legal_name: &str, programs: usize) -> apb::RegistryRecord {
    let fact = |id: &str, format: apb::AnswerFormat, answer: &str| apb::KnownFact {
        question: Some(apb::KnownFactQuestion {
            id: id.to_owned(),
            text_en: format!("What is {id}?"),
            text_fr: format!("Quel est {id} ?"),
            format: format as i32,
        }),
        answer: answer.to_owned(),
    };
    apb::RegistryRecord {
        bn9: bn.to_owned(),
        legal_name: legal_name.to_owned(),
        address: Some(registry_address()),
        program_accounts: (1..=programs)
            .map(|i| apb::RegistryProgramAccount {
                reference: format!("RM{i:04}"),
                display_name: format!("{legal_name} imports {i}"),
            })
            .collect(),
        known_facts: vec![
            fact("daily_notice_total", apb::AnswerFormat::Amount, "1234.56"),
            fact("statement_date", apb::AnswerFormat::Date, "2026-01-31"),
        ],
    }
}

/// A correct registration of `bn`, typed as a person would.
fn registration(bn: &str, terms_version: &str) -> apb::RegisterBusinessRequest {
    let (_, legal_name, _) = REGISTRY
        .iter()
        .find(|(b, _, _)| *b == bn)
        .unwrap_or_else(|| panic!("{bn} is not in the test registry"));
    apb::RegisterBusinessRequest {
        request_id: Uuid::new_v4().to_string(),
        program_account: format!("{bn}RM0001"),
        legal_name: legal_name.to_uppercase(),
        address: Some(Address {
            postal_code: "m5h2n2".to_owned(),
            country: String::new(),
            ..registry_address()
        }),
        answers: vec![
            apb::KnownFactAnswer {
                question_id: "daily_notice_total".to_owned(),
                answer: "$1,234.56".to_owned(),
            },
            apb::KnownFactAnswer {
                question_id: "statement_date".to_owned(),
                answer: "2026-01-31".to_owned(),
            },
        ],
        accepted_terms_version: terms_version.to_owned(),
    }
}

/// How the test wires the services together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wiring {
    /// As in the suite: accounts publishes on the bus delegation consumes.
    Suite,
    /// Accounts publishes on a bus of its own that delegation does not read:
    /// registrations reach delegation only when it asks accounts.
    AccountsEventsCut,
}

/// A signed-in person: the issuer's subject and the current access token.
struct Session {
    subject: String,
    access_token: String,
}

/// The real identity and accounts services a test's delegation talks to.
struct Upstream {
    identity: IdentityClient<Channel>,
    accounts: AccountsClient<Channel>,
    account_facts: AccountFactsClient<Channel>,
    /// The bus accounts publishes on.
    accounts_bus: Arc<dyn EventBus>,
    dev: DevIssuer,
    terms_version: String,
    sessions: Mutex<HashMap<Principal, Session>>,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _data_dir: TempDir,
}

/// A business registered through accounts.
pub struct Registered {
    /// Its first BAM (the person who registered it).
    pub bam: Principal,
    /// The position of its BUSINESS_REGISTERED event on accounts' stream.
    pub position: String,
}

/// A running delegation service and everything a test drives it with.
pub struct TestApp {
    /// The backend's name.
    pub backend: &'static str,
    /// The runtime (bus, clock, internal tokens) shared by the three services.
    pub ctx: ServiceContext,
    /// The settable clock (move it with [`TestApp::set_clock`] or
    /// [`TestApp::advance_clock`], which keep everyone signed in).
    pub clock: Clock,
    /// The service's settings (for restarts).
    pub settings: DelegationSettings,
    upstream: Upstream,
    sweeper: Option<ccp_delegation::background::Sweeper>,
    channel: Channel,
    /// To the internal facts API (the public port unless `internal_listen` is set).
    facts_channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    run: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The BAM of the provider.
    pub broker_bam: Principal,
    /// The BAM of the client.
    pub importer_bam: Principal,
}

/// The starting instant of every test's clock.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Builds and starts identity, accounts and delegation over `backend`, imports
/// the test registry and registers the broker and the importer (the importer
/// with 2 programs), each by its own BAM.
pub async fn spawn_app(backend: &TestBackend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with a chance to change delegation's settings.
pub async fn spawn_app_with(
    backend: &TestBackend,
    change: impl FnOnce(&mut DelegationSettings),
) -> TestApp {
    spawn(backend, Wiring::Suite, change).await
}

/// Like [`spawn_app`], wired as `wiring` says.
pub async fn spawn_app_wired(backend: &TestBackend, wiring: Wiring) -> TestApp {
    spawn(backend, wiring, |_| {}).await
}

fn http(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

fn local_server() -> ServerSettings {
    ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        ..ServerSettings::default()
    }
}

async fn spawn(
    backend: &TestBackend,
    wiring: Wiring,
    change: impl FnOnce(&mut DelegationSettings),
) -> TestApp {
    let clock = Clock::settable(t0());
    let ctx = ServiceContext::in_memory(clock.clone());
    let data_dir = TempDir::new();
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    let mut run = |app_run: std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
                   stop: oneshot::Sender<()>| {
        stops.push(stop);
        tasks.push(tokio::spawn(app_run));
    };

    // Identity: the development issuer on, its key and the key-encryption
    // key in files of a temporary data directory; cheap secret hashing.
    let mut identity_settings = IdentitySettings {
        server: local_server(),
        database: backend.settings("identity"),
        data_dir: Some(data_dir.path().to_path_buf()),
        ..IdentitySettings::default()
    };
    identity_settings.dev_issuer.enabled = Some(true);
    identity_settings.machine_credentials.argon2_memory_kib = 256;
    identity_settings.machine_credentials.argon2_iterations = 1;
    let identity = ccp_identity::Application::build(&ctx, &identity_settings)
        .await
        .unwrap();
    let identity_endpoint = http(identity.local_addr());
    let dev = DevIssuer::from_settings(
        &identity_settings.dev_issuer,
        identity_settings.data_dir.as_deref(),
    )
    .unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    run(
        Box::pin(identity.run_until_stopped(async move {
            let _ = rx.await;
        })),
        stop,
    );

    // Accounts, on the shared bus unless the test cuts its events off.
    let accounts_ctx = match wiring {
        Wiring::Suite => ctx.clone(),
        Wiring::AccountsEventsCut => ServiceContext {
            bus: Arc::new(MemoryBus::new(ccp_platform::bus::DEFAULT_MAX_LEN)),
            ..ctx.clone()
        },
    };
    let accounts_settings = AccountsSettings {
        server: local_server(),
        database: backend.settings("accounts"),
        identity_endpoint: identity_endpoint.clone(),
        expiry_sweep_interval_secs: 3600,
        ..AccountsSettings::default()
    };
    let accounts = ccp_accounts::Application::build(&accounts_ctx, &accounts_settings)
        .await
        .unwrap();
    let accounts_endpoint = http(accounts.local_addr());
    let (stop, rx) = oneshot::channel::<()>();
    run(
        Box::pin(accounts.run_until_stopped(async move {
            let _ = rx.await;
        })),
        stop,
    );

    let channel = |endpoint: &str| {
        tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .unwrap()
            .connect_lazy()
    };
    let accounts_channel = channel(&accounts_endpoint);
    let upstream = Upstream {
        identity: IdentityClient::new(channel(&identity_endpoint)),
        accounts: AccountsClient::new(accounts_channel.clone()),
        account_facts: AccountFactsClient::new(accounts_channel),
        accounts_bus: accounts_ctx.bus.clone(),
        dev,
        terms_version: accounts_settings.terms_version.clone(),
        sessions: Mutex::new(HashMap::new()),
        stops,
        tasks,
        _data_dir: data_dir,
    };

    let mut settings = DelegationSettings {
        server: local_server(),
        database: backend.settings("delegation"),
        identity_endpoint,
        accounts_endpoint,
        sweep_interval_ms: 3_600_000,
        ..DelegationSettings::default()
    };
    change(&mut settings);
    let mut app = TestApp {
        backend: backend.name(),
        ctx,
        clock,
        settings,
        upstream,
        sweeper: None,
        channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
        facts_channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
        stop: None,
        run: None,
        broker_bam: Principal::Person(Uuid::nil()),
        importer_bam: Principal::Person(Uuid::nil()),
    };
    app.start().await;
    app.import_registry().await;
    app.broker_bam = app.register_business(BROKER).await.bam;
    app.importer_bam = app.register_business(IMPORTER).await.bam;
    app
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for stop in self
            .stop
            .take()
            .into_iter()
            .chain(self.upstream.stops.drain(..))
        {
            let _ = stop.send(());
        }
        if let Some(task) = self.run.take() {
            task.abort();
        }
        for task in &self.upstream.tasks {
            task.abort();
        }
    }
}

/// Adds the internal token of `service:test` to a request.
fn with_internal<T>(ctx: &ServiceContext, mut req: tonic::Request<T>) -> tonic::Request<T> {
    req.metadata_mut().insert(
        INTERNAL_TOKEN_HEADER,
        ctx.internal.mint("service:test").parse().unwrap(),
    );
    req
}

/// Adds the internal token and `access_token` as the bearer.
fn with_bearer<T>(ctx: &ServiceContext, access_token: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {access_token}").parse().unwrap(),
    );
    with_internal(ctx, req)
}

impl TestApp {
    async fn start(&mut self) {
        let app = Application::build(&self.ctx, &self.settings).await.unwrap();
        self.sweeper = Some(app.sweeper());
        let addr = app.local_addr();
        let internal_addr = app.internal_addr();
        let (stop, rx) = oneshot::channel::<()>();
        self.run = Some(tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        })));
        self.stop = Some(stop);
        self.channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        self.facts_channel =
            tonic::transport::Endpoint::from_shared(format!("http://{internal_addr}"))
                .unwrap()
                .connect_lazy();
    }

    /// Returns delegation's sweeper (the lease holder of this replica).
    pub fn sweeper(&self) -> ccp_delegation::background::Sweeper {
        self.sweeper.clone().unwrap()
    }

    /// Runs one sweep at the clock's instant.
    pub async fn sweep(&self) -> ccp_delegation::background::SweepReport {
        self.sweeper.as_ref().unwrap().sweep_once().await.unwrap()
    }

    /// Stops delegation and starts it again over the same database and bus
    /// (identity and accounts keep running).
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.start().await;
    }

    /// Stops delegation (identity and accounts keep running).
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(run) = self.run.take() {
            tokio::time::timeout(WAIT, run)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }

    /// Sets the clock and signs everyone in again (access tokens live 15
    /// minutes after the clock).
    pub async fn set_clock(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        self.sign_everyone_in_again().await;
    }

    /// Advances the clock and signs everyone in again.
    pub async fn advance_clock(&self, by: chrono::Duration) {
        self.clock.advance(by);
        self.sign_everyone_in_again().await;
    }

    async fn sign_everyone_in_again(&self) {
        let subjects: Vec<(Principal, String)> = self
            .upstream
            .sessions
            .lock()
            .unwrap()
            .iter()
            .map(|(p, s)| (*p, s.subject.clone()))
            .collect();
        for (principal, subject) in subjects {
            let session = self.sign_in(&subject).await;
            assert_eq!(session.principal, principal.to_string());
            assert!(!session.profile_required, "{principal} has a profile");
            self.upstream
                .sessions
                .lock()
                .unwrap()
                .get_mut(&principal)
                .unwrap()
                .access_token = session.access_token;
        }
    }

    /// Signs `subject` in through the development issuer at the clock's instant.
    async fn sign_in(&self, subject: &str) -> ipb::Session {
        let id_token = self
            .upstream
            .dev
            .mint(subject, self.clock.now(), Duration::from_secs(300))
            .unwrap();
        self.upstream
            .identity
            .clone()
            .sign_in(with_internal(
                &self.ctx,
                tonic::Request::new(ipb::SignInRequest { id_token }),
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// A new person: signs in for the first time through the development
    /// issuer and creates a profile; stays signed in.
    pub async fn person(&self, name: &str) -> Principal {
        let subject = format!(
            "{}-{}",
            name.to_lowercase().replace(' ', "-"),
            Uuid::new_v4()
        );
        let first = self.sign_in(&subject).await;
        assert!(first.profile_required);
        let session = self
            .upstream
            .identity
            .clone()
            .create_profile(with_bearer(
                &self.ctx,
                &first.access_token,
                ipb::CreateProfileRequest {
                    request_id: Uuid::new_v4().to_string(),
                    profile: Some(ipb::Profile {
                        legal_name: name.to_owned(),
                        email: format!("{}@example.ca", name.to_lowercase().replace(' ', ".")),
                        phone: "+1 613 555 0100".to_owned(),
                        preferred_language: ipb::Language::En as i32,
                        email_notifications: true,
                        ..ipb::Profile::default()
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap();
        let principal: Principal = session.principal.parse().unwrap();
        self.upstream.sessions.lock().unwrap().insert(
            principal,
            Session {
                subject,
                access_token: session.access_token,
            },
        );
        principal
    }

    /// Returns the current access token of a signed-in person.
    fn access_token(&self, who: &Principal) -> String {
        self.upstream
            .sessions
            .lock()
            .unwrap()
            .get(who)
            .unwrap_or_else(|| panic!("{who} is not a signed-in person of this test"))
            .access_token
            .clone()
    }

    /// Imports the test registry into accounts (internal token).
    async fn import_registry(&self) {
        let records = REGISTRY
            .iter()
            .map(|(bn, name, programs)| registry_record(bn, name, *programs))
            .collect();
        let imported = self
            .upstream
            .account_facts
            .clone()
            .import_registry(with_internal(
                &self.ctx,
                tonic::Request::new(apb::ImportRegistryRequest {
                    request_id: Uuid::new_v4().to_string(),
                    records,
                }),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(imported.accepted, 4, "{:?}", imported.rejected);
    }

    /// Registers `bn` through accounts now: a new person signs in, creates a
    /// profile and registers it (known-fact answers, current terms); waits for
    /// accounts to publish BUSINESS_REGISTERED and returns its position.
    pub async fn register_business(&self, bn: &str) -> Registered {
        let bam = self.person(&format!("BAM of {bn}")).await;
        let business = self
            .upstream
            .accounts
            .clone()
            .register_business(with_bearer(
                &self.ctx,
                &self.access_token(&bam),
                registration(bn, &self.upstream.terms_version),
            ))
            .await
            .unwrap()
            .into_inner()
            .business
            .unwrap();
        assert_eq!(business.bn9, bn);
        let mut sub = self
            .upstream
            .accounts_bus
            .subscribe(ccp_accounts::EVENT_STREAM, StartFrom::Beginning)
            .await
            .unwrap();
        let position = tokio::time::timeout(WAIT, async {
            while let Some(item) = sub.next().await {
                if let Ok(Delivery::Event(d)) = item {
                    let e = DomainEvent::decode(d.payload.as_slice()).unwrap();
                    if e.r#type == EventType::BusinessRegistered as i32
                        && e.businesses == [bn.to_owned()]
                    {
                        return d.position.as_str().to_owned();
                    }
                }
            }
            panic!("accounts' stream ended");
        })
        .await
        .expect("accounts publishes BUSINESS_REGISTERED");
        Registered { bam, position }
    }

    /// Makes a new person a member of `bn` with Editor on its RM0001: the
    /// person requests access and the business's BAM approves with the role.
    pub async fn employee(&self, bn: &str, bam: &Principal) -> Principal {
        let person = self.person(&format!("Employee of {bn}")).await;
        let mut accounts = self.upstream.accounts.clone();
        let request = accounts
            .request_employee_access(with_bearer(
                &self.ctx,
                &self.access_token(&person),
                apb::RequestEmployeeAccessRequest {
                    request_id: Uuid::new_v4().to_string(),
                    parent: format!("businesses/{bn}"),
                    note: "I file the customs declarations".to_owned(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let member = accounts
            .approve_employee_request(with_bearer(
                &self.ctx,
                &self.access_token(bam),
                apb::ApproveEmployeeRequestRequest {
                    request_id: Uuid::new_v4().to_string(),
                    name: request.name,
                    grants: Some(editor_of_rm0001(bn)),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .member
            .unwrap();
        assert_eq!(member.principal, person.to_string());
        person
    }

    /// Makes a new machine credential of `bn` (created in identity by its
    /// BAM) a member with Editor on its RM0001 (SetMemberRoles in accounts).
    pub async fn machine_credential(&self, bn: &str, bam: &Principal) -> Principal {
        let credential = self
            .upstream
            .identity
            .clone()
            .create_machine_credential(with_bearer(
                &self.ctx,
                &self.access_token(bam),
                ipb::CreateMachineCredentialRequest {
                    request_id: Uuid::new_v4().to_string(),
                    parent: format!("businesses/{bn}"),
                    display_name: "broker system".to_owned(),
                    expire_time: Some(timestamp(self.clock.now() + chrono::Duration::days(365))),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        let principal: Principal = credential.principal.parse().unwrap();
        self.upstream
            .accounts
            .clone()
            .set_member_roles(with_bearer(
                &self.ctx,
                &self.access_token(bam),
                apb::SetMemberRolesRequest {
                    request_id: Uuid::new_v4().to_string(),
                    name: format!("businesses/{bn}/members/{principal}"),
                    grants: Some(editor_of_rm0001(bn)),
                    etag: String::new(),
                },
            ))
            .await
            .unwrap();
        principal
    }

    /// Returns the accounts consumer's stored position (white-box: read from
    /// this service's schema, since no RPC exposes it).
    pub async fn consumer_position(&self, backend: &TestBackend) -> Option<String> {
        use sea_orm::ConnectionTrait as _;
        let db = ccp_platform::db::connect(&backend.settings("delegation"))
            .await
            .unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT position FROM consumer_positions WHERE consumer = 'accounts-events'",
            ))
            .await
            .unwrap();
        row.map(|r| r.try_get_by_index::<String>(0).unwrap())
    }

    /// Returns a public client.
    pub fn api(&self) -> DelegationClient<Channel> {
        DelegationClient::new(self.channel.clone())
    }

    /// Returns an internal facts client.
    pub fn facts(&self) -> RelationshipFactsClient<Channel> {
        RelationshipFactsClient::new(self.facts_channel.clone())
    }

    /// Returns the two channels: to the public port and to the facts API's.
    pub fn channels(&self) -> (Channel, Channel) {
        (self.channel.clone(), self.facts_channel.clone())
    }

    /// Wraps a message with the internal token and the access token identity
    /// issued to `who` (a person signed in by this test).
    pub fn as_<T>(&self, who: &Principal, msg: T) -> tonic::Request<T> {
        with_bearer(&self.ctx, &self.access_token(who), msg)
    }

    /// Adds the internal token only (facts calls).
    pub fn internal<T>(&self, req: tonic::Request<T>) -> tonic::Request<T> {
        with_internal(&self.ctx, req)
    }

    /// Sends a request from the broker to `client`; returns the response.
    pub async fn send(&self, client: &str) -> pb::SendRelationshipRequestResponse {
        self.api()
            .send_relationship_request(self.as_(
                &self.broker_bam,
                pb::SendRelationshipRequestRequest {
                    request_id: Uuid::new_v4().to_string(),
                    parent: format!("businesses/{BROKER}"),
                    client: client.to_owned(),
                    program_accounts: vec![],
                    note: "ITN Logistics, your customs broker".to_owned(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Returns an approval of request `id` (as the importer) at business level.
    pub fn approval(
        &self,
        id: &str,
        expire: DateTime<Utc>,
    ) -> pb::ApproveRelationshipRequestRequest {
        pb::ApproveRelationshipRequestRequest {
            request_id: Uuid::new_v4().to_string(),
            name: format!("businesses/{IMPORTER}/receivedRequests/{id}"),
            level: pb::RelationshipLevel::Business as i32,
            program_accounts: vec![],
            expire_time: Some(timestamp(expire)),
            visibility: vec![pb::Visibility::SubmittedByProvider as i32],
        }
    }

    /// Sends and approves; returns the relationship (named under the client).
    pub async fn relate(&self, expire: DateTime<Utc>) -> pb::Relationship {
        let sent = self.send(IMPORTER).await.request.unwrap();
        self.api()
            .approve_relationship_request(
                self.as_(&self.importer_bam, self.approval(&sent.id, expire)),
            )
            .await
            .unwrap()
            .into_inner()
            .relationship
            .unwrap()
    }

    /// Returns the relationship named `name` as the importer sees it.
    pub async fn get(&self, name: &str) -> pb::Relationship {
        self.api()
            .get_relationship(self.as_(
                &self.importer_bam,
                pb::GetRelationshipRequest {
                    name: name.to_owned(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Returns the pair facts of broker and importer.
    pub async fn pair_facts(&self) -> pb::PairFacts {
        self.facts()
            .get_pair_facts(self.internal(tonic::Request::new(pb::GetPairFactsRequest {
                provider: BROKER.to_owned(),
                client: IMPORTER.to_owned(),
            })))
            .await
            .unwrap()
            .into_inner()
    }

    /// Returns the number of audit records of a business.
    pub async fn audit_count(&self, bn: &str) -> usize {
        self.api()
            .list_audit_events(self.as_(
                &self.importer_bam,
                pb::ListAuditEventsRequest {
                    parent: format!("businesses/{bn}"),
                    page_size: 500,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .events
            .len()
    }

    /// Lists the received requests of `bn`.
    pub fn received_of(
        &self,
        bn: &str,
    ) -> impl std::future::Future<Output = Vec<pb::RelationshipRequest>> + use<> {
        let mut api = self.api();
        let req = self.as_(
            &self.importer_bam,
            pb::ListReceivedRequestsRequest {
                parent: format!("businesses/{bn}"),
                ..Default::default()
            },
        );
        async move {
            api.list_received_requests(req)
                .await
                .unwrap()
                .into_inner()
                .requests
        }
    }

    /// Lists the importer's received requests.
    pub async fn received(&self) -> Vec<pb::RelationshipRequest> {
        self.received_of(IMPORTER).await
    }
}

/// Editor on the business's RM0001.
fn editor_of_rm0001(bn: &str) -> RoleGrants {
    RoleGrants {
        business_manager: false,
        program_roles: vec![ProgramRole {
            program_account: format!("{bn}RM0001"),
            role: Role::Editor as i32,
        }],
    }
}

/// Collects delegation events from the bus (from the beginning) until
/// `until` holds for the collected list, within [`WAIT`].
pub async fn events_until(
    ctx: &ServiceContext,
    until: impl Fn(&[DomainEvent]) -> bool,
) -> Vec<DomainEvent> {
    let mut sub = ctx
        .bus
        .subscribe("ccp.events.delegation", StartFrom::Beginning)
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            if until(&seen) {
                return;
            }
            match sub.next().await {
                Some(Ok(Delivery::Event(d))) => {
                    seen.push(DomainEvent::decode(d.payload.as_slice()).unwrap())
                }
                Some(_) => {}
                None => return,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; saw {} events", seen.len()));
    seen
}

/// Returns the events of a type.
pub fn of_type(events: &[DomainEvent], t: EventType) -> Vec<DomainEvent> {
    events
        .iter()
        .filter(|e| e.r#type == t as i32)
        .cloned()
        .collect()
}

/// Polls `f` until it returns Some, within [`WAIT`].
pub async fn wait_for<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("condition not met in time")
}
