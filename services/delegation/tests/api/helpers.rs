//! `spawn_app`: the real delegation `Application` on 127.0.0.1:0 over a test
//! database, with a settable clock, access tokens from a `TokenMinter`, and an
//! in-test double of accounts' `AccountFacts` (accounts is built in parallel;
//! the lead swaps in the real service on merge). "A business registers" is a
//! real BUSINESS_REGISTERED event on the test's bus plus the double's record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccp_delegation::{Application, DelegationSettings};
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, Principal, StaticKeySource, TokenMinter};
use ccp_platform::bus::{Delivery, StartFrom};
use ccp_platform::clock::Clock;
use ccp_platform::config::ServerSettings;
use ccp_platform::context::ServiceContext;
use ccp_platform::store::timestamp;
use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1::account_facts_server::{AccountFacts, AccountFactsServer};
use ccp_proto::accounts::v1::{
    BusinessFacts, GetBusinessFactsRequest, GetRoleFactsRequest, ImportRegistryRequest,
    ImportRegistryResponse, Membership, RoleFacts,
};
use ccp_proto::common::v1::{DomainEvent, EventType, ProgramRole, Role};
use ccp_proto::delegation::v1 as pb;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::delegation::v1::relationship_facts_client::RelationshipFactsClient;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use prost::Message as _;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use uuid::Uuid;

/// Upper bound of every wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// A provider (customs broker) BN9.
pub const BROKER: &str = "123456782";
/// A client (importer) BN9.
pub const IMPORTER: &str = "888316171";
/// Another valid BN9 (never registered unless a test says so).
pub const OTHER: &str = "100000009";

/// The accounts double: business and role facts from in-memory maps.
#[derive(Clone, Default)]
pub struct AccountsDouble {
    businesses: Arc<Mutex<HashMap<String, BusinessFacts>>>,
    members: Arc<Mutex<HashMap<String, Vec<Membership>>>>,
}

#[tonic::async_trait]
impl AccountFacts for AccountsDouble {
    async fn get_role_facts(
        &self,
        request: tonic::Request<GetRoleFactsRequest>,
    ) -> Result<tonic::Response<RoleFacts>, tonic::Status> {
        let p = request.into_inner().principal;
        let memberships = self
            .members
            .lock()
            .unwrap()
            .get(&p)
            .cloned()
            .unwrap_or_default();
        Ok(tonic::Response::new(RoleFacts {
            principal: p,
            memberships,
            read_time: None,
        }))
    }

    async fn get_business_facts(
        &self,
        request: tonic::Request<GetBusinessFactsRequest>,
    ) -> Result<tonic::Response<BusinessFacts>, tonic::Status> {
        let bn = request.into_inner().business;
        let facts = self
            .businesses
            .lock()
            .unwrap()
            .get(&bn)
            .cloned()
            .unwrap_or(BusinessFacts {
                business: bn,
                ..BusinessFacts::default()
            });
        Ok(tonic::Response::new(facts))
    }

    async fn import_registry(
        &self,
        _request: tonic::Request<ImportRegistryRequest>,
    ) -> Result<tonic::Response<ImportRegistryResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in the double"))
    }
}

impl AccountsDouble {
    /// Records a registered business with program accounts `RM0001..=RM{n}`.
    pub fn register(&self, bn: &str, programs: usize, at: DateTime<Utc>) {
        let program_accounts = (1..=programs).map(|i| format!("{bn}RM{i:04}")).collect();
        self.businesses.lock().unwrap().insert(
            bn.to_owned(),
            BusinessFacts {
                business: bn.to_owned(),
                registered: true,
                program_accounts,
                register_time: Some(timestamp(at)),
                ..BusinessFacts::default()
            },
        );
    }

    /// Records a membership (a role) of a principal in a business.
    pub fn add_member(&self, principal: &Principal, bn: &str, bam: bool) {
        self.members
            .lock()
            .unwrap()
            .entry(principal.to_string())
            .or_default()
            .push(Membership {
                business: bn.to_owned(),
                business_manager: bam,
                roles: if bam {
                    Vec::new()
                } else {
                    vec![ProgramRole {
                        program_account: format!("{bn}RM0001"),
                        role: Role::Editor as i32,
                    }]
                },
                revision: 1,
            });
    }
}

async fn serve_double(double: AccountsDouble) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(AccountFactsServer::new(double))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    format!("http://{addr}")
}

/// A running delegation service and everything a test drives it with.
pub struct TestApp {
    /// The backend's name.
    pub backend: &'static str,
    /// The runtime (bus, clock, internal tokens).
    pub ctx: ServiceContext,
    /// The settable clock.
    pub clock: Clock,
    /// Mints access tokens.
    pub minter: TokenMinter,
    /// The accounts double.
    pub accounts: AccountsDouble,
    /// The service's settings (for restarts).
    pub settings: DelegationSettings,
    sweeper: Option<ccp_delegation::background::Sweeper>,
    channel: Channel,
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

/// Builds and starts the service over `backend`, with the broker and the
/// importer registered in the accounts double (the importer with 2 programs).
pub async fn spawn_app(backend: &TestBackend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with a chance to change the settings.
pub async fn spawn_app_with(
    backend: &TestBackend,
    change: impl FnOnce(&mut DelegationSettings),
) -> TestApp {
    let clock = Clock::settable(t0());
    let ctx = ServiceContext::in_memory(clock.clone());
    let accounts = AccountsDouble::default();
    accounts.register(BROKER, 1, t0());
    accounts.register(IMPORTER, 2, t0());
    let broker_bam = Principal::Person(Uuid::new_v4());
    let importer_bam = Principal::Person(Uuid::new_v4());
    accounts.add_member(&broker_bam, BROKER, true);
    accounts.add_member(&importer_bam, IMPORTER, true);
    let endpoint = serve_double(accounts.clone()).await;
    let mut settings = DelegationSettings {
        server: ServerSettings {
            listen: "127.0.0.1:0".to_owned(),
            ..ServerSettings::default()
        },
        database: backend.settings("delegation"),
        accounts_endpoint: endpoint,
        sweep_interval_ms: 3_600_000,
        ..DelegationSettings::default()
    };
    change(&mut settings);
    let minter = TokenMinter::new(clock.clone()).unwrap();
    let mut app = TestApp {
        backend: backend.name(),
        ctx,
        clock,
        minter,
        accounts,
        settings,
        sweeper: None,
        channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
        stop: None,
        run: None,
        broker_bam,
        importer_bam,
    };
    app.start().await;
    app
}

impl TestApp {
    async fn start(&mut self) {
        let keys = Arc::new(StaticKeySource(self.minter.signer().jwks_json()));
        let app = Application::build_with_key_source(&self.ctx, &self.settings, keys)
            .await
            .unwrap();
        self.sweeper = Some(app.sweeper());
        let addr = app.local_addr();
        let (stop, rx) = oneshot::channel::<()>();
        self.run = Some(tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        })));
        self.stop = Some(stop);
        self.channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
    }

    /// Runs one sweep at the clock's instant.
    pub async fn sweep(&self) -> ccp_delegation::background::SweepReport {
        self.sweeper.as_ref().unwrap().sweep_once().await.unwrap()
    }

    /// Stops the service and starts it again over the same database and bus.
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.start().await;
    }

    /// Stops the service.
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

    /// Returns a public client.
    pub fn api(&self) -> DelegationClient<Channel> {
        DelegationClient::new(self.channel.clone())
    }

    /// Returns an internal facts client.
    pub fn facts(&self) -> RelationshipFactsClient<Channel> {
        RelationshipFactsClient::new(self.channel.clone())
    }

    /// Wraps a message with the internal token and `who`'s access token.
    pub fn as_<T>(&self, who: &Principal, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        let token = match who {
            Principal::Person(id) => self.minter.person(*id).unwrap(),
            Principal::Credential(id) => self.minter.credential(*id, BROKER).unwrap(),
        };
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        self.internal(req)
    }

    /// Adds the internal token only (facts calls).
    pub fn internal<T>(&self, mut req: tonic::Request<T>) -> tonic::Request<T> {
        req.metadata_mut().insert(
            INTERNAL_TOKEN_HEADER,
            self.ctx.internal.mint("service:test").parse().unwrap(),
        );
        req
    }

    /// Publishes a BUSINESS_REGISTERED event for `bn` on accounts' stream and
    /// records it in the double.
    pub async fn register_business(&self, bn: &str, programs: usize) -> String {
        let now = self.clock.now();
        self.accounts.register(bn, programs, now);
        let event = DomainEvent {
            id: Uuid::new_v4().to_string(),
            r#type: EventType::BusinessRegistered as i32,
            service: "accounts".to_owned(),
            occurred_at: Some(timestamp(now)),
            businesses: vec![bn.to_owned()],
            ..DomainEvent::default()
        };
        self.ctx
            .bus
            .publish("ccp.events.accounts", &event.encode_to_vec())
            .await
            .unwrap()
            .as_str()
            .to_owned()
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
        self.api()
            .list_received_requests(self.as_(
                &self.importer_bam,
                pb::ListReceivedRequestsRequest {
                    parent: format!("businesses/{IMPORTER}"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .requests
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
