//! What every handler shares: the database, the runtime, the accounts facts
//! client, idempotent commits, audit and outbox records, and the transitions
//! that the sweep, the registration consumer and the handlers all make
//! (a request becoming visible or lapsing, a relationship expiring).

use ccp_platform::auth::{Caller, InternalClientInterceptor};
use ccp_platform::context::ServiceContext;
use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::revision::Revision;
use ccp_platform::store::{self as infra, AuditRecord, OutboxRelay};
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::{
    BusinessFacts, GetBusinessFactsRequest, GetRoleFactsRequest, RoleFacts,
};
use ccp_proto::common::v1::{BusinessPair, DomainEvent, EventType};
use chrono::{DateTime, Duration, Utc};
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::EVENT_STREAM;
use crate::domain::{EndReason, RequestState};
use crate::store::{self, RelationshipRow, RequestRow, from_us, us};

/// The accounts facts client with internal tokens.
pub type AccountsClient =
    AccountFactsClient<InterceptedService<Channel, InternalClientInterceptor>>;

/// The service name in revision tokens and events.
pub const SERVICE: &str = "delegation";

/// The actor of sweeps and event-driven changes.
pub const SYSTEM: &str = "system";

/// Shared state of the handlers and background tasks.
#[derive(Clone)]
pub struct Core {
    /// The database.
    pub db: DatabaseConnection,
    /// The runtime.
    pub ctx: ServiceContext,
    /// The outbox relay, woken after commits.
    pub relay: OutboxRelay,
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

/// Returns the revision scope of a pair (see the crate docs).
pub fn pair_scope(provider: &str, client: &str) -> String {
    format!("pair:{provider}:{client}")
}

/// Returns the caller's principal text.
pub fn principal_of<T>(request: &tonic::Request<T>) -> std::result::Result<String, tonic::Status> {
    let caller: &Caller = ccp_platform::auth::caller(request)?;
    Ok(caller.principal.to_string())
}

/// Checks a write's request id.
pub fn check_request_id(request_id: &str, violations: &mut Vec<FieldViolation>) {
    if request_id.is_empty() || request_id.chars().count() > 128 {
        violations.push(FieldViolation::new(
            "request_id",
            "must be 1–128 characters",
        ));
    }
}

/// The context of one write: who, which method, which request id.
#[derive(Debug, Clone)]
pub struct Write {
    /// The caller.
    pub principal: String,
    /// The RPC.
    pub method: &'static str,
    /// The idempotency key.
    pub request_id: String,
}

/// What a change tells the world: one audit record and one event.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// The business acted for.
    pub acting_for: String,
    /// The other business concerned.
    pub other_business: Option<String>,
    /// The audit action, e.g. `delegation.request.send`.
    pub action: String,
    /// The resource changed.
    pub target: String,
    /// JSON before.
    pub before_json: String,
    /// JSON after.
    pub after_json: String,
    /// The event type.
    pub event: i32,
    /// Businesses named by the event.
    pub businesses: Vec<String>,
    /// Principals named by the event.
    pub principals: Vec<String>,
    /// Pairs named by the event.
    pub pairs: Vec<(String, String)>,
    /// Event details.
    pub details_json: String,
}

impl Core {
    /// Returns the current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    /// Returns the stored response of an earlier identical write, if any.
    pub async fn replay<R: Message + Default>(&self, w: &Write) -> Result<Option<R>> {
        match infra::idempotent_response(&self.db, &w.principal, w.method, &w.request_id).await? {
            Some(bytes) => Ok(Some(R::decode(bytes.as_slice()).map_err(Error::internal)?)),
            None => Ok(None),
        }
    }

    /// Stores the response under the request id, commits, and wakes the
    /// relay. A concurrent duplicate (unique violation) returns the stored one.
    pub async fn commit<R: Message + Default>(
        &self,
        txn: DatabaseTransaction,
        w: &Write,
        response: R,
    ) -> Result<R> {
        let now = self.now();
        let stored = infra::store_idempotent_response(
            &txn,
            &w.principal,
            w.method,
            &w.request_id,
            &response.encode_to_vec(),
            now,
        )
        .await;
        match stored {
            Ok(()) => {}
            Err(err) if ccp_platform::db::is_unique_violation(&err) => {
                drop(txn);
                return self
                    .replay(w)
                    .await?
                    .ok_or_else(|| Error::aborted("a concurrent duplicate write is in progress"));
            }
            Err(err) => return Err(err.into()),
        }
        txn.commit().await?;
        self.relay.notify();
        Ok(response)
    }

    /// Commits a background change and wakes the relay.
    pub async fn commit_plain(&self, txn: DatabaseTransaction) -> Result<()> {
        txn.commit().await?;
        self.relay.notify();
        Ok(())
    }

    /// Begins a transaction.
    pub async fn begin(&self) -> Result<DatabaseTransaction> {
        Ok(self.db.begin().await?)
    }

    /// Appends the audit record and the outbox event of a change.
    pub async fn record<C: ConnectionTrait>(
        &self,
        txn: &C,
        actor: &str,
        request_id: &str,
        revision: &str,
        change: Change,
    ) -> Result<()> {
        let now = self.now();
        infra::append_audit(
            txn,
            &AuditRecord {
                actor: actor.to_owned(),
                acting_for: Some(change.acting_for.clone()),
                other_business: change.other_business.clone(),
                action: change.action.clone(),
                target: change.target.clone(),
                before_json: change.before_json.clone(),
                after_json: change.after_json.clone(),
                request_id: request_id.to_owned(),
                trace_id: String::new(),
            },
            now,
        )
        .await?;
        let mut principals = change.principals;
        // A pair change affects every principal the provider assigned to the client.
        for (provider, client) in &change.pairs {
            principals.extend(store::assignees_of_pair(txn, provider, client).await?);
        }
        principals.sort();
        principals.dedup();
        let mut businesses = change.businesses;
        businesses.sort();
        businesses.dedup();
        let event = DomainEvent {
            id: uuid::Uuid::now_v7().to_string(),
            r#type: change.event,
            service: SERVICE.to_owned(),
            occurred_at: Some(infra::timestamp(now)),
            businesses,
            principals,
            pairs: change
                .pairs
                .into_iter()
                .map(|(provider, client)| BusinessPair { provider, client })
                .collect(),
            token_families: Vec::new(),
            revision: revision.to_owned(),
            actor: actor.to_owned(),
            subject: change.target,
            details_json: change.details_json,
        };
        infra::enqueue_event(txn, EVENT_STREAM, &event, now).await?;
        Ok(())
    }

    /// Bumps the pair's revision (locking the pair on PostgreSQL until commit)
    /// and returns its token. Always the first statement of a pair change.
    pub async fn bump_pair<C: ConnectionTrait>(
        &self,
        txn: &C,
        provider: &str,
        client: &str,
    ) -> Result<String> {
        let scope = pair_scope(provider, client);
        let counter = infra::bump_revision(txn, &scope).await?;
        Ok(Revision::new(SERVICE, scope, counter).encode())
    }

    /// Bumps a provider's revision (the scope of its clients list, client
    /// groups and assignments) and returns its token. Within a pair change it
    /// comes after the pair's bump, a fixed order that cannot deadlock.
    pub async fn bump_business<C: ConnectionTrait>(&self, txn: &C, bn: &str) -> Result<String> {
        let counter = infra::bump_revision(txn, bn).await?;
        Ok(Revision::new(SERVICE, bn, counter).encode())
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
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "accounts business facts failed");
                Error::unavailable("accounts is unavailable; try again")
            })
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
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "accounts role facts failed");
                Error::unavailable("accounts is unavailable; try again")
            })
    }

    /// Returns true when the business has registered: from what this service
    /// learnt, or else by asking accounts now (and recording the answer, which
    /// makes waiting requests to it visible).
    pub async fn ensure_registered(&self, bn: &str) -> Result<bool> {
        if let Some(at) = store::registered_at(&self.db, bn).await? {
            // A request sent while the registration was being recorded may
            // still wait: make it visible now (idempotent).
            if !store::invisible_requests_to(&self.db, bn).await?.is_empty() {
                self.mark_registered(bn, from_us(at)).await?;
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
            .and_then(infra::from_timestamp)
            .unwrap_or_else(|| self.now());
        self.mark_registered(bn, at).await?;
        Ok(true)
    }

    /// Records that `bn` registered at `at` and makes the requests waiting
    /// for it visible (their pending period starts then), in one transaction;
    /// `position` (the consumer's) is stored in the same transaction.
    pub async fn mark_registered(&self, bn: &str, at: DateTime<Utc>) -> Result<()> {
        let txn = self.begin().await?;
        self.mark_registered_in(&txn, bn, at).await?;
        self.commit_plain(txn).await
    }

    /// Like [`Core::mark_registered`] inside the caller's transaction.
    pub async fn mark_registered_in(
        &self,
        txn: &DatabaseTransaction,
        bn: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let at = if store::record_registered(txn, bn, us(at)).await? {
            at
        } else {
            store::registered_at(txn, bn).await?.map_or(at, from_us)
        };
        for row in store::invisible_requests_to(txn, bn).await? {
            let revision = self.bump_pair(txn, &row.provider, &row.client).await?;
            let visible = us(at).max(row.create_us);
            let expire = visible
                + Duration::days(self.pending_days)
                    .num_microseconds()
                    .unwrap_or(0);
            if store::make_visible(txn, &row.id, visible, expire).await? {
                self.record(
                    txn,
                    SYSTEM,
                    "",
                    &revision,
                    Change {
                        acting_for: row.client.clone(),
                        other_business: Some(row.provider.clone()),
                        action: "delegation.request.visible".to_owned(),
                        target: format!("businesses/{}/receivedRequests/{}", row.client, row.id),
                        after_json: serde_json::json!({
                            "visible_time": from_us(visible).to_rfc3339(),
                            "expire_time": from_us(expire).to_rfc3339(),
                        })
                        .to_string(),
                        event: EventType::RelationshipRequestVisible as i32,
                        businesses: vec![row.provider.clone(), row.client.clone()],
                        pairs: vec![(row.provider.clone(), row.client.clone())],
                        ..Change::default()
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Records that a pending request lapsed (EXPIRED at its expiry instant).
    /// The caller bumped the pair.
    pub async fn record_request_lapse<C: ConnectionTrait>(
        &self,
        txn: &C,
        row: &RequestRow,
        revision: &str,
    ) -> Result<bool> {
        let Some(expire) = row.expire_us else {
            return Ok(false);
        };
        if !store::decide_request(
            txn,
            &row.id,
            RequestState::Expired.as_str(),
            expire,
            SYSTEM,
            "",
            "",
        )
        .await?
        {
            return Ok(false);
        }
        self.record(
            txn,
            SYSTEM,
            "",
            revision,
            Change {
                acting_for: row.provider.clone(),
                other_business: Some(row.client.clone()),
                action: "delegation.request.expire".to_owned(),
                target: format!("businesses/{}/sentRequests/{}", row.provider, row.id),
                before_json: r#"{"state":"PENDING"}"#.to_owned(),
                after_json: r#"{"state":"EXPIRED"}"#.to_owned(),
                event: EventType::RelationshipRequestExpired as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                ..Change::default()
            },
        )
        .await?;
        Ok(true)
    }

    /// Records that a relationship expired (ended at its expiry instant,
    /// reason EXPIRED, by `system`). The caller bumped pair and provider.
    pub async fn record_relationship_lapse<C: ConnectionTrait>(
        &self,
        txn: &C,
        row: &RelationshipRow,
        revision: &str,
    ) -> Result<bool> {
        let mut ended = row.clone();
        ended.end_us = Some(row.expire_us);
        ended.end_reason = Some(EndReason::Expired.as_str().to_owned());
        ended.ended_by = SYSTEM.to_owned();
        ended.update_us = us(self.now());
        ended.version = row.version + 1;
        ended.remind_30_us = None;
        ended.remind_7_us = None;
        ended.remind_1_us = None;
        if !store::save_relationship(txn, &ended, row.version).await? {
            return Ok(false);
        }
        self.record(
            txn,
            SYSTEM,
            "",
            revision,
            Change {
                acting_for: row.client.clone(),
                other_business: Some(row.provider.clone()),
                action: "delegation.relationship.expire".to_owned(),
                target: format!("businesses/{}/relationships/{}", row.client, row.id),
                before_json: r#"{"state":"ACTIVE"}"#.to_owned(),
                after_json: r#"{"state":"ENDED","end_reason":"EXPIRED"}"#.to_owned(),
                event: EventType::RelationshipEnded as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                details_json: r#"{"end_reason":"EXPIRED"}"#.to_owned(),
                ..Change::default()
            },
        )
        .await?;
        Ok(true)
    }
}
