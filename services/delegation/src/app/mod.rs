//! The use cases of delegation, one file per area, and what they share
//! ([`Core`]): the write path, the accounts facts client, and the transitions
//! that the sweep, the registration consumer and the RPCs all make (a request
//! becoming visible or lapsing, a relationship expiring). Every write goes
//! through `ccp_platform::store::Writer`. Background work calls this module,
//! never `grpc`.

pub mod assignments;
pub mod client_groups;
pub mod convert;
pub mod facts;
pub mod relationships;
pub mod requests;
pub mod sweeps;

use ccp_platform::auth::InternalClientInterceptor;
use ccp_platform::balance::BalancedChannel;
use ccp_platform::context::ServiceContext;
use ccp_platform::error::{Error, Result};
use ccp_platform::revision::Revision;
use ccp_platform::store::{Begun, Change, UnitOfWork, WriteBy, Writer, current_revision};
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::{
    BusinessFacts, GetBusinessFactsRequest, GetRoleFactsRequest, RoleFacts,
};
use ccp_proto::common::v1::EventType;
use ccp_types::RequestId;
use chrono::{DateTime, Duration, Utc};
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::service::interceptor::InterceptedService;

use crate::domain::{EndReason, Party, Relationship, RelationshipRequest, RequestState};
use crate::store::{self, Decision};

/// The accounts facts client with internal tokens.
pub type AccountsClient =
    AccountFactsClient<InterceptedService<BalancedChannel, InternalClientInterceptor>>;

/// The service name in revision tokens and events.
pub const SERVICE: &str = "delegation";

/// The actor of sweeps and event-driven changes.
pub const SYSTEM: &str = "system";

/// Shared state of the use cases and background tasks.
#[derive(Clone)]
pub struct Core {
    /// The write path (database, relay, clock).
    pub writer: Writer,
    /// The runtime.
    pub ctx: ServiceContext,
    /// Accounts' facts.
    pub accounts: AccountsClient,
    /// Days a visible request stays pending.
    pub pending_days: i64,
    /// The furthest expiry, in days.
    pub max_days: i64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("pending_days", &self.pending_days)
            .field("max_days", &self.max_days)
            .finish_non_exhaustive()
    }
}

pub use ccp_platform::revision::pair_scope;

/// Returns `t` at the microsecond the store keeps, so an answer built before
/// a read-back equals the answer after it.
pub(crate) fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Records `change` of the pair (`provider`, `client`) made on behalf of
/// the `acting` party: both businesses and the pair named, the other party as
/// the other business, and as principals `actor` (if any) and every principal
/// the provider assigned to the client (R-EV-1).
pub(crate) async fn record_pair<R: Message + Default>(
    w: &mut UnitOfWork<R>,
    provider: &str,
    client: &str,
    acting: Party,
    actor: Option<&str>,
    change: Change,
) -> Result<()> {
    let mut principals: Vec<String> = actor.into_iter().map(str::to_owned).collect();
    principals.extend(store::assignees_of_pair(w.txn(), provider, client).await?);
    let (acting_for, other) = match acting {
        Party::Provider => (provider, client),
        Party::Client => (client, provider),
    };
    let change = change
        .acting_for(acting_for)
        .other_business(other)
        .businesses([provider, client])
        .pairs([(provider.to_owned(), client.to_owned())])
        .principals(principals);
    w.record(change).await
}

impl Core {
    /// Returns the stored answer when `principal` already made this write
    /// with `request_id`: for a write that asks another service before it
    /// opens its unit of work (`Writer::begin` checks again).
    pub(crate) async fn answered<R: Message + Default>(
        &self,
        principal: &str,
        method: &'static str,
        request_id: &RequestId,
    ) -> Result<Option<R>> {
        self.writer
            .replayed(&WriteBy::idempotent(principal, method, request_id.clone()))
            .await
    }

    /// Returns the database (reads outside a unit of work).
    pub fn db(&self) -> &DatabaseConnection {
        self.writer.db()
    }

    /// Returns the current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    /// Returns the page scope of `rpc` over `parent`, filtered by `filter`,
    /// for `caller` (every binding of a page token, R-IN-1).
    pub(crate) fn pages(
        &self,
        rpc: &'static str,
        parent: &str,
        filter: String,
        caller: &str,
    ) -> ccp_platform::paging::PageScope {
        ccp_platform::paging::PageScope {
            key: self.ctx.internal.page_key().clone(),
            rpc,
            parent: parent.to_owned(),
            filter,
            caller: caller.to_owned(),
        }
    }

    /// Returns accounts' facts of a business; UNAVAILABLE when accounts cannot answer.
    pub async fn business_facts(&self, bn: &str) -> Result<BusinessFacts> {
        let mut client = self.accounts.clone();
        client
            .get_business_facts(GetBusinessFactsRequest {
                business: bn.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| Error::upstream("accounts", status))
    }

    /// Returns accounts' role facts of a principal; UNAVAILABLE when accounts cannot answer.
    pub async fn role_facts(&self, principal: &str) -> Result<RoleFacts> {
        let mut client = self.accounts.clone();
        client
            .get_role_facts(GetRoleFactsRequest {
                principal: principal.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| Error::upstream("accounts", status))
    }

    /// Returns true when the business has registered: from what this service
    /// learnt, or else by asking accounts now (and recording the answer, which
    /// makes waiting requests to it visible).
    pub async fn ensure_registered(&self, bn: &str) -> Result<bool> {
        if let Some(at) = store::registered_at(self.db(), bn).await? {
            // A request sent while the registration was being recorded may
            // still wait: make it visible now (idempotent).
            if !store::invisible_requests_to(self.db(), bn)
                .await?
                .is_empty()
            {
                self.mark_registered(bn, at).await?;
            }
            return Ok(true);
        }
        let facts = self.business_facts(bn).await?;
        if !facts.registered {
            return Ok(false);
        }
        let at = facts
            .register_time
            .as_ref()
            .and_then(ccp_platform::store::from_timestamp)
            .unwrap_or_else(|| self.now());
        self.mark_registered(bn, at).await?;
        Ok(true)
    }

    /// Records that `bn` registered at `at` and makes the requests waiting
    /// for it visible (their pending period starts then), in one unit of work.
    pub async fn mark_registered(&self, bn: &str, at: DateTime<Utc>) -> Result<()> {
        let mut w = begin_system(&self.writer).await?;
        let recorded = self.mark_registered_in(&mut w, bn, at).await?;
        if finish_system(w, recorded).await? {
            Ok(())
        } else {
            Err(Error::aborted(
                "a concurrent change made the requests visible first; retry",
            ))
        }
    }

    /// Like [`Core::mark_registered`] inside the caller's unit of work
    /// (the registration consumer stores its position in the same one);
    /// returns how many changes it recorded.
    pub async fn mark_registered_in<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        bn: &str,
        at: DateTime<Utc>,
    ) -> Result<usize> {
        let mut recorded = 0;
        let at = if store::record_registered(w.txn(), bn, at).await? {
            stored(at)
        } else {
            store::registered_at(w.txn(), bn).await?.unwrap_or(at)
        };
        for row in store::invisible_requests_to(w.txn(), bn).await? {
            let revision = w
                .bump_revision(&pair_scope(&row.provider, &row.client))
                .await?;
            let visible = at.max(row.create_time);
            let expire = visible + Duration::days(self.pending_days);
            if store::make_visible(w.txn(), &row.id, visible, expire).await? {
                record_pair(
                    w,
                    &row.provider,
                    &row.client,
                    Party::Client,
                    None,
                    Change::new(
                        EventType::RelationshipRequestVisible,
                        "delegation.request.visible",
                        format!("businesses/{}/receivedRequests/{}", row.client, row.id),
                    )
                    .after(serde_json::json!({
                        "visible_time": stored(visible).to_rfc3339(),
                        "expire_time": stored(expire).to_rfc3339(),
                    }))
                    .revision(revision),
                )
                .await?;
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    /// Records that a pending request lapsed (EXPIRED at its expiry instant).
    /// The caller bumped the pair (`revision`).
    pub async fn record_request_lapse<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        row: &RelationshipRequest,
        revision: &str,
    ) -> Result<bool> {
        let Some(expire) = row.expire_time else {
            return Ok(false);
        };
        let decision = Decision {
            state: RequestState::Expired,
            at: expire,
            by: SYSTEM,
            reject_reason: "",
            relationship_id: "",
        };
        if !store::decide_request(w.txn(), &row.id, &decision).await? {
            return Ok(false);
        }
        record_pair(
            w,
            &row.provider,
            &row.client,
            Party::Provider,
            None,
            Change::new(
                EventType::RelationshipRequestExpired,
                "delegation.request.expire",
                format!("businesses/{}/sentRequests/{}", row.provider, row.id),
            )
            .before(r#"{"state":"PENDING"}"#)
            .after(r#"{"state":"EXPIRED"}"#)
            .revision(revision),
        )
        .await?;
        Ok(true)
    }

    /// Records that a relationship expired (ended at its expiry instant,
    /// reason EXPIRED, by `system`). The caller bumped pair and provider;
    /// the event carries `revision`.
    pub async fn record_relationship_lapse<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        row: &Relationship,
        revision: &str,
    ) -> Result<bool> {
        let mut ended = row.clone();
        ended.ended = Some((row.expire_time, EndReason::Expired));
        ended.ended_by = SYSTEM.to_owned();
        ended.update_time = stored(w.now());
        ended.version = row.version + 1;
        ended.reminders = [None; 3];
        if !store::save_relationship(w.txn(), &ended, row.version).await? {
            return Ok(false);
        }
        record_pair(
            w,
            &row.provider,
            &row.client,
            Party::Client,
            None,
            Change::new(
                EventType::RelationshipEnded,
                "delegation.relationship.expire",
                format!("businesses/{}/relationships/{}", row.client, row.id),
            )
            .before(r#"{"state":"ACTIVE"}"#)
            .after(r#"{"state":"ENDED","end_reason":"EXPIRED"}"#)
            .details(r#"{"end_reason":"EXPIRED"}"#)
            .revision(revision),
        )
        .await?;
        Ok(true)
    }

    /// Returns the token of the pair's current revision (for a change that
    /// does not bump it, like a reminder).
    pub(crate) async fn pair_revision<C: ConnectionTrait>(
        &self,
        txn: &C,
        provider: &str,
        client: &str,
    ) -> Result<String> {
        let scope = pair_scope(provider, client);
        let counter = current_revision(txn, &scope).await?;
        Ok(Revision::new(SERVICE, scope, counter).encode())
    }
}

/// A system write's answer: nothing to store (system writes are never replayed).
pub(crate) type SystemWrite = UnitOfWork<()>;

/// Opens a unit of work by `system` (sweeps, the registration consumer).
pub(crate) async fn begin_system(writer: &Writer) -> Result<SystemWrite> {
    match writer.begin::<()>(WriteBy::system()).await? {
        Begun::Fresh(w) => Ok(*w),
        Begun::Replayed(()) => Err(Error::internal(anyhow::anyhow!(
            "a system write was replayed"
        ))),
    }
}

/// Commits a system write that `recorded` changes: with their records, or as
/// unchanged when it recorded none and bumped nothing. A write that bumped a
/// revision but recorded nothing (another writer got there first) rolls back
/// and answers false.
pub(crate) async fn finish_system(w: SystemWrite, recorded: usize) -> Result<bool> {
    if recorded > 0 {
        w.commit(()).await?;
    } else if w.revision().is_none() {
        w.commit_unchanged(()).await?;
    } else {
        return Ok(false);
    }
    Ok(true)
}
