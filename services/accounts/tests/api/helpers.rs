//! Test harness: the real accounts Application on 127.0.0.1:0 over a test
//! database, next to the REAL identity service (its own database on the same
//! backend, schema `identity`; the development issuer on, its key and the
//! key-encryption key kept in a temporary data directory). People sign in
//! through the development issuer and create real profiles; machine
//! credentials are created and revoked through identity; accounts verifies
//! access tokens with identity's published keys and reads names and
//! credentials from identity's facts RPCs. Typed clients carry the internal
//! token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccp_accounts::{AccountsSettings, Application};
use ccp_identity::IdentitySettings;
use ccp_identity::oidc::DevIssuer;
use ccp_platform::auth::INTERNAL_TOKEN_HEADER;
use ccp_platform::clock::Clock;
use ccp_platform::config::ServerSettings;
use ccp_platform::context::ServiceContext;
use ccp_platform::testing::TestBackend;
use ccp_platform::testing::tempfile_dir::TempDir;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::{Address, ProgramRole, RoleGrants};
use ccp_proto::identity::v1 as ipb;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use chrono::{DateTime, TimeZone, Utc};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The guide's example business.
pub const ABC: &str = "123456782";
/// The guide's customs broker.
pub const ITN: &str = "888316171";

/// The real identity service, running for one test app.
pub struct IdentityService {
    /// The development issuer it trusts (the same key file).
    pub dev: DevIssuer,
    /// Its address.
    pub addr: SocketAddr,
    channel: Channel,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    // Holds the development issuer's key and the key-encryption key.
    _data_dir: TempDir,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for IdentityService {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

/// Builds and runs the real identity service over `backend` (schema
/// `identity`), sharing the test's context and clock.
pub async fn spawn_identity(backend: &TestBackend, ctx: &ServiceContext) -> IdentityService {
    let data_dir = TempDir::new();
    let mut settings = IdentitySettings {
        server: ServerSettings {
            listen: "127.0.0.1:0".to_owned(),
            ..ServerSettings::default()
        },
        database: backend.settings("identity"),
        // The key-encryption key and the development issuer's key are kept
        // in `<data_dir>` (created on first use), as in the embedded mode.
        data_dir: Some(data_dir.path().to_path_buf()),
        ..IdentitySettings::default()
    };
    settings.dev_issuer.enabled = Some(true);
    // Cheap secret hashing: the tests create machine credentials, never brute-force them.
    settings.machine_credentials.argon2_memory_kib = 256;
    settings.machine_credentials.argon2_iterations = 1;
    let app = ccp_identity::Application::build(ctx, &settings)
        .await
        .unwrap();
    let dev = DevIssuer::from_settings(&settings.dev_issuer, settings.data_dir.as_deref()).unwrap();
    let addr = app.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    IdentityService {
        dev,
        addr,
        channel,
        stop: Mutex::new(Some(tx)),
        _data_dir: data_dir,
    }
}

/// A running accounts service with what tests need around it.
pub struct TestApp {
    pub ctx: ServiceContext,
    pub clock: Clock,
    pub identity: Arc<IdentityService>,
    pub settings: AccountsSettings,
    pub channel: Channel,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// The start instant of every test clock.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// Options of a test app.
#[derive(Clone, Debug)]
pub struct Options {
    pub sweep_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { sweep_secs: 3600 }
    }
}

/// Spawns the app over `backend` with a fresh clock, context and identity service.
pub async fn spawn_app(backend: &TestBackend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

/// Spawns the app with options.
pub async fn spawn_app_with(backend: &TestBackend, options: Options) -> TestApp {
    let clock = Clock::settable(t0());
    let ctx = ServiceContext::in_memory(clock.clone());
    spawn_app_ctx(backend, options, ctx, clock).await
}

/// Spawns the app with a given context (e.g. one whose bus is a private
/// Redis); identity runs with the same context.
pub async fn spawn_app_ctx(
    backend: &TestBackend,
    options: Options,
    ctx: ServiceContext,
    clock: Clock,
) -> TestApp {
    let identity = Arc::new(spawn_identity(backend, &ctx).await);
    let settings = AccountsSettings {
        server: ServerSettings {
            listen: "127.0.0.1:0".to_owned(),
            ..ServerSettings::default()
        },
        database: backend.settings("accounts"),
        identity_endpoint: format!("http://{}", identity.addr),
        expiry_sweep_interval_secs: options.sweep_secs,
        ..AccountsSettings::default()
    };
    start(ctx, clock, identity, settings).await
}

/// Starts an accounts Application from parts (also used to restart it on the
/// same database; identity keeps running).
pub async fn start(
    ctx: ServiceContext,
    clock: Clock,
    identity: Arc<IdentityService>,
    settings: AccountsSettings,
) -> TestApp {
    // Access tokens are verified with identity's published keys (GetSigningKeys).
    let app = Application::build(&ctx, &settings).await.unwrap();
    let addr: SocketAddr = app.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    TestApp {
        ctx,
        clock,
        identity,
        settings,
        channel,
        stop: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the accounts app and waits for it to finish; returns its parts
    /// for a restart (identity keeps running).
    pub async fn stop(
        mut self,
    ) -> (
        ServiceContext,
        Clock,
        Arc<IdentityService>,
        AccountsSettings,
    ) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .unwrap()
                .unwrap();
        }
        (
            self.ctx.clone(),
            self.clock.clone(),
            self.identity.clone(),
            self.settings.clone(),
        )
    }

    /// Returns a public client.
    pub fn accounts(&self) -> AccountsClient<Channel> {
        AccountsClient::new(self.channel.clone())
    }

    /// Returns an internal facts client.
    pub fn facts(&self) -> AccountFactsClient<Channel> {
        AccountFactsClient::new(self.channel.clone())
    }

    /// Returns a client of identity's public service.
    pub fn identity_client(&self) -> IdentityClient<Channel> {
        IdentityClient::new(self.identity.channel.clone())
    }

    /// Wraps a message with the internal token and the caller's access token.
    pub fn req<T>(&self, msg: T, token: &str) -> Request<T> {
        let mut r = self.internal(msg);
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    /// Wraps a message with the internal token only.
    pub fn internal<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        let internal = self.ctx.internal.mint("service:test");
        r.metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, internal.parse().unwrap());
        r
    }

    /// Signs `subject` in at identity through the development issuer.
    async fn sign_in(&self, subject: &str) -> ipb::Session {
        let id_token = self
            .identity
            .dev
            .mint(subject, self.clock.now(), Duration::from_secs(300))
            .unwrap();
        self.identity_client()
            .sign_in(self.internal(ipb::SignInRequest { id_token }))
            .await
            .unwrap()
            .into_inner()
    }

    /// Signs a new person in at identity (development issuer) and creates
    /// their profile with the legal name `name` and an e-mail derived from it
    /// (`Bob Tremblay` → `bob.tremblay@example.com`); returns the principal
    /// and an access token of the profile session.
    pub async fn person(&self, name: &str) -> Person {
        let subject = format!("{name} {}", Uuid::new_v4());
        let first = self.sign_in(&subject).await;
        let created = self
            .identity_client()
            .create_profile(self.req(
                ipb::CreateProfileRequest {
                    request_id: rid(),
                    profile: Some(ipb::Profile {
                        legal_name: name.to_owned(),
                        email: format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
                        preferred_language: ipb::Language::En as i32,
                        ..ipb::Profile::default()
                    }),
                },
                &first.access_token,
            ))
            .await
            .unwrap()
            .into_inner();
        let session = created.session.unwrap();
        assert_eq!(session.principal, first.principal);
        Person {
            principal: session.principal,
            subject,
            token: session.access_token,
        }
    }

    /// Returns the person with a fresh access token (after the clock moved):
    /// they sign in again through the development issuer.
    pub async fn renew(&self, p: &Person) -> Person {
        let session = self.sign_in(&p.subject).await;
        assert_eq!(session.principal, p.principal);
        Person {
            principal: p.principal.clone(),
            subject: p.subject.clone(),
            token: session.access_token,
        }
    }

    /// Has `by` create a machine credential of `business` at identity
    /// ("broker system", valid a year), revoked at once when `revoked`;
    /// returns its principal.
    pub async fn credential(&self, by: &Person, business: &str, revoked: bool) -> String {
        let expire = self.clock.now() + chrono::Duration::days(365);
        self.credential_until(by, business, expire, revoked).await
    }

    /// Like [`TestApp::credential`], expiring at `expire`.
    pub async fn credential_until(
        &self,
        by: &Person,
        business: &str,
        expire: DateTime<Utc>,
        revoked: bool,
    ) -> String {
        let mut identity = self.identity_client();
        let created = identity
            .create_machine_credential(self.req(
                ipb::CreateMachineCredentialRequest {
                    request_id: rid(),
                    parent: format!("businesses/{business}"),
                    display_name: "broker system".to_owned(),
                    expire_time: Some(ccp_platform::store::timestamp(expire)),
                },
                &by.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        if revoked {
            let after = identity
                .revoke_machine_credential(self.req(
                    ipb::RevokeMachineCredentialRequest {
                        request_id: rid(),
                        name: created.name.clone(),
                        reason: "the broker system was retired".to_owned(),
                    },
                    &by.token,
                ))
                .await
                .unwrap()
                .into_inner()
                .credential
                .unwrap();
            assert!(after.revoke_time.is_some());
        }
        assert!(created.principal.starts_with("credential:"));
        created.principal
    }

    /// Imports the test registry.
    pub async fn import_registry(&self) -> pb::ImportRegistryResponse {
        self.facts()
            .import_registry(self.internal(pb::ImportRegistryRequest {
                request_id: Uuid::new_v4().to_string(),
                records: registry(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    /// Registers ABC Windows & Doors with `bam` as its first BAM.
    pub async fn register_abc(&self, bam: &Person) -> pb::Business {
        self.accounts()
            .register_business(self.req(abc_registration(), &bam.token))
            .await
            .unwrap()
            .into_inner()
            .business
            .unwrap()
    }

    /// Registers ABC and adds `person` as a member with `grants` through a request.
    pub async fn join(&self, bam: &Person, person: &Person, grants: RoleGrants) -> pb::Member {
        let mut c = self.accounts();
        let r = c
            .request_employee_access(self.req(
                pb::RequestEmployeeAccessRequest {
                    request_id: Uuid::new_v4().to_string(),
                    parent: format!("businesses/{ABC}"),
                    note: "Hi, I need access to make corrections and adjustments".to_owned(),
                },
                &person.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        c.approve_employee_request(self.req(
            pb::ApproveEmployeeRequestRequest {
                request_id: Uuid::new_v4().to_string(),
                name: r.name,
                grants: Some(grants),
            },
            &bam.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap()
    }

    /// Returns a member.
    pub async fn member(&self, who: &Person, principal: &str) -> Result<pb::Member, Status> {
        self.accounts()
            .get_member(self.req(
                pb::GetMemberRequest {
                    name: format!("businesses/{ABC}/members/{principal}"),
                },
                &who.token,
            ))
            .await
            .map(Response::into_inner)
    }

    /// Returns the role facts of a principal.
    pub async fn role_facts(&self, principal: &str) -> pb::RoleFacts {
        self.facts()
            .get_role_facts(self.internal(pb::GetRoleFactsRequest {
                principal: principal.to_owned(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    /// Returns the actions of the business's audit records.
    pub async fn audit_actions(&self, who: &Person, bn9: &str) -> Vec<String> {
        self.accounts()
            .list_audit_events(self.req(
                pb::ListAuditEventsRequest {
                    parent: format!("businesses/{bn9}"),
                    page_size: 500,
                    ..Default::default()
                },
                &who.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .events
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

/// A signed-in person.
#[derive(Clone, Debug)]
pub struct Person {
    pub principal: String,
    /// Their subject at the development issuer.
    pub subject: String,
    pub token: String,
}

/// Counts the spans named `name` whose target starts with `target`, with the
/// value of their `count` field, created on this thread while the guard
/// lives. `#[tokio::test]` runs the test and every service it spawns on one
/// thread, so this observes identity's own `#[tracing::instrument]` spans of
/// this test's calls only (e.g. `get_profiles` in `ccp_identity`).
#[derive(Clone, Debug, Default)]
pub struct SpanCounter {
    calls: Arc<Mutex<Vec<u64>>>,
}

struct SpanCountLayer {
    name: &'static str,
    target: &'static str,
    calls: Arc<Mutex<Vec<u64>>>,
}

struct CountField(u64);

impl tracing::field::Visit for CountField {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "count" {
            self.0 = value;
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "count" {
            self.0 = u64::try_from(value).unwrap_or(0);
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanCountLayer {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let m = attrs.metadata();
        if m.name() == self.name && m.target().starts_with(self.target) {
            let mut count = CountField(0);
            attrs.record(&mut count);
            self.calls.lock().unwrap().push(count.0);
        }
    }
}

impl SpanCounter {
    /// Starts counting on this thread; counting stops when the guard drops.
    pub fn install(
        name: &'static str,
        target: &'static str,
    ) -> (Self, tracing::subscriber::DefaultGuard) {
        use tracing_subscriber::layer::SubscriberExt as _;
        let this = Self::default();
        let layer = SpanCountLayer {
            name,
            target,
            calls: this.calls.clone(),
        };
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        (this, guard)
    }

    /// Returns the `count` field of every span seen so far, in order.
    pub fn calls(&self) -> Vec<u64> {
        self.calls.lock().unwrap().clone()
    }
}

/// A new request id.
pub fn rid() -> String {
    Uuid::new_v4().to_string()
}

/// Grants of one role on one ABC program.
pub fn role(reference: &str, role: ccp_proto::common::v1::Role) -> RoleGrants {
    RoleGrants {
        business_manager: false,
        program_roles: vec![ProgramRole {
            program_account: format!("{ABC}{reference}"),
            role: role as i32,
        }],
    }
}

/// BAM grants.
pub fn bam() -> RoleGrants {
    RoleGrants {
        business_manager: true,
        program_roles: Vec::new(),
    }
}

fn fact(id: &str, format: pb::AnswerFormat, answer: &str) -> pb::KnownFact {
    pb::KnownFact {
        question: Some(pb::KnownFactQuestion {
            id: id.to_owned(),
            text_en: format!("What is {id}?"),
            text_fr: format!("Quel est {id} ?"),
            format: format as i32,
        }),
        answer: answer.to_owned(),
    }
}

/// ABC's registered address.
pub fn abc_address() -> Address {
    Address {
        line1: "100 Queen Street West".to_owned(),
        line2: "Suite 200".to_owned(),
        city: "Toronto".to_owned(),
        province: "ON".to_owned(),
        postal_code: "M5H 2N2".to_owned(),
        country: "CA".to_owned(),
    }
}

fn program(reference: &str, name: &str) -> pb::RegistryProgramAccount {
    pb::RegistryProgramAccount {
        reference: reference.to_owned(),
        display_name: name.to_owned(),
    }
}

/// The test registry: ABC Windows & Doors and ITN Logistics.
pub fn registry() -> Vec<pb::RegistryRecord> {
    vec![
        pb::RegistryRecord {
            bn9: ABC.to_owned(),
            legal_name: "ABC Windows & Doors Inc.".to_owned(),
            address: Some(abc_address()),
            program_accounts: vec![
                program("RM0001", "ABC Windows"),
                program("RM0002", "ABC Doors"),
            ],
            known_facts: vec![
                fact("daily_notice_total", pb::AnswerFormat::Amount, "1234.56"),
                fact("statement_date", pb::AnswerFormat::Date, "2026-02-15"),
            ],
        },
        pb::RegistryRecord {
            bn9: ITN.to_owned(),
            legal_name: "ITN Logistics Inc.".to_owned(),
            address: Some(Address {
                line1: "6725 Airport Road".to_owned(),
                line2: String::new(),
                city: "Mississauga".to_owned(),
                province: "ON".to_owned(),
                postal_code: "L4V 1V2".to_owned(),
                country: "CA".to_owned(),
            }),
            program_accounts: vec![program("RM0001", "ITN Logistics")],
            known_facts: vec![fact(
                "daily_notice_total",
                pb::AnswerFormat::Amount,
                "98765.43",
            )],
        },
    ]
}

/// A correct registration of ABC (written as a person would type it).
pub fn abc_registration() -> pb::RegisterBusinessRequest {
    pb::RegisterBusinessRequest {
        request_id: rid(),
        program_account: format!("{ABC}RM0001"),
        legal_name: "  abc   WINDOWS & Doors inc. ".to_owned(),
        address: Some(Address {
            line1: "100  Queen Street West".to_owned(),
            line2: "suite 200".to_owned(),
            city: "TORONTO".to_owned(),
            province: "on".to_owned(),
            postal_code: "m5h2n2".to_owned(),
            country: String::new(),
        }),
        answers: vec![
            pb::KnownFactAnswer {
                question_id: "daily_notice_total".to_owned(),
                answer: "1,234.56".to_owned(),
            },
            pb::KnownFactAnswer {
                question_id: "statement_date".to_owned(),
                answer: "2026-02-15".to_owned(),
            },
        ],
        accepted_terms_version: ccp_accounts::config::DEFAULT_TERMS_VERSION.to_owned(),
    }
}

/// Returns the field names of a status's violations.
pub fn fields(status: &Status) -> Vec<String> {
    ccp_platform::error::field_violations(status)
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Returns the google.rpc.ErrorInfo reason of a status, checking its domain.
pub fn reason(status: &Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    let info = status.get_details_error_info()?;
    assert_eq!(info.domain, ccp_platform::error::ERROR_DOMAIN);
    Some(info.reason)
}

/// Returns the google.rpc.RetryInfo delay of a status.
pub fn retry_delay(status: &Status) -> Option<std::time::Duration> {
    use tonic_types::StatusExt as _;
    status.get_details_retry_info()?.retry_delay
}
