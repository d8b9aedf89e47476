//! What every scenario starts: the embedded suite in a throw-away data
//! directory, extra gateway replicas it can observe (facts-cache counters),
//! channels on loopback, and the seeding of a realistic dataset through the
//! services' real RPCs (dev-issuer sign-in, profiles, registry import,
//! registrations, employees, relationships, assignments).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, InternalTokens};
use ccp_platform::context::ServiceContext;
use ccp_platform::store::timestamp;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{Address, ProgramRole, Role, RoleGrants};
use ccp_proto::delegation::v1 as del;
use ccp_proto::identity::v1 as idn;
use ccp_types::Bn9;
use tonic::Request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::embedded::Suite;
use crate::settings::SuiteSettings;

/// Upper bound of every wait for the system to settle.
pub const SETTLE: Duration = Duration::from_secs(10);

/// The embedded suite of a scenario, in its own data directory.
#[derive(Debug)]
pub struct Embedded {
    /// The running suite.
    pub suite: Suite,
    /// The settings it was started with (dev-issuer key, data directory).
    pub settings: SuiteSettings,
    dir: PathBuf,
}

/// Returns suite settings on a fresh data directory, every server on
/// 127.0.0.1:0, and no per-principal rate limit at the gateway (the
/// benchmark measures the path, not the limiter).
pub fn bench_settings() -> SuiteSettings {
    let dir = std::env::temp_dir().join(format!("ccp-bench-{}", Uuid::new_v4()));
    let mut settings = SuiteSettings {
        data_dir: dir,
        ..SuiteSettings::default()
    };
    settings.on_spare_loopback_ports();
    settings.gateway.rate_limit_per_second = 0;
    settings
}

impl Embedded {
    /// Starts the four services on `settings` and `context`.
    pub async fn start(settings: SuiteSettings, context: ServiceContext) -> anyhow::Result<Self> {
        let dir = settings.data_dir.clone();
        let suite = Suite::start(settings.clone(), context).await?;
        Ok(Self {
            suite,
            settings,
            dir,
        })
    }

    /// Starts one more gateway replica on the suite's services and runtime.
    pub async fn gateway(&self) -> anyhow::Result<Gateway> {
        Gateway::start(self.suite.context(), &self.settings, self.suite.endpoints()).await
    }

    /// Stops the suite and removes its data directory.
    pub async fn stop(self) -> anyhow::Result<()> {
        let stopped = self.suite.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
        stopped
    }
}

/// A gateway replica started by the benchmark, whose facts cache it can observe.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its facts cache (hit and miss counters).
    pub facts: ccp_gateway::facts::FactsCache,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Starts a gateway on `context` calling the services at `endpoints`, and
    /// waits until its event consumer is live (cached facts trusted).
    pub async fn start(
        context: &ServiceContext,
        settings: &SuiteSettings,
        endpoints: crate::embedded::Endpoints,
    ) -> anyhow::Result<Self> {
        let mut gw = settings.gateway.clone();
        gw.server.listen = "127.0.0.1:0".to_owned();
        gw.identity_endpoint = format!("http://{}", endpoints.identity);
        gw.accounts_endpoint = format!("http://{}", endpoints.accounts);
        gw.delegation_endpoint = format!("http://{}", endpoints.delegation);
        let app = ccp_gateway::Application::build(context, &gw).await?;
        let addr = app.local_addr();
        let facts = app.facts();
        let trust = app.trust();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        tokio::time::timeout(SETTLE, async {
            while !trust.is_trusted() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .context("the gateway's event consumer did not become live")?;
        Ok(Self {
            addr,
            facts,
            stop: Some(stop),
            task,
        })
    }

    /// Stops the replica and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?
    }
}

/// Opens `n` HTTP/2 connections to `addr` (loopback only).
pub async fn channels(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Channel>> {
    anyhow::ensure!(addr.ip().is_loopback(), "load goes to loopback only");
    let mut out = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        out.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }
    Ok(out)
}

/// Returns the 9-digit BN with its Luhn check digit for an 8-digit base
/// (taken modulo 100,000,000).
pub fn bn9(base: u32) -> String {
    Bn9::from_base(base % 100_000_000).map_or_else(String::new, |bn| bn.to_string())
}

/// A signed-in person with a profile.
#[derive(Debug, Clone)]
pub struct Person {
    /// `person:<uuid>`.
    pub principal: String,
    /// An access token naming the profile.
    pub token: String,
}

/// A member and its grant.
#[derive(Debug, Clone)]
pub struct Member {
    /// The person.
    pub person: Person,
    /// The program account it holds a role on.
    pub program: String,
    /// Its role there.
    pub role: Role,
    /// Its current etag.
    pub etag: String,
}

/// A registered business.
#[derive(Debug, Clone)]
pub struct Business {
    /// Its BN9.
    pub bn9: String,
    /// Its program accounts (BN15).
    pub programs: Vec<String>,
    /// Its first BAM.
    pub bam: Person,
    /// Its other members.
    pub members: Vec<Member>,
}

/// How big a dataset to seed.
#[derive(Debug, Clone, Copy)]
pub struct DatasetSize {
    /// Client (importer) businesses.
    pub clients: usize,
    /// Members of each client besides its BAM.
    pub members_per_client: usize,
    /// Employees of the broker besides its BAM.
    pub broker_employees: usize,
    /// Clients the broker has an active relationship with (the first ones).
    pub related: usize,
    /// Clients each broker employee is assigned to.
    pub assignments_per_employee: usize,
}

/// What was seeded.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The customs broker (provider).
    pub broker: Business,
    /// The importers (clients).
    pub clients: Vec<Business>,
    /// Indices of the clients related to the broker.
    pub related: Vec<usize>,
    /// (broker employee index, client index) assignments.
    pub assignments: Vec<(usize, usize)>,
    /// A registered business nobody in the dataset is related to.
    pub stranger: Business,
}

/// Calls the services directly as the gateway would: internal token plus the
/// caller's access token.
#[derive(Debug, Clone)]
pub struct Seeder {
    settings: SuiteSettings,
    internal: Arc<InternalTokens>,
    identity: Channel,
    accounts: Channel,
    /// Accounts' facts API (ImportRegistry).
    accounts_facts: Channel,
    delegation: Channel,
    next_base: Arc<std::sync::atomic::AtomicU32>,
}

fn rid() -> String {
    Uuid::new_v4().to_string()
}

impl Seeder {
    /// Returns a seeder for the suite.
    pub async fn new(embedded: &Embedded) -> anyhow::Result<Self> {
        let e = embedded.suite.endpoints();
        let one = |addr| async move { channels(addr, 1).await.map(|mut v| v.remove(0)) };
        Ok(Self {
            settings: embedded.settings.clone(),
            internal: embedded.suite.context().internal.clone(),
            identity: one(e.identity).await?,
            accounts: one(e.accounts).await?,
            accounts_facts: one(e.accounts_facts).await?,
            delegation: one(e.delegation).await?,
            next_base: Arc::new(std::sync::atomic::AtomicU32::new(20_000_000)),
        })
    }

    /// Wraps a message with an internal token and, when given, an access token.
    pub fn req<T>(&self, msg: T, token: Option<&str>) -> anyhow::Result<Request<T>> {
        let mut req = Request::new(msg);
        req.metadata_mut().insert(
            INTERNAL_TOKEN_HEADER,
            self.internal.mint("service:bench").parse()?,
        );
        if let Some(token) = token {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
        }
        Ok(req)
    }

    /// Returns the internal tokens of the suite.
    pub fn internal(&self) -> &Arc<InternalTokens> {
        &self.internal
    }

    /// Signs `user` in through the development issuer and creates its profile.
    pub async fn person(&self, user: &str) -> anyhow::Result<Person> {
        let id_token = crate::identity_cmd::dev_token(
            &self.settings,
            Some(&self.settings.data_dir),
            user,
            SETTLE * 60,
        )?;
        let mut client = idn::identity_client::IdentityClient::new(self.identity.clone());
        let session = client
            .sign_in(self.req(idn::SignInRequest { id_token }, None)?)
            .await?
            .into_inner();
        let created = client
            .create_profile(self.req(
                idn::CreateProfileRequest {
                    request_id: rid(),
                    profile: Some(idn::Profile {
                        legal_name: format!("Bench {user}"),
                        email: format!("{user}@bench.example"),
                        preferred_language: idn::Language::En as i32,
                        ..Default::default()
                    }),
                },
                Some(&session.access_token),
            )?)
            .await?
            .into_inner()
            .session
            .context("CreateProfile returned no session")?;
        Ok(Person {
            principal: created.principal,
            token: created.access_token,
        })
    }

    /// Imports a registry record for a new BN9 and registers it with a new BAM.
    pub async fn business(&self, label: &str) -> anyhow::Result<Business> {
        let base = self
            .next_base
            .fetch_add(1_237, std::sync::atomic::Ordering::Relaxed);
        let bn = bn9(base);
        let address = Address {
            line1: "100 Queen Street West".to_owned(),
            line2: String::new(),
            city: "Toronto".to_owned(),
            province: "ON".to_owned(),
            postal_code: "M5H 2N2".to_owned(),
            country: "CA".to_owned(),
        };
        let legal_name = format!("Bench {label} Inc.");
        let record = acc::RegistryRecord {
            bn9: bn.clone(),
            legal_name: legal_name.clone(),
            address: Some(address.clone()),
            program_accounts: ["RM0001", "RM0002"]
                .iter()
                .map(|r| acc::RegistryProgramAccount {
                    reference: (*r).to_owned(),
                    display_name: format!("{label} {r}"),
                })
                .collect(),
            known_facts: vec![acc::KnownFact {
                question: Some(acc::KnownFactQuestion {
                    id: "daily_notice_total".to_owned(),
                    text_en: "What is the total of your latest Daily Notice?".to_owned(),
                    text_fr: "Quel est le total de votre dernier avis quotidien ?".to_owned(),
                    format: acc::AnswerFormat::Amount as i32,
                }),
                answer: "1234.56".to_owned(),
            }],
        };
        acc::account_facts_client::AccountFactsClient::new(self.accounts_facts.clone())
            .import_registry(self.req(
                acc::ImportRegistryRequest {
                    request_id: rid(),
                    records: vec![record],
                },
                None,
            )?)
            .await?;
        let bam = self.person(&format!("{label}-bam")).await?;
        acc::accounts_client::AccountsClient::new(self.accounts.clone())
            .register_business(self.req(
                acc::RegisterBusinessRequest {
                    request_id: rid(),
                    program_account: format!("{bn}RM0001"),
                    legal_name,
                    address: Some(address),
                    answers: vec![acc::KnownFactAnswer {
                        question_id: "daily_notice_total".to_owned(),
                        answer: "1234.56".to_owned(),
                    }],
                    accepted_terms_version: ccp_accounts::config::DEFAULT_TERMS_VERSION.to_owned(),
                },
                Some(&bam.token),
            )?)
            .await
            .with_context(|| format!("registering {bn}"))?;
        Ok(Business {
            programs: vec![format!("{bn}RM0001"), format!("{bn}RM0002")],
            bn9: bn,
            bam,
            members: Vec::new(),
        })
    }

    /// Brings `person` into `business` with `role` on `program` (request + approval).
    pub async fn join(
        &self,
        business: &mut Business,
        person: Person,
        program: &str,
        role: Role,
    ) -> anyhow::Result<()> {
        let mut client = acc::accounts_client::AccountsClient::new(self.accounts.clone());
        let request = client
            .request_employee_access(self.req(
                acc::RequestEmployeeAccessRequest {
                    request_id: rid(),
                    parent: format!("businesses/{}", business.bn9),
                    note: "I file our customs corrections".to_owned(),
                },
                Some(&person.token),
            )?)
            .await?
            .into_inner()
            .request
            .context("no employee request")?;
        let member = client
            .approve_employee_request(self.req(
                acc::ApproveEmployeeRequestRequest {
                    request_id: rid(),
                    name: request.name,
                    grants: Some(RoleGrants {
                        business_manager: false,
                        program_roles: vec![ProgramRole {
                            program_account: program.to_owned(),
                            role: role as i32,
                        }],
                    }),
                },
                Some(&business.bam.token),
            )?)
            .await?
            .into_inner()
            .member
            .context("no member")?;
        business.members.push(Member {
            person,
            program: program.to_owned(),
            role,
            etag: member.etag,
        });
        Ok(())
    }

    /// Sets `member`'s direct roles on `business` (replacing them); returns the revision.
    pub async fn set_roles(
        &self,
        business: &Business,
        member: &mut Member,
        roles: &[(String, Role)],
        via: Option<Channel>,
    ) -> anyhow::Result<String> {
        let channel = via.unwrap_or_else(|| self.accounts.clone());
        let response = acc::accounts_client::AccountsClient::new(channel)
            .set_member_roles(
                self.req(
                    acc::SetMemberRolesRequest {
                        request_id: rid(),
                        name: format!(
                            "businesses/{}/members/{}",
                            business.bn9, member.person.principal
                        ),
                        grants: Some(RoleGrants {
                            business_manager: false,
                            program_roles: roles
                                .iter()
                                .map(|(p, r)| ProgramRole {
                                    program_account: p.clone(),
                                    role: *r as i32,
                                })
                                .collect(),
                        }),
                        etag: member.etag.clone(),
                    },
                    Some(&business.bam.token),
                )?,
            )
            .await?
            .into_inner();
        if let Some(m) = response.member {
            member.etag = m.etag;
        }
        Ok(response.revision)
    }

    /// The broker sends a relationship request and the client approves it at
    /// business level until `expire`; retried while delegation has not yet
    /// seen the client's registration event.
    pub async fn relate(
        &self,
        broker: &Business,
        client: &Business,
        expire: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<String> {
        let mut api = del::delegation_client::DelegationClient::new(self.delegation.clone());
        let sent = api
            .send_relationship_request(self.req(
                del::SendRelationshipRequestRequest {
                    request_id: rid(),
                    parent: format!("businesses/{}", broker.bn9),
                    client: client.bn9.clone(),
                    program_accounts: vec![],
                    note: "Your customs broker".to_owned(),
                },
                Some(&broker.bam.token),
            )?)
            .await?
            .into_inner()
            .request
            .context("no relationship request")?;
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let approved = api
                .approve_relationship_request(self.req(
                    del::ApproveRelationshipRequestRequest {
                        request_id: rid(),
                        name: format!("businesses/{}/receivedRequests/{}", client.bn9, sent.id),
                        level: del::RelationshipLevel::Business as i32,
                        program_accounts: vec![],
                        expire_time: Some(timestamp(expire)),
                        visibility: vec![
                            del::Visibility::SubmittedByProvider as i32,
                            del::Visibility::SubmittedByClient as i32,
                        ],
                    },
                    Some(&client.bam.token),
                )?)
                .await;
            match approved {
                Ok(r) => return Ok(r.into_inner().revision),
                Err(status) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%status, "approval not yet possible; retrying");
                    // A bounded wait for the facts to settle, not an outage backoff.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => return Err(status).context("approving a relationship"),
            }
        }
    }

    /// The broker's BAM assigns `assignee` to `client` with `role`.
    pub async fn assign(
        &self,
        broker: &Business,
        assignee: &Person,
        client: &Business,
        role: Role,
    ) -> anyhow::Result<()> {
        del::delegation_client::DelegationClient::new(self.delegation.clone())
            .assign_to_client(self.req(
                del::AssignToClientRequest {
                    request_id: rid(),
                    parent: format!("businesses/{}", broker.bn9),
                    assignment: Some(del::Assignment {
                        assignee: assignee.principal.clone(),
                        target: Some(del::assignment::Target::Client(client.bn9.clone())),
                        role: role as i32,
                        ..Default::default()
                    }),
                },
                Some(&broker.bam.token),
            )?)
            .await?;
        Ok(())
    }

    /// The broker's BAM creates a client group holding `clients`; returns
    /// its resource name `businesses/{provider}/clientGroups/{uuid}`.
    pub async fn client_group(
        &self,
        broker: &Business,
        display_name: &str,
        clients: &[&Business],
    ) -> anyhow::Result<String> {
        let group = del::delegation_client::DelegationClient::new(self.delegation.clone())
            .create_client_group(self.req(
                del::CreateClientGroupRequest {
                    request_id: rid(),
                    parent: format!("businesses/{}", broker.bn9),
                    group: Some(del::ClientGroup {
                        display_name: display_name.to_owned(),
                        clients: clients.iter().map(|c| c.bn9.clone()).collect(),
                        ..Default::default()
                    }),
                },
                Some(&broker.bam.token),
            )?)
            .await?
            .into_inner()
            .group
            .context("no client group")?;
        Ok(group.name)
    }

    /// The broker's BAM assigns `assignee` to the client group `group` with `role`.
    pub async fn assign_group(
        &self,
        broker: &Business,
        assignee: &Person,
        group: &str,
        role: Role,
    ) -> anyhow::Result<()> {
        del::delegation_client::DelegationClient::new(self.delegation.clone())
            .assign_to_client(self.req(
                del::AssignToClientRequest {
                    request_id: rid(),
                    parent: format!("businesses/{}", broker.bn9),
                    assignment: Some(del::Assignment {
                        assignee: assignee.principal.clone(),
                        target: Some(del::assignment::Target::ClientGroup(group.to_owned())),
                        role: role as i32,
                        ..Default::default()
                    }),
                },
                Some(&broker.bam.token),
            )?)
            .await?;
        Ok(())
    }

    /// Seeds a broker, its employees, clients with members, relationships and assignments.
    pub async fn dataset(&self, size: DatasetSize) -> anyhow::Result<Dataset> {
        let expire = chrono::Utc::now() + chrono::Duration::days(365);
        let mut broker = self.business("broker").await?;
        for e in 0..size.broker_employees {
            let person = self.person(&format!("broker-emp{e}")).await?;
            let program = broker.programs[0].clone();
            self.join(&mut broker, person, &program, Role::Editor)
                .await?;
        }
        let mut clients = Vec::with_capacity(size.clients);
        for c in 0..size.clients {
            let mut client = self.business(&format!("importer{c}")).await?;
            for m in 0..size.members_per_client {
                let person = self.person(&format!("importer{c}-m{m}")).await?;
                let program = client.programs[m % 2].clone();
                let role = if m % 3 == 2 {
                    Role::Reader
                } else {
                    Role::Editor
                };
                self.join(&mut client, person, &program, role).await?;
            }
            clients.push(client);
        }
        let related: Vec<usize> = (0..size.related.min(clients.len())).collect();
        for &c in &related {
            self.relate(&broker, &clients[c], expire).await?;
        }
        let mut assignments = Vec::new();
        for e in 0..broker.members.len() {
            for k in 0..size.assignments_per_employee.min(related.len()) {
                let c = related[(e + k) % related.len()];
                let role = if k % 2 == 0 {
                    Role::Editor
                } else {
                    Role::Reader
                };
                self.assign(&broker, &broker.members[e].person, &clients[c], role)
                    .await?;
                assignments.push((e, c));
            }
        }
        let stranger = self.business("stranger").await?;
        Ok(Dataset {
            broker,
            clients,
            related,
            assignments,
            stranger,
        })
    }
}
