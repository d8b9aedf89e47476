//! Test doubles and the gateway under test.
//!
//! Identity, accounts and delegation are being built in parallel, so their
//! facts services (`AccountFacts`, `RelationshipFacts`) and public services
//! are replaced here by one small in-test gRPC server answering from
//! in-memory maps. They are swapped for the real services after the merge.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccp_gateway::GatewaySettings;
use ccp_gateway::facts::{FactsCache, FactsCacheSettings, Trust};
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, InternalTokens, StaticKeySource, TokenMinter};
use ccp_platform::clock::Clock;
use ccp_platform::config::ServerSettings;
use ccp_platform::context::ServiceContext;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::account_facts_server::{AccountFacts, AccountFactsServer};
use ccp_proto::accounts::v1::accounts_server::{Accounts, AccountsServer};
use ccp_proto::common::v1::{BusinessPair, DomainEvent, EventType, ProgramRole};
use ccp_proto::delegation::v1 as del;
use ccp_proto::delegation::v1::delegation_server::{Delegation, DelegationServer};
use ccp_proto::delegation::v1::relationship_facts_client::RelationshipFactsClient;
use ccp_proto::delegation::v1::relationship_facts_server::{
    RelationshipFacts, RelationshipFactsServer,
};
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_facts_server::{IdentityFacts, IdentityFactsServer};
use ccp_proto::identity::v1::identity_server::{Identity, IdentityServer};
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

pub const CLIENT: &str = "123456782";
pub const PROVIDER: &str = "100000009";
pub const OTHER: &str = "200000008";

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// What the double's facts services answer, and how often they were asked.
#[derive(Default)]
pub struct FactsState {
    pub roles: BTreeMap<String, acc::RoleFacts>,
    pub assignments: BTreeMap<String, del::AssignmentFacts>,
    pub pairs: BTreeMap<(String, String), del::PairFacts>,
    pub businesses: BTreeMap<String, acc::BusinessFacts>,
    /// Clients per provider, for ListClients.
    pub clients: BTreeMap<String, Vec<del::ClientSummary>>,
    /// Metadata of the last forwarded public call.
    pub last_forwarded: Option<tonic::metadata::MetadataMap>,
    /// The revocations in force (IdentityFacts.ListRevocations).
    pub revocations: Vec<idn::Revocation>,
}

/// The in-test double of every upstream service.
#[derive(Clone, Default)]
pub struct Upstream {
    pub state: Arc<Mutex<FactsState>>,
    pub role_calls: Arc<AtomicUsize>,
    pub pair_calls: Arc<AtomicUsize>,
    pub assignment_calls: Arc<AtomicUsize>,
    /// When set, facts answers wait this long (to overlap concurrent misses).
    pub delay_ms: Arc<AtomicUsize>,
    pub jwks: Arc<Mutex<String>>,
    pub key_calls: Arc<AtomicUsize>,
    pub internal: Option<Arc<InternalTokens>>,
    pub internal_ok: Arc<AtomicBool>,
}

impl Upstream {
    pub fn with_internal(internal: Arc<InternalTokens>) -> Self {
        Self {
            internal: Some(internal),
            ..Self::default()
        }
    }

    fn check_internal<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let token = request
            .metadata()
            .get(INTERNAL_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Status::unauthenticated("missing internal token"))?;
        if let Some(internal) = &self.internal {
            internal
                .verify(token)
                .map_err(|_| Status::unauthenticated("bad internal token"))?;
            self.internal_ok.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn pause(&self) {
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms as u64)).await;
        }
    }

    pub fn set_roles(&self, principal: &str, memberships: Vec<acc::Membership>) {
        self.state.lock().unwrap().roles.insert(
            principal.to_owned(),
            acc::RoleFacts {
                principal: principal.to_owned(),
                memberships,
                read_time: None,
            },
        );
    }

    pub fn set_assignments(&self, principal: &str, assignments: Vec<(&str, &str, i32)>) {
        let facts = del::AssignmentFacts {
            principal: principal.to_owned(),
            assignments: assignments
                .into_iter()
                .map(|(provider, client, role)| del::ClientAssignment {
                    provider: provider.into(),
                    client: client.into(),
                    role,
                    direct: true,
                    client_groups: vec![],
                })
                .collect(),
            revisions: vec![],
        };
        self.state
            .lock()
            .unwrap()
            .assignments
            .insert(principal.to_owned(), facts);
    }

    pub fn set_pair(
        &self,
        provider: &str,
        client: &str,
        relationships: Vec<del::RelationshipFact>,
    ) {
        let mut state = self.state.lock().unwrap();
        let revision = state
            .pairs
            .get(&(provider.to_owned(), client.to_owned()))
            .map_or(1, |p| p.revision + 1);
        state.pairs.insert(
            (provider.to_owned(), client.to_owned()),
            del::PairFacts {
                provider: provider.into(),
                client: client.into(),
                relationships: relationships.clone(),
                revision,
            },
        );
        let summaries = state.clients.entry(provider.to_owned()).or_default();
        summaries.retain(|c| c.client != client);
        summaries.push(del::ClientSummary {
            client: client.into(),
            relationships,
        });
        summaries.sort_by(|a, b| a.client.cmp(&b.client));
    }

    pub fn set_business(&self, bn: &str, programs: &[&str]) {
        self.state.lock().unwrap().businesses.insert(
            bn.to_owned(),
            acc::BusinessFacts {
                business: bn.into(),
                registered: true,
                program_accounts: programs.iter().map(|p| (*p).to_owned()).collect(),
                ..Default::default()
            },
        );
    }
}

pub fn membership(bn: &str, bam: bool, roles: &[(&str, i32)], revision: i64) -> acc::Membership {
    acc::Membership {
        business: bn.into(),
        business_manager: bam,
        roles: roles
            .iter()
            .map(|(p, r)| ProgramRole {
                program_account: (*p).into(),
                role: *r,
            })
            .collect(),
        revision,
    }
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    ccp_platform::store::timestamp(t)
}

pub fn business_relationship(expire: DateTime<Utc>) -> del::RelationshipFact {
    del::RelationshipFact {
        id: uuid::Uuid::new_v4().to_string(),
        level: del::RelationshipLevel::Business as i32,
        program_accounts: vec![],
        visibility: vec![del::Visibility::SubmittedByProvider as i32],
        start_time: Some(ts(t0() - chrono::Duration::days(1))),
        expire_time: Some(ts(expire)),
        end_time: None,
        end_reason: 0,
    }
}

#[tonic::async_trait]
impl AccountFacts for Upstream {
    async fn get_role_facts(
        &self,
        request: Request<acc::GetRoleFactsRequest>,
    ) -> Result<Response<acc::RoleFacts>, Status> {
        self.check_internal(&request)?;
        self.role_calls.fetch_add(1, Ordering::SeqCst);
        // Read, then answer late: a slow fetch that read before a change.
        let p = request.into_inner().principal;
        let facts = self.state.lock().unwrap().roles.get(&p).cloned();
        self.pause().await;
        Ok(Response::new(facts.unwrap_or(acc::RoleFacts {
            principal: p,
            ..Default::default()
        })))
    }

    async fn get_business_facts(
        &self,
        request: Request<acc::GetBusinessFactsRequest>,
    ) -> Result<Response<acc::BusinessFacts>, Status> {
        self.check_internal(&request)?;
        let bn = request.into_inner().business;
        let facts = self.state.lock().unwrap().businesses.get(&bn).cloned();
        Ok(Response::new(facts.unwrap_or(acc::BusinessFacts {
            business: bn,
            ..Default::default()
        })))
    }

    async fn batch_get_business_facts(
        &self,
        request: Request<acc::BatchGetBusinessFactsRequest>,
    ) -> Result<Response<acc::BatchGetBusinessFactsResponse>, Status> {
        self.check_internal(&request)?;
        let state = self.state.lock().unwrap();
        let businesses = request
            .into_inner()
            .businesses
            .into_iter()
            .map(|bn| {
                state
                    .businesses
                    .get(&bn)
                    .cloned()
                    .unwrap_or(acc::BusinessFacts {
                        business: bn,
                        ..Default::default()
                    })
            })
            .collect();
        Ok(Response::new(acc::BatchGetBusinessFactsResponse {
            businesses,
        }))
    }
}

#[tonic::async_trait]
impl RelationshipFacts for Upstream {
    async fn get_pair_facts(
        &self,
        request: Request<del::GetPairFactsRequest>,
    ) -> Result<Response<del::PairFacts>, Status> {
        self.check_internal(&request)?;
        self.pair_calls.fetch_add(1, Ordering::SeqCst);
        self.pause().await;
        let r = request.into_inner();
        let facts = self
            .state
            .lock()
            .unwrap()
            .pairs
            .get(&(r.provider.clone(), r.client.clone()))
            .cloned();
        Ok(Response::new(facts.unwrap_or(del::PairFacts {
            provider: r.provider,
            client: r.client,
            ..Default::default()
        })))
    }

    async fn get_assignment_facts(
        &self,
        request: Request<del::GetAssignmentFactsRequest>,
    ) -> Result<Response<del::AssignmentFacts>, Status> {
        self.check_internal(&request)?;
        self.assignment_calls.fetch_add(1, Ordering::SeqCst);
        let r = request.into_inner();
        // As delegation answers: the principal's assignments to the client asked about.
        let mut facts = self
            .state
            .lock()
            .unwrap()
            .assignments
            .get(&r.principal)
            .cloned()
            .unwrap_or_else(|| del::AssignmentFacts {
                principal: r.principal.clone(),
                ..Default::default()
            });
        facts.assignments.retain(|a| a.client == r.client);
        let named: Vec<String> = facts
            .assignments
            .iter()
            .map(|a| a.provider.clone())
            .collect();
        facts.revisions.retain(|rv| named.contains(&rv.provider));
        Ok(Response::new(facts))
    }

    async fn list_clients(
        &self,
        request: Request<del::ListClientsRequest>,
    ) -> Result<Response<del::ListClientsResponse>, Status> {
        self.check_internal(&request)?;
        let r = request.into_inner();
        let size = if r.page_size <= 0 {
            500
        } else {
            r.page_size as usize
        };
        let all = self
            .state
            .lock()
            .unwrap()
            .clients
            .get(&r.provider)
            .cloned()
            .unwrap_or_default();
        let start = if r.page_token.is_empty() {
            0
        } else {
            r.page_token
                .parse::<usize>()
                .map_err(|_| Status::invalid_argument("page_token"))?
        };
        let end = (start + size).min(all.len());
        Ok(Response::new(del::ListClientsResponse {
            clients: all[start.min(all.len())..end].to_vec(),
            next_page_token: if end < all.len() {
                end.to_string()
            } else {
                String::new()
            },
            revision: 1,
        }))
    }

    async fn list_assigned_clients(
        &self,
        request: Request<del::ListAssignedClientsRequest>,
    ) -> Result<Response<del::ListAssignedClientsResponse>, Status> {
        self.check_internal(&request)?;
        let r = request.into_inner();
        let state = self.state.lock().unwrap();
        let mut assigned: Vec<del::ClientAssignment> = state
            .assignments
            .get(&r.principal)
            .map(|a| a.assignments.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.provider == r.provider && a.client > r.page_token)
            .collect();
        assigned.sort_by(|a, b| a.client.cmp(&b.client));
        let size = if r.page_size <= 0 {
            500
        } else {
            r.page_size as usize
        };
        let more = assigned.len() > size;
        assigned.truncate(size);
        let next_page_token = if more {
            assigned
                .last()
                .map(|a| a.client.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let clients = assigned
            .into_iter()
            .map(|a| del::AssignedClient {
                relationships: state
                    .pairs
                    .get(&(a.provider.clone(), a.client.clone()))
                    .map(|p| p.relationships.clone())
                    .unwrap_or_default(),
                assignment: Some(a),
            })
            .collect();
        Ok(Response::new(del::ListAssignedClientsResponse {
            clients,
            next_page_token,
            revision: 1,
        }))
    }
}

#[tonic::async_trait]
impl IdentityFacts for Upstream {
    async fn list_revocations(
        &self,
        request: Request<idn::ListRevocationsRequest>,
    ) -> Result<Response<idn::ListRevocationsResponse>, Status> {
        self.check_internal(&request)?;
        let after = request.get_ref().after;
        let state = self.state.lock().unwrap();
        let revocations: Vec<_> = state
            .revocations
            .iter()
            .filter(|r| r.sequence > after)
            .cloned()
            .collect();
        let cursor = revocations.iter().map(|r| r.sequence).fold(after, i64::max);
        Ok(Response::new(idn::ListRevocationsResponse {
            revocations,
            cursor,
            more: false,
        }))
    }
}

#[tonic::async_trait]
impl Identity for Upstream {
    async fn get_signing_keys(
        &self,
        request: Request<idn::GetSigningKeysRequest>,
    ) -> Result<Response<idn::SigningKeys>, Status> {
        self.check_internal(&request)?;
        self.key_calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(idn::SigningKeys {
            jwks_json: self.jwks.lock().unwrap().clone(),
            keys: vec![],
        }))
    }

    async fn get_my_profile(
        &self,
        request: Request<idn::GetMyProfileRequest>,
    ) -> Result<Response<idn::Profile>, Status> {
        self.check_internal(&request)?;
        self.state.lock().unwrap().last_forwarded = Some(request.metadata().clone());
        Ok(Response::new(idn::Profile {
            name: "profiles/me".into(),
            ..Default::default()
        }))
    }

    async fn create_profile(
        &self,
        request: Request<idn::CreateProfileRequest>,
    ) -> Result<Response<idn::CreateProfileResponse>, Status> {
        self.check_internal(&request)?;
        Ok(Response::new(idn::CreateProfileResponse::default()))
    }
}

#[tonic::async_trait]
impl Accounts for Upstream {
    async fn get_terms_and_conditions(
        &self,
        request: Request<acc::GetTermsAndConditionsRequest>,
    ) -> Result<Response<acc::TermsAndConditions>, Status> {
        self.check_internal(&request)?;
        Ok(Response::new(acc::TermsAndConditions {
            version: "2026-01".into(),
            ..Default::default()
        }))
    }

    async fn get_business(
        &self,
        request: Request<acc::GetBusinessRequest>,
    ) -> Result<Response<acc::Business>, Status> {
        self.check_internal(&request)?;
        self.state.lock().unwrap().last_forwarded = Some(request.metadata().clone());
        let name = request.into_inner().name;
        let registered = self
            .state
            .lock()
            .unwrap()
            .businesses
            .contains_key(name.trim_start_matches("businesses/"));
        if !registered {
            return Err(Status::not_found("no such business"));
        }
        Ok(Response::new(acc::Business {
            name: name.clone(),
            bn9: name.trim_start_matches("businesses/").into(),
            ..Default::default()
        }))
    }

    async fn register_business(
        &self,
        request: Request<acc::RegisterBusinessRequest>,
    ) -> Result<Response<acc::RegisterBusinessResponse>, Status> {
        self.check_internal(&request)?;
        Ok(Response::new(acc::RegisterBusinessResponse::default()))
    }
}

#[tonic::async_trait]
impl Delegation for Upstream {}

/// A running double; dropping the handle's `stop` sender stops it.
pub struct UpstreamServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl UpstreamServer {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the double and waits until it no longer serves.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

pub async fn spawn_upstream(upstream: Upstream) -> UpstreamServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(AccountFactsServer::new(upstream.clone()))
            .add_service(RelationshipFactsServer::new(upstream.clone()))
            .add_service(IdentityServer::new(upstream.clone()))
            .add_service(IdentityFactsServer::new(upstream.clone()))
            .add_service(AccountsServer::new(upstream.clone()))
            .add_service(DelegationServer::new(upstream))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
    });
    UpstreamServer {
        addr,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A facts cache over the double, with its own in-process level and the given shared level.
pub fn facts_cache(
    ctx: &ServiceContext,
    upstream: &UpstreamServer,
    trust: Arc<Trust>,
    ttl: Duration,
) -> FactsCache {
    let channel = ctx
        .upstream_channel(&upstream.endpoint(), Duration::from_secs(5))
        .unwrap();
    let ic = ctx.client_interceptor("service:gateway");
    FactsCache::new(
        AccountFactsClient::with_interceptor(channel.clone(), ic.clone()),
        RelationshipFactsClient::with_interceptor(channel, ic),
        ctx.cache.clone(),
        ctx.clock.clone(),
        trust,
        &FactsCacheSettings {
            ttl,
            local_entries: 1000,
        },
    )
}

/// A gateway under test, running until dropped.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub ctx: ServiceContext,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestGateway {
    pub async fn authorization(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Returns a request carrying a bearer token.
    pub fn bearer<T>(&self, token: &str, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    /// Returns a request carrying an internal token.
    pub fn internal<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut().insert(
            INTERNAL_TOKEN_HEADER,
            self.ctx.internal.mint("platform:test").parse().unwrap(),
        );
        r
    }
}

/// Settings for a gateway in front of the double.
pub fn settings(upstream: &UpstreamServer) -> GatewaySettings {
    GatewaySettings {
        server: ServerSettings {
            listen: "127.0.0.1:0".into(),
            ..ServerSettings::default()
        },
        identity_endpoint: upstream.endpoint(),
        accounts_endpoint: upstream.endpoint(),
        delegation_endpoint: upstream.endpoint(),
        ..GatewaySettings::default()
    }
}

/// Starts a gateway in front of the double, verifying tokens of `minter`,
/// and waits until its event consumer is live.
pub async fn spawn_gateway(
    ctx: &ServiceContext,
    settings: GatewaySettings,
    minter: &TokenMinter,
) -> TestGateway {
    let keys = Arc::new(StaticKeySource(minter.signer().jwks_json()));
    let app = ccp_gateway::Application::build_with_key_source(ctx, &settings, keys)
        .await
        .unwrap();
    run_gateway(ctx, app).await
}

/// Starts a gateway that fetches identity's keys from the double (GetSigningKeys).
pub async fn spawn_gateway_with_remote_keys(
    ctx: &ServiceContext,
    settings: GatewaySettings,
) -> TestGateway {
    let app = ccp_gateway::Application::build(ctx, &settings)
        .await
        .unwrap();
    run_gateway(ctx, app).await
}

async fn run_gateway(ctx: &ServiceContext, app: ccp_gateway::Application) -> TestGateway {
    let addr = app.local_addr();
    let trust = app.trust();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    wait_for("the gateway trusts its cache", || trust.is_trusted()).await;
    TestGateway {
        addr,
        ctx: ctx.clone(),
        stop: Some(stop),
    }
}

/// Polls `cond` every 10 ms for at most 10 s.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// An event naming principals and pairs.
pub fn event(kind: EventType, principals: &[String], pairs: &[(&str, &str)]) -> DomainEvent {
    DomainEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: kind as i32,
        service: "test".into(),
        principals: principals.to_vec(),
        pairs: pairs
            .iter()
            .map(|(p, c)| BusinessPair {
                provider: (*p).into(),
                client: (*c).into(),
            })
            .collect(),
        ..Default::default()
    }
}

/// The shared caches to run a test against: memory always, Redis when configured.
/// Each context has its own settable clock starting where `clock` stands.
pub async fn contexts(clock: Clock) -> Vec<(&'static str, ServiceContext)> {
    let start = clock.now();
    let clock = Clock::settable(start);
    let mut out = vec![("memory", ServiceContext::in_memory(Clock::settable(start)))];
    match ccp_platform::testing::redis_url() {
        Some(url) => {
            let prefix = ccp_platform::testing::unique_prefix();
            let mut ctx = ServiceContext::in_memory(clock);
            ctx.cache = Arc::new(
                ccp_platform::cache::RedisCache::connect(&url, prefix.clone())
                    .await
                    .unwrap(),
            );
            ctx.bus = Arc::new(
                ccp_platform::bus::RedisBus::connect(url, prefix)
                    .await
                    .unwrap(),
            );
            out.push(("redis", ctx));
        }
        None => eprintln!("skipped: CCP_TEST_REDIS_URL not set, Redis half of the test not run"),
    }
    out
}
