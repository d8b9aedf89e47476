//! The one write path of every service: a unit of work that replays a
//! repeated request, opens the transaction, bumps the revision, lets the
//! service change its rows, writes the audit record (R-AU-1) and the outbox
//! event (R-EV-1) of each change, stores the idempotency record, commits and
//! wakes the relay.
//!
//! A unit of work cannot commit a change without its audit record and event:
//! [`UnitOfWork::commit`] refuses (and rolls back) when nothing was recorded,
//! and [`UnitOfWork::commit_unchanged`] refuses when a revision was bumped.
//! Dropping a unit of work without committing rolls everything back.
//!
//! A forwarded write carries the facts revisions the gateway decided it on
//! (R-GW-1, [`crate::auth::DECIDED_ON_HEADER`]); bumping a scope that moved
//! past its decided revision refuses the write with ABORTED
//! ([`Error::facts_changed`]), inside the transaction that holds the scope's
//! row lock, so no write lands on facts the gateway did not see.
//!
//! ```ignore
//! let mut w = match core.writer.begin(WriteBy::idempotent(&actor, "SetMemberRoles", request_id)).await? {
//!     Begun::Replayed(response) => return Ok(response),
//!     Begun::Fresh(w) => *w,
//! };
//! let revision = w.bump_revision(bn9.as_str()).await?;
//! store::set_roles(w.txn(), …).await?;
//! w.record(Change::new(EventType::MemberRolesChanged, "accounts.member.set_roles", &name).acting_for(&bn9)).await?;
//! Ok(w.commit(response).await?.into_inner())
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use ccp_proto::common::v1::{BusinessPair, DomainEvent, EventType};
use ccp_types::RequestId;
use chrono::{DateTime, Utc};
use prost::Message;
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use super::{
    AuditRecord, OutboxRelay, append_audit, bump_revision, enqueue_event, idempotent_response,
    store_idempotent_response, timestamp,
};
use crate::clock::Clock;
use crate::error::Error;
use crate::revision::Revision;

tokio::task_local! {
    // The revisions travel with the call like its deadline: a task-local set
    // by the server's auth wrapper, rather than one more argument on every use case.
    static DECIDED_ON: Arc<[Revision]>;
}

/// Runs `call` (a request's handling) with the facts revisions the gateway
/// decided it on; every unit of work begun inside checks its bumps against them.
pub async fn deciding_on<F: Future>(revisions: Vec<Revision>, call: F) -> F::Output {
    DECIDED_ON.scope(revisions.into(), call).await
}

/// Returns the facts revisions of the call being handled (empty outside one,
/// or when it came with none).
pub fn decided_on() -> Arc<[Revision]> {
    DECIDED_ON
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::from(Vec::new()))
}

/// The write path of one service: its database, its outbox relay, its clock
/// and the names its audit records and events carry.
#[derive(Clone)]
pub struct Writer {
    db: DatabaseConnection,
    relay: OutboxRelay,
    clock: Clock,
    service: &'static str,
    stream: String,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("service", &self.service)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Returns the write path of `service`, whose events go to `stream`.
    pub fn new(
        db: DatabaseConnection,
        relay: OutboxRelay,
        clock: Clock,
        service: &'static str,
        stream: impl Into<String>,
    ) -> Self {
        Self {
            db,
            relay,
            clock,
            service,
            stream: stream.into(),
        }
    }

    /// Returns the database (for reads outside a unit of work).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Returns the service name events and revisions carry.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Starts a write: the stored answer when this request was made before,
    /// else an open unit of work whose instant is now.
    pub async fn begin<R: Message + Default>(&self, by: WriteBy) -> Result<Begun<R>, Error> {
        if let Some(key) = &by.key
            && let Some(stored) = self.replay::<R>(&by.actor, key).await?
        {
            return Ok(Begun::Replayed(stored));
        }
        let txn = crate::db::begin_write(&self.db).await?;
        Ok(Begun::Fresh(Box::new(UnitOfWork {
            txn,
            writer: self.clone(),
            now: self.clock.now(),
            by,
            revision: None,
            bumped: false,
            checked: Vec::new(),
            decided_on: decided_on(),
            recorded: 0,
            response: PhantomData,
        })))
    }

    /// Returns the stored answer when `by`'s request was made before, without
    /// opening a transaction: for a write that must call another service
    /// before it begins (no transaction is held across a network call).
    /// [`Writer::begin`] checks again.
    pub async fn replayed<R: Message + Default>(&self, by: &WriteBy) -> Result<Option<R>, Error> {
        match &by.key {
            Some(key) => self.replay(&by.actor, key).await,
            None => Ok(None),
        }
    }

    async fn replay<R: Message + Default>(
        &self,
        actor: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<R>, Error> {
        match idempotent_response(&self.db, actor, key.method, key.request_id.as_str()).await? {
            Some(bytes) => Ok(Some(R::decode(bytes.as_slice()).map_err(Error::internal)?)),
            None => Ok(None),
        }
    }
}

#[derive(Debug, Clone)]
struct IdempotencyKey {
    method: &'static str,
    request_id: RequestId,
}

/// Who makes a write, and whether it is replayed by request id.
#[derive(Debug, Clone)]
pub struct WriteBy {
    actor: String,
    request_id: RequestId,
    key: Option<IdempotencyKey>,
}

impl WriteBy {
    /// A write by `actor` (a principal) that a retry with the same
    /// `request_id` answers from the first result.
    pub fn idempotent(
        actor: impl Into<String>,
        method: &'static str,
        request_id: RequestId,
    ) -> Self {
        Self {
            actor: actor.into(),
            key: Some(IdempotencyKey {
                method,
                request_id: request_id.clone(),
            }),
            request_id,
        }
    }

    /// A write by `actor` that is never replayed (sign-in, refresh, token
    /// issue, family revocation); its audit record gets a fresh request id.
    pub fn once(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            request_id: RequestId::generate(),
            key: None,
        }
    }

    /// A write the system makes itself (sweeps, registry import).
    pub fn system() -> Self {
        Self::once("system")
    }
}

/// How a write starts: answered from an earlier identical request, or fresh.
#[derive(Debug)]
pub enum Begun<R> {
    /// The stored answer of the first request with this request id.
    Replayed(R),
    /// A unit of work to make the change in (boxed: it is large, the
    /// replay small).
    Fresh(Box<UnitOfWork<R>>),
}

/// How a write ended: committed now, or answered from an earlier identical
/// request (a concurrent duplicate won).
#[derive(Debug, Clone, PartialEq)]
pub enum Written<R> {
    /// This call made the change.
    Fresh(R),
    /// Another call with the same request id made it; this is its answer.
    Replayed(R),
}

impl<R> Written<R> {
    /// Returns the answer.
    pub fn into_inner(self) -> R {
        match self {
            Self::Fresh(r) | Self::Replayed(r) => r,
        }
    }

    /// Returns true when the answer is a replay of an earlier call.
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }
}

/// One open write: a transaction plus what it has recorded so far.
pub struct UnitOfWork<R> {
    txn: DatabaseTransaction,
    writer: Writer,
    now: DateTime<Utc>,
    by: WriteBy,
    revision: Option<String>,
    bumped: bool,
    /// The scopes already checked against the decided revisions (a second
    /// bump of one scope sees this write's own first bump).
    checked: Vec<String>,
    /// What the gateway decided this write on (R-GW-1).
    decided_on: Arc<[Revision]>,
    recorded: usize,
    response: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for UnitOfWork<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("service", &self.writer.service)
            .field("actor", &self.by.actor)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

impl<R: Message + Default> UnitOfWork<R> {
    /// Returns the transaction, for the service's own statements.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Returns the instant of this write (one per write, from the clock).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Returns who writes.
    pub fn actor(&self) -> &str {
        &self.by.actor
    }

    /// Returns the write's request id.
    pub fn request_id(&self) -> &RequestId {
        &self.by.request_id
    }

    /// Increments the revision counter of `scope` (a BN9, a principal, a
    /// pair) and returns its revision token; events recorded afterwards carry
    /// it. On PostgreSQL the row stays locked until commit, serializing
    /// concurrent changes to one scope: bump before reading what you change.
    ///
    /// Refuses with ABORTED (`FACTS_CHANGED`) when the gateway decided this
    /// write on an older revision of `scope` (R-GW-1): a change landed
    /// between its decision and this write.
    pub async fn bump_revision(&mut self, scope: &str) -> Result<String, Error> {
        let counter = bump_revision(&self.txn, scope).await?;
        if !self.checked.iter().any(|s| s == scope) {
            self.checked.push(scope.to_owned());
            let before = counter - 1;
            let stale = self.decided_on.iter().any(|d| {
                d.service == self.writer.service && d.scope == scope && d.counter < before
            });
            if stale {
                return Err(Error::facts_changed(&Revision::new(
                    self.writer.service,
                    scope,
                    before,
                )));
            }
        }
        let token = Revision::new(self.writer.service, scope, counter).encode();
        self.bumped = true;
        self.revision = Some(token.clone());
        Ok(token)
    }

    /// Returns the revision token of the last bump, if any.
    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// Appends the audit record and queues the event of one change, in this
    /// transaction.
    pub async fn record(&mut self, change: Change) -> Result<(), Error> {
        let actor = change.by.clone().unwrap_or_else(|| self.by.actor.clone());
        let acting_for = change.acting_for.clone();
        append_audit(
            &self.txn,
            &AuditRecord {
                actor: actor.clone(),
                acting_for: acting_for.clone(),
                other_business: change.other_business.clone(),
                action: change.action.clone(),
                target: change.target.clone(),
                before_json: change.before_json.clone(),
                after_json: change.after_json.clone(),
                request_id: self.by.request_id.to_string(),
                trace_id: String::new(),
            },
            self.now,
        )
        .await?;
        self.recorded += 1;
        if !change.publish {
            return Ok(());
        }
        let mut businesses = change.businesses;
        businesses.extend(acting_for);
        businesses.sort();
        businesses.dedup();
        let mut principals = change.principals;
        principals.sort();
        principals.dedup();
        let event = DomainEvent {
            id: uuid::Uuid::now_v7().to_string(),
            r#type: change.event as i32,
            service: self.writer.service.to_owned(),
            occurred_at: Some(timestamp(self.now)),
            businesses,
            principals,
            pairs: change
                .pairs
                .into_iter()
                .map(|(provider, client)| BusinessPair { provider, client })
                .collect(),
            token_families: change.token_families,
            revision: change
                .revision
                .or_else(|| self.revision.clone())
                .unwrap_or_default(),
            actor,
            subject: change.subject.unwrap_or(change.target),
            details_json: change.details_json,
        };
        enqueue_event(&self.txn, &self.writer.stream, &event, self.now).await?;
        Ok(())
    }

    /// Stores `response` under the request id (when the write has one),
    /// commits and wakes the relay. Refuses, rolling back, when no change was
    /// recorded. A concurrent duplicate that committed first is answered
    /// with its stored response.
    pub async fn commit(self, response: R) -> Result<Written<R>, Error> {
        if self.recorded == 0 {
            return Err(Error::internal(anyhow::anyhow!(
                "{}: a write tried to commit without an audit record and event",
                self.writer.service
            )));
        }
        self.finish(response).await
    }

    /// Commits the recorded changes without storing an answer under the
    /// request id, for a write that records what happened and then answers
    /// with an error (a failed registration attempt, a request found expired
    /// when approved): a retry is evaluated afresh. Refuses, rolling back,
    /// when nothing was recorded.
    pub async fn commit_without_answer(self) -> Result<(), Error> {
        if self.recorded == 0 {
            return Err(Error::internal(anyhow::anyhow!(
                "{}: a write tried to commit without an audit record",
                self.writer.service
            )));
        }
        self.txn.commit().await?;
        self.writer.relay.notify();
        Ok(())
    }

    /// Commits a write that changed nothing (its answer is still stored
    /// under the request id). Refuses when a revision was bumped or a change
    /// recorded: those commit with [`UnitOfWork::commit`].
    pub async fn commit_unchanged(self, response: R) -> Result<Written<R>, Error> {
        if self.bumped || self.recorded > 0 {
            return Err(Error::internal(anyhow::anyhow!(
                "{}: a write that changed state committed as unchanged",
                self.writer.service
            )));
        }
        self.finish(response).await
    }

    async fn finish(self, response: R) -> Result<Written<R>, Error> {
        let Self {
            txn,
            writer,
            by,
            now,
            ..
        } = self;
        if let Some(key) = &by.key {
            let stored = store_idempotent_response(
                &txn,
                &by.actor,
                key.method,
                key.request_id.as_str(),
                &response.encode_to_vec(),
                now,
            )
            .await;
            match stored {
                Ok(()) => {}
                Err(err) if crate::db::is_unique_violation(&err) => {
                    txn.rollback().await?;
                    return writer
                        .replay(&by.actor, key)
                        .await?
                        .map(Written::Replayed)
                        .ok_or_else(|| {
                            Error::aborted("a concurrent request with the same request_id is in progress; retry")
                        });
                }
                Err(err) => return Err(err.into()),
            }
        }
        txn.commit().await?;
        writer.relay.notify();
        Ok(Written::Fresh(response))
    }
}

/// What one change tells the world: its audit record and its event.
#[derive(Debug, Clone)]
pub struct Change {
    event: EventType,
    action: String,
    target: String,
    acting_for: Option<String>,
    other_business: Option<String>,
    before_json: String,
    after_json: String,
    businesses: Vec<String>,
    principals: Vec<String>,
    pairs: Vec<(String, String)>,
    token_families: Vec<String>,
    revision: Option<String>,
    subject: Option<String>,
    details_json: String,
    by: Option<String>,
    publish: bool,
}

impl Change {
    /// A change of `target` (a resource name) audited as `action` (e.g.
    /// `accounts.member.set_roles`) and published as `event`.
    pub fn new(event: EventType, action: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            event,
            action: action.into(),
            target: target.into(),
            acting_for: None,
            other_business: None,
            before_json: String::new(),
            after_json: String::new(),
            businesses: Vec::new(),
            principals: Vec::new(),
            pairs: Vec::new(),
            token_families: Vec::new(),
            revision: None,
            subject: None,
            details_json: String::new(),
            by: None,
            publish: true,
        }
    }

    /// A change that is audited as `action` on `target` but publishes no
    /// event (an attempt that failed, an import's own summary, one step of a
    /// write whose event another change of the unit carries).
    pub fn audit(action: impl Into<String>, target: impl Into<String>) -> Self {
        let mut change = Self::new(EventType::Unspecified, action, target);
        change.publish = false;
        change
    }

    /// The actor of this change when it is not the unit's (e.g. `system`
    /// expiring a request inside a person's write).
    pub fn by(mut self, actor: impl Into<String>) -> Self {
        self.by = Some(actor.into());
        self
    }

    /// The business the actor acted for (also named by the event).
    pub fn acting_for(mut self, bn9: impl Into<String>) -> Self {
        self.acting_for = Some(bn9.into());
        self
    }

    /// The other business concerned (a relationship's other party), so both
    /// sides see the record in their history.
    pub fn other_business(mut self, bn9: impl Into<String>) -> Self {
        self.other_business = Some(bn9.into());
        self
    }

    /// The state before, as JSON (omit for creations).
    pub fn before(mut self, json: impl ToJson) -> Self {
        self.before_json = json.to_json();
        self
    }

    /// The state after, as JSON (omit for deletions).
    pub fn after(mut self, json: impl ToJson) -> Self {
        self.after_json = json.to_json();
        self
    }

    /// Businesses the event names, so every cache of their facts is evicted.
    pub fn businesses<I: IntoIterator<Item = S>, S: Into<String>>(mut self, items: I) -> Self {
        self.businesses.extend(items.into_iter().map(Into::into));
        self
    }

    /// Principals the event names.
    pub fn principals<I: IntoIterator<Item = S>, S: Into<String>>(mut self, items: I) -> Self {
        self.principals.extend(items.into_iter().map(Into::into));
        self
    }

    /// (provider, client) pairs the event names.
    pub fn pairs<I: IntoIterator<Item = (String, String)>>(mut self, items: I) -> Self {
        self.pairs.extend(items);
        self
    }

    /// Session families the event names (sign-out and revocations).
    pub fn token_families<I: IntoIterator<Item = S>, S: Into<String>>(mut self, items: I) -> Self {
        self.token_families
            .extend(items.into_iter().map(Into::into));
        self
    }

    /// The revision the event carries, when not the unit's last bump.
    pub fn revision(mut self, token: impl Into<String>) -> Self {
        self.revision = Some(token.into());
        self
    }

    /// The event's subject, when not the audit target.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Event details, as JSON.
    pub fn details(mut self, json: impl ToJson) -> Self {
        self.details_json = json.to_json();
        self
    }
}

/// A value an audit record or event stores as JSON text; `null` and empty
/// text store nothing.
pub trait ToJson {
    /// Returns the JSON text, empty for nothing.
    fn to_json(&self) -> String;
}

impl ToJson for serde_json::Value {
    fn to_json(&self) -> String {
        if self.is_null() {
            String::new()
        } else {
            self.to_string()
        }
    }
}

impl ToJson for String {
    fn to_json(&self) -> String {
        self.clone()
    }
}

impl ToJson for &str {
    fn to_json(&self) -> String {
        (*self).to_owned()
    }
}
