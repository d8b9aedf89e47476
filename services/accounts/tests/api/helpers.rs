//! Test harness: the real accounts Application on 127.0.0.1:0 over a test
//! database, an in-test identity double (IdentityFacts from an in-memory map,
//! until the real identity service is merged), access tokens from a
//! TokenMinter, and typed clients carrying the internal token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccp_accounts::{AccountsSettings, Application};
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, StaticKeySource, TokenMinter};
use ccp_platform::clock::Clock;
use ccp_platform::config::ServerSettings;
use ccp_platform::context::ServiceContext;
use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::{Address, ProgramRole, RoleGrants};
use ccp_proto::identity::v1 as ipb;
use ccp_proto::identity::v1::identity_facts_server::{IdentityFacts, IdentityFactsServer};
use chrono::{DateTime, TimeZone, Utc};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The guide's example business.
pub const ABC: &str = "123456782";
/// The guide's customs broker.
pub const ITN: &str = "888316171";

/// A credential as identity knows it.
#[derive(Clone, Debug)]
pub struct CredentialFact {
    pub business: String,
    pub revoked: bool,
    pub expire_time: DateTime<Utc>,
    pub label: String,
}

/// The identity double's data.
#[derive(Default, Debug)]
pub struct IdentityData {
    pub profiles: HashMap<Uuid, (String, String)>,
    pub credentials: HashMap<Uuid, CredentialFact>,
}

/// IdentityFacts served from an in-memory map (a test double of the identity service).
#[derive(Clone, Default, Debug)]
pub struct IdentityDouble {
    pub data: Arc<Mutex<IdentityData>>,
    pub get_profiles_calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl IdentityFacts for IdentityDouble {
    async fn get_profiles(
        &self,
        request: Request<ipb::GetProfilesRequest>,
    ) -> Result<Response<ipb::GetProfilesResponse>, Status> {
        self.get_profiles_calls.fetch_add(1, Ordering::SeqCst);
        let data = self.data.lock().unwrap();
        let mut out = ipb::GetProfilesResponse::default();
        for id in request.into_inner().profile_ids {
            match Uuid::parse_str(&id)
                .ok()
                .and_then(|u| data.profiles.get(&u))
            {
                Some((name, email)) => out.profiles.push(ipb::ProfileSummary {
                    profile_id: id.clone(),
                    principal: format!("person:{id}"),
                    legal_name: name.clone(),
                    email: email.clone(),
                    preferred_language: 1,
                }),
                None => out.missing.push(id),
            }
        }
        Ok(Response::new(out))
    }

    async fn get_credential(
        &self,
        request: Request<ipb::GetCredentialRequest>,
    ) -> Result<Response<ipb::CredentialFacts>, Status> {
        let id = request.into_inner().credential_id;
        let data = self.data.lock().unwrap();
        let out = match Uuid::parse_str(&id)
            .ok()
            .and_then(|u| data.credentials.get(&u))
        {
            Some(c) => ipb::CredentialFacts {
                exists: true,
                principal: format!("credential:{id}"),
                business: c.business.clone(),
                expire_time: Some(ccp_platform::store::timestamp(c.expire_time)),
                revoked: c.revoked,
                revoke_time: None,
                display_name: c.label.clone(),
            },
            None => ipb::CredentialFacts::default(),
        };
        Ok(Response::new(out))
    }
}

/// Serves the identity double on 127.0.0.1:0 and returns its address.
pub async fn spawn_identity(double: IdentityDouble) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(IdentityFactsServer::new(double))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    addr
}

/// A running accounts service with what tests need around it.
pub struct TestApp {
    pub ctx: ServiceContext,
    pub clock: Clock,
    pub minter: Arc<TokenMinter>,
    pub identity: IdentityDouble,
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

/// Spawns the app over `backend` with a fresh clock, context and identity double.
pub async fn spawn_app(backend: &TestBackend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

/// Spawns the app with options.
pub async fn spawn_app_with(backend: &TestBackend, options: Options) -> TestApp {
    let clock = Clock::settable(t0());
    let ctx = ServiceContext::in_memory(clock.clone());
    spawn_app_ctx(backend, options, ctx, clock).await
}

/// Spawns the app with a given context (e.g. one whose bus is a private Redis).
pub async fn spawn_app_ctx(
    backend: &TestBackend,
    options: Options,
    ctx: ServiceContext,
    clock: Clock,
) -> TestApp {
    let minter = Arc::new(TokenMinter::new(clock.clone()).unwrap());
    let identity = IdentityDouble::default();
    let identity_addr = spawn_identity(identity.clone()).await;
    let settings = AccountsSettings {
        server: ServerSettings {
            listen: "127.0.0.1:0".to_owned(),
            ..ServerSettings::default()
        },
        database: backend.settings("accounts"),
        identity_endpoint: format!("http://{identity_addr}"),
        expiry_sweep_interval_secs: options.sweep_secs,
        ..AccountsSettings::default()
    };
    start(ctx, clock, minter, identity, settings).await
}

/// Starts an Application from parts (also used to restart on the same database).
pub async fn start(
    ctx: ServiceContext,
    clock: Clock,
    minter: Arc<TokenMinter>,
    identity: IdentityDouble,
    settings: AccountsSettings,
) -> TestApp {
    let keys = Arc::new(StaticKeySource(minter.signer().jwks_json()));
    let app = Application::build_with_key_source(&ctx, &settings, keys)
        .await
        .unwrap();
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
        minter,
        identity,
        settings,
        channel,
        stop: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the app and waits for it to finish; returns its parts for a restart.
    pub async fn stop(
        mut self,
    ) -> (
        ServiceContext,
        Clock,
        Arc<TokenMinter>,
        IdentityDouble,
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
            self.minter.clone(),
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

    /// Wraps a message with the internal token and the caller's access token.
    pub fn req<T>(&self, msg: T, token: &str) -> Request<T> {
        let mut r = Request::new(msg);
        let internal = self.ctx.internal.mint("service:test");
        r.metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, internal.parse().unwrap());
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

    /// Creates a person known to identity and returns (principal, access token).
    pub fn person(&self, name: &str) -> Person {
        let id = Uuid::new_v4();
        self.identity.data.lock().unwrap().profiles.insert(
            id,
            (
                name.to_owned(),
                format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
            ),
        );
        Person {
            principal: format!("person:{id}"),
            token: self.minter.person(id).unwrap(),
        }
    }

    /// Returns the person with a fresh access token (after the clock moved).
    pub fn renew(&self, p: &Person) -> Person {
        let id = p
            .principal
            .trim_start_matches("person:")
            .parse::<Uuid>()
            .unwrap();
        Person {
            principal: p.principal.clone(),
            token: self.minter.person(id).unwrap(),
        }
    }

    /// Creates a machine credential known to identity and returns its principal.
    pub fn credential(&self, business: &str, revoked: bool) -> String {
        let id = Uuid::new_v4();
        self.identity.data.lock().unwrap().credentials.insert(
            id,
            CredentialFact {
                business: business.to_owned(),
                revoked,
                expire_time: t0() + chrono::Duration::days(365),
                label: "broker system".to_owned(),
            },
        );
        format!("credential:{id}")
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
    pub token: String,
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
