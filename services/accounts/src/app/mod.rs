//! The use cases of accounts, one file per area: registration and the
//! registry, employee access requests, members and their roles, employee
//! groups, and the internal facts. Every write goes through the platform's
//! unit of work ([`Writer`]): replay, revision bump, change, audit record and
//! event, idempotency record, commit. The background sweep calls here too.

/// Starts an idempotent write on `$core`'s writer: answers a replayed
/// request at once (returning from the use case), else yields the open unit
/// of work.
macro_rules! begin {
    ($core:expr, $by:expr) => {
        match $core.writer.begin($by).await? {
            ccp_platform::store::Begun::Replayed(answer) => return Ok(answer),
            ccp_platform::store::Begun::Fresh(unit) => *unit,
        }
    };
}

mod facts;
mod groups;
mod members;
mod registration;
mod requests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ccp_platform::auth::{Caller, InternalClientInterceptor, Principal};
use ccp_platform::balance::BalancedChannel;
use ccp_platform::context::ServiceContext;
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::paging::PageScope;
use ccp_platform::store::{OutboxRelay, Writer};
use ccp_proto::common::v1::ProgramRole;
use ccp_proto::identity::v1::identity_facts_client::IdentityFactsClient;
use ccp_types::RequestId;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

use crate::EVENT_STREAM;
use crate::config::AccountsSettings;
use crate::domain::{Bn9, ProgramReference, RoleLevel};

pub use registration::MAX_IMPORT;

/// The client of identity's internal facts service.
pub type IdentityClient =
    IdentityFactsClient<InterceptedService<BalancedChannel, InternalClientInterceptor>>;

/// What every use case shares: the database, the write path, the clock,
/// identity's facts and the settings.
#[derive(Clone)]
pub struct Core {
    db: DatabaseConnection,
    writer: Writer,
    ctx: ServiceContext,
    identity: IdentityClient,
    settings: Arc<AccountsSettings>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    /// Returns the shared state of the use cases.
    pub fn new(
        db: DatabaseConnection,
        ctx: ServiceContext,
        relay: OutboxRelay,
        identity: IdentityClient,
        settings: AccountsSettings,
    ) -> Self {
        let writer = Writer::new(
            db.clone(),
            relay,
            ctx.clock.clone(),
            "accounts",
            EVENT_STREAM,
        );
        Self {
            db,
            writer,
            ctx,
            identity,
            settings: Arc::new(settings),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
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
            .map_err(|status| Error::upstream("identity", status))?
            .into_inner();
        Ok(response
            .profiles
            .into_iter()
            .map(|p| (format!("person:{}", p.profile_id), (p.legal_name, p.email)))
            .collect())
    }

    /// Runs one sweep expiring pending employee requests whose time has
    /// come; returns how many expired.
    pub async fn sweep_expired_requests(&self) -> Result<usize, Error> {
        self.sweep_expired().await
    }
}

/// Parses a write's request id, collecting the violation.
fn request_id(text: &str, errs: &mut Vec<FieldViolation>) -> Option<RequestId> {
    RequestId::parse(text).map_err(|v| errs.push(v)).ok()
}

/// Returns the parsed value once every violation was reported; `field` names
/// the input when a parse failed without a violation (it cannot).
fn parsed<T>(value: Option<T>, field: &str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid_field(field, "is invalid"))
}

/// Returns INVALID_ARGUMENT when any violation was collected.
fn reject(errs: Vec<FieldViolation>) -> Result<(), Error> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(errs))
    }
}

/// Parses `businesses/{bn9}/{collection}/{uuid}`.
fn parse_uuid_child(
    name: &str,
    collection: &str,
    field: &str,
) -> Result<(Bn9, Uuid), FieldViolation> {
    let child = ccp_types::parse_business_child(name, collection, field)?;
    let id = child.uuid(field)?;
    Ok((child.business, id))
}

/// Parses `businesses/{bn9}/members/{principal}`.
fn parse_member_name(name: &str, field: &str) -> Result<(Bn9, Principal), FieldViolation> {
    let child = ccp_types::parse_business_child(name, "members", field)?;
    let p = child
        .id
        .parse::<Principal>()
        .map_err(|_| FieldViolation::new(field, "names a malformed principal"))?;
    Ok((child.business, p))
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

impl Core {
    /// Returns the page scope of `rpc` over `parent`, filtered by `filter`,
    /// for `who` (every binding of a page token, R-IN-1).
    fn pages(&self, rpc: &'static str, parent: &str, filter: String, who: &Caller) -> PageScope {
        PageScope {
            key: self.ctx.internal.page_key().clone(),
            rpc,
            parent: parent.to_owned(),
            filter,
            caller: who.principal.to_string(),
        }
    }
}

/// Returns the sort key a page token resumes after ("" for the first page).
fn page_after(scope: &PageScope, token: &str) -> Result<String, Error> {
    Ok(scope.decode(token)?.unwrap_or_default())
}

/// Returns (time, id) of a keyset token `rfc3339|id`.
fn page_after_pair(
    scope: &PageScope,
    token: &str,
) -> Result<Option<(DateTime<Utc>, String)>, Error> {
    let Some(raw) = scope.decode(token)? else {
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
