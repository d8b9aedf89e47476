//! tonic handlers of `ccp.accounts.v1.Accounts` and `AccountFacts`:
//! proto <-> domain conversion, one transaction per write (revision bump,
//! change, audit, outbox event, idempotency record), errors to `Status`.

mod facts;
mod groups;
mod members;
mod registration;
mod requests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ccp_platform::auth::{InternalClientInterceptor, Principal, caller};
use ccp_platform::context::ServiceContext;
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::revision::Revision;
use ccp_platform::store::{self as pstore, AuditRecord, OutboxRelay};
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::account_facts_server::AccountFacts;
use ccp_proto::accounts::v1::accounts_server::Accounts;
use ccp_proto::common::v1::{DomainEvent, EventType, ProgramRole};
use ccp_proto::identity::v1::identity_facts_client::IdentityFactsClient;
use chrono::{DateTime, Utc};
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::EVENT_STREAM;
use crate::config::AccountsSettings;
use crate::domain::{Bn9, ProgramReference, RoleLevel};

/// The client of identity's internal facts service.
pub type IdentityClient =
    IdentityFactsClient<InterceptedService<Channel, InternalClientInterceptor>>;

/// What every handler shares: the database, the runtime, the relay, identity.
#[derive(Clone)]
pub struct Core {
    db: DatabaseConnection,
    ctx: ServiceContext,
    relay: OutboxRelay,
    identity: IdentityClient,
    settings: Arc<AccountsSettings>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    /// Returns the shared state of the handlers.
    pub fn new(
        db: DatabaseConnection,
        ctx: ServiceContext,
        relay: OutboxRelay,
        identity: IdentityClient,
        settings: AccountsSettings,
    ) -> Self {
        Self {
            db,
            ctx,
            relay,
            identity,
            settings: Arc::new(settings),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    async fn replay<R: Message + Default>(
        &self,
        principal: &str,
        method: &str,
        request_id: &str,
    ) -> Result<Option<R>, Error> {
        match pstore::idempotent_response(&self.db, principal, method, request_id).await? {
            Some(bytes) => Ok(Some(R::decode(bytes.as_slice()).map_err(Error::internal)?)),
            None => Ok(None),
        }
    }

    /// Stores the response under its request id, commits and wakes the relay.
    async fn finish<R: Message + Default>(
        &self,
        txn: DatabaseTransaction,
        principal: &str,
        method: &str,
        request_id: &str,
        response: R,
    ) -> Result<R, Error> {
        let now = self.now();
        let stored = pstore::store_idempotent_response(
            &txn,
            principal,
            method,
            request_id,
            &response.encode_to_vec(),
            now,
        )
        .await;
        match stored {
            Ok(()) => {}
            Err(err) if ccp_platform::db::is_unique_violation(&err) => {
                txn.rollback().await?;
                return self
                    .replay(principal, method, request_id)
                    .await?
                    .ok_or_else(|| Error::aborted("a concurrent duplicate request; retry"));
            }
            Err(err) => return Err(err.into()),
        }
        txn.commit().await?;
        self.relay.notify();
        Ok(response)
    }

    /// Commits a transaction that has no response to store, and wakes the relay.
    async fn commit(&self, txn: DatabaseTransaction) -> Result<(), Error> {
        txn.commit().await?;
        self.relay.notify();
        Ok(())
    }

    async fn begin(&self) -> Result<DatabaseTransaction, Error> {
        Ok(self.db.begin().await?)
    }

    #[allow(clippy::too_many_arguments)]
    async fn emit<C: ConnectionTrait>(
        &self,
        db: &C,
        kind: EventType,
        businesses: &[&str],
        principals: Vec<String>,
        revision: &str,
        actor: &str,
        subject: &str,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        let now = self.now();
        let event = DomainEvent {
            id: Uuid::now_v7().to_string(),
            r#type: kind as i32,
            service: "accounts".to_owned(),
            occurred_at: Some(pstore::timestamp(now)),
            businesses: businesses.iter().map(|b| (*b).to_owned()).collect(),
            principals,
            pairs: Vec::new(),
            token_families: Vec::new(),
            revision: revision.to_owned(),
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            details_json: if details.is_null() {
                String::new()
            } else {
                details.to_string()
            },
        };
        pstore::enqueue_event(db, EVENT_STREAM, &event, now).await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit<C: ConnectionTrait>(
        &self,
        db: &C,
        actor: &str,
        bn9: Option<&str>,
        action: &str,
        target: &str,
        before: serde_json::Value,
        after: serde_json::Value,
        request_id: &str,
    ) -> Result<(), Error> {
        let json = |v: serde_json::Value| {
            if v.is_null() {
                String::new()
            } else {
                v.to_string()
            }
        };
        let record = AuditRecord {
            actor: actor.to_owned(),
            acting_for: bn9.map(str::to_owned),
            other_business: None,
            action: action.to_owned(),
            target: target.to_owned(),
            before_json: json(before),
            after_json: json(after),
            request_id: request_id.to_owned(),
            trace_id: String::new(),
        };
        pstore::append_audit(db, &record, self.now()).await?;
        Ok(())
    }

    /// Returns names and e-mails of people by principal, in one GetProfiles call.
    async fn profiles(
        &self,
        principals: impl IntoIterator<Item = &str>,
    ) -> Result<HashMap<String, (String, String)>, Error> {
        let ids: Vec<String> = principals
            .into_iter()
            .filter_map(|p| p.parse::<Principal>().ok())
            .filter(Principal::is_person)
            .map(|p| p.id().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut client = self.identity.clone();
        let response = client
            .get_profiles(ccp_proto::identity::v1::GetProfilesRequest { profile_ids: ids })
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "identity get_profiles failed");
                Error::unavailable("identity is unavailable")
            })?
            .into_inner();
        Ok(response
            .profiles
            .into_iter()
            .map(|p| (format!("person:{}", p.profile_id), (p.legal_name, p.email)))
            .collect())
    }

    fn revision(scope: &str, counter: i64) -> String {
        Revision::new("accounts", scope, counter).encode()
    }
}

/// Returns a violation when a write's request id is missing or too long.
fn check_request_id(request_id: &str, errs: &mut Vec<FieldViolation>) {
    if request_id.is_empty() {
        errs.push(FieldViolation::new("request_id", "is required"));
    } else if request_id.chars().count() > 128 {
        errs.push(FieldViolation::new(
            "request_id",
            "must be at most 128 characters",
        ));
    }
}

/// Returns INVALID_ARGUMENT when any violation was collected.
fn reject(errs: Vec<FieldViolation>) -> Result<(), Error> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(errs))
    }
}

/// Parses `businesses/{bn9}/{collection}/{id}`.
fn parse_child(name: &str, collection: &str, field: &str) -> Result<(Bn9, String), FieldViolation> {
    let bad = || {
        FieldViolation::new(
            field,
            format!("must be `businesses/{{bn9}}/{collection}/{{id}}`"),
        )
    };
    let rest = name.strip_prefix("businesses/").ok_or_else(bad)?;
    let (bn, rest) = rest.split_once('/').ok_or_else(bad)?;
    let id = rest
        .strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(bad)?;
    if id.is_empty() || id.contains('/') {
        return Err(bad());
    }
    let bn9 = Bn9::parse(bn, field)?;
    Ok((bn9, id.to_owned()))
}

/// Parses a child name whose id is a uuid.
fn parse_uuid_child(
    name: &str,
    collection: &str,
    field: &str,
) -> Result<(Bn9, Uuid), FieldViolation> {
    let (bn9, id) = parse_child(name, collection, field)?;
    let id = Uuid::parse_str(&id).map_err(|_| FieldViolation::new(field, "has a malformed id"))?;
    Ok((bn9, id))
}

/// Parses `businesses/{bn9}/members/{principal}`.
fn parse_member_name(name: &str, field: &str) -> Result<(Bn9, Principal), FieldViolation> {
    let (bn9, p) = parse_child(name, "members", field)?;
    let p = p
        .parse::<Principal>()
        .map_err(|_| FieldViolation::new(field, "names a malformed principal"))?;
    Ok((bn9, p))
}

/// Returns the BN15 proto list of roles per reference.
fn program_roles(bn9: &str, roles: &BTreeMap<ProgramReference, RoleLevel>) -> Vec<ProgramRole> {
    roles
        .iter()
        .map(|(r, l)| ProgramRole {
            program_account: format!("{bn9}{r}"),
            role: l.as_i32(),
        })
        .collect()
}

/// Returns the highest role per reference of raw (reference, role) rows (R-AC-4).
fn effective_of(
    rows: impl IntoIterator<Item = (String, i32)>,
) -> BTreeMap<ProgramReference, RoleLevel> {
    let mut out: BTreeMap<ProgramReference, RoleLevel> = BTreeMap::new();
    for (reference, role) in rows {
        let (Ok(r), Some(l)) = (
            ProgramReference::parse(&reference, "reference"),
            RoleLevel::from_i32(role),
        ) else {
            continue;
        };
        let e = out.entry(r).or_insert(l);
        if l > *e {
            *e = l;
        }
    }
    out
}

fn page_after(token: &str) -> Result<String, Error> {
    Ok(ccp_platform::paging::decode_token(token)?.unwrap_or_default())
}

/// Returns (time, id) of a keyset token `rfc3339|id`.
fn page_after_pair(token: &str) -> Result<Option<(DateTime<Utc>, String)>, Error> {
    let Some(raw) = ccp_platform::paging::decode_token(token)? else {
        return Ok(None);
    };
    let bad = || Error::invalid_field("page_token", "is not a token this list returned");
    let (t, id) = raw.split_once('|').ok_or_else(bad)?;
    let t = DateTime::parse_from_rfc3339(t)
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    Ok(Some((t, id.to_owned())))
}

fn pair_key(t: DateTime<Utc>, id: &str) -> String {
    format!(
        "{}|{id}",
        t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    )
}

/// The public `Accounts` service.
#[derive(Debug, Clone)]
pub struct AccountsApi {
    core: Core,
}

impl AccountsApi {
    /// Returns the service over the shared state.
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

/// The internal `AccountFacts` service.
#[derive(Debug, Clone)]
pub struct AccountFactsApi {
    core: Core,
}

impl AccountFactsApi {
    /// Returns the service over the shared state.
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

type Rsp<T> = Result<Response<T>, Status>;

fn done<T>(r: Result<T, Error>) -> Rsp<T> {
    r.map(Response::new).map_err(Status::from)
}

macro_rules! with_caller {
    ($self:ident, $request:ident, $method:ident) => {{
        let who = caller(&$request)?.clone();
        done($self.core.$method(&who, $request.into_inner()).await)
    }};
}

macro_rules! plain {
    ($self:ident, $request:ident, $method:ident) => {{ done($self.core.$method($request.into_inner()).await) }};
}

#[tonic::async_trait]
impl Accounts for AccountsApi {
    async fn get_terms_and_conditions(
        &self,
        request: Request<pb::GetTermsAndConditionsRequest>,
    ) -> Rsp<pb::TermsAndConditions> {
        let _ = request;
        done(Ok(self.core.terms()))
    }

    async fn get_registration_challenge(
        &self,
        request: Request<pb::GetRegistrationChallengeRequest>,
    ) -> Rsp<pb::RegistrationChallenge> {
        plain!(self, request, get_registration_challenge)
    }

    async fn register_business(
        &self,
        request: Request<pb::RegisterBusinessRequest>,
    ) -> Rsp<pb::RegisterBusinessResponse> {
        with_caller!(self, request, register_business)
    }

    async fn get_business(&self, request: Request<pb::GetBusinessRequest>) -> Rsp<pb::Business> {
        plain!(self, request, get_business)
    }

    async fn list_program_accounts(
        &self,
        request: Request<pb::ListProgramAccountsRequest>,
    ) -> Rsp<pb::ListProgramAccountsResponse> {
        plain!(self, request, list_program_accounts)
    }

    async fn list_my_businesses(
        &self,
        request: Request<pb::ListMyBusinessesRequest>,
    ) -> Rsp<pb::ListMyBusinessesResponse> {
        with_caller!(self, request, list_my_businesses)
    }

    async fn request_employee_access(
        &self,
        request: Request<pb::RequestEmployeeAccessRequest>,
    ) -> Rsp<pb::RequestEmployeeAccessResponse> {
        with_caller!(self, request, request_employee_access)
    }

    async fn withdraw_employee_request(
        &self,
        request: Request<pb::WithdrawEmployeeRequestRequest>,
    ) -> Rsp<pb::WithdrawEmployeeRequestResponse> {
        with_caller!(self, request, withdraw_employee_request)
    }

    async fn list_employee_requests(
        &self,
        request: Request<pb::ListEmployeeRequestsRequest>,
    ) -> Rsp<pb::ListEmployeeRequestsResponse> {
        plain!(self, request, list_employee_requests)
    }

    async fn list_my_employee_requests(
        &self,
        request: Request<pb::ListMyEmployeeRequestsRequest>,
    ) -> Rsp<pb::ListMyEmployeeRequestsResponse> {
        with_caller!(self, request, list_my_employee_requests)
    }

    async fn approve_employee_request(
        &self,
        request: Request<pb::ApproveEmployeeRequestRequest>,
    ) -> Rsp<pb::ApproveEmployeeRequestResponse> {
        with_caller!(self, request, approve_employee_request)
    }

    async fn reject_employee_request(
        &self,
        request: Request<pb::RejectEmployeeRequestRequest>,
    ) -> Rsp<pb::RejectEmployeeRequestResponse> {
        with_caller!(self, request, reject_employee_request)
    }

    async fn list_employees(
        &self,
        request: Request<pb::ListEmployeesRequest>,
    ) -> Rsp<pb::ListEmployeesResponse> {
        plain!(self, request, list_employees)
    }

    async fn get_member(&self, request: Request<pb::GetMemberRequest>) -> Rsp<pb::Member> {
        plain!(self, request, get_member)
    }

    async fn set_member_roles(
        &self,
        request: Request<pb::SetMemberRolesRequest>,
    ) -> Rsp<pb::SetMemberRolesResponse> {
        with_caller!(self, request, set_member_roles)
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Rsp<pb::RemoveMemberResponse> {
        with_caller!(self, request, remove_member)
    }

    async fn create_employee_group(
        &self,
        request: Request<pb::CreateEmployeeGroupRequest>,
    ) -> Rsp<pb::CreateEmployeeGroupResponse> {
        with_caller!(self, request, create_employee_group)
    }

    async fn get_employee_group(
        &self,
        request: Request<pb::GetEmployeeGroupRequest>,
    ) -> Rsp<pb::EmployeeGroup> {
        plain!(self, request, get_employee_group)
    }

    async fn list_employee_groups(
        &self,
        request: Request<pb::ListEmployeeGroupsRequest>,
    ) -> Rsp<pb::ListEmployeeGroupsResponse> {
        plain!(self, request, list_employee_groups)
    }

    async fn update_employee_group(
        &self,
        request: Request<pb::UpdateEmployeeGroupRequest>,
    ) -> Rsp<pb::UpdateEmployeeGroupResponse> {
        with_caller!(self, request, update_employee_group)
    }

    async fn delete_employee_group(
        &self,
        request: Request<pb::DeleteEmployeeGroupRequest>,
    ) -> Rsp<pb::DeleteEmployeeGroupResponse> {
        with_caller!(self, request, delete_employee_group)
    }

    async fn add_employee_group_members(
        &self,
        request: Request<pb::AddEmployeeGroupMembersRequest>,
    ) -> Rsp<pb::AddEmployeeGroupMembersResponse> {
        with_caller!(self, request, add_employee_group_members)
    }

    async fn remove_employee_group_members(
        &self,
        request: Request<pb::RemoveEmployeeGroupMembersRequest>,
    ) -> Rsp<pb::RemoveEmployeeGroupMembersResponse> {
        with_caller!(self, request, remove_employee_group_members)
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Rsp<pb::ListAuditEventsResponse> {
        plain!(self, request, list_audit_events)
    }
}

#[tonic::async_trait]
impl AccountFacts for AccountFactsApi {
    async fn get_role_facts(
        &self,
        request: Request<pb::GetRoleFactsRequest>,
    ) -> Rsp<pb::RoleFacts> {
        plain!(self, request, get_role_facts)
    }

    async fn get_business_facts(
        &self,
        request: Request<pb::GetBusinessFactsRequest>,
    ) -> Rsp<pb::BusinessFacts> {
        plain!(self, request, get_business_facts)
    }

    async fn get_employee_group_facts(
        &self,
        request: Request<pb::GetEmployeeGroupFactsRequest>,
    ) -> Rsp<pb::EmployeeGroupFacts> {
        plain!(self, request, get_employee_group_facts)
    }

    async fn import_registry(
        &self,
        request: Request<pb::ImportRegistryRequest>,
    ) -> Rsp<pb::ImportRegistryResponse> {
        let subject = request
            .extensions()
            .get::<ccp_platform::auth::InternalClaims>()
            .map_or_else(|| "internal".to_owned(), |c| c.sub.clone());
        done(
            self.core
                .import_registry(&subject, request.into_inner())
                .await,
        )
    }
}

/// Runs one sweep expiring pending employee requests whose time has come;
/// returns how many expired.
pub async fn sweep_expired_requests(core: &Core) -> Result<usize, Error> {
    core.sweep_expired().await
}
