//! The facts cache (R-GW-2): role facts per principal, assignment facts per
//! principal and pair facts per (provider, client) — facts, never decisions —
//! in two levels: in-process (moka) and the shared [`Cache`] (Redis in the
//! distributed mode, memory in the embedded one).
//!
//! - Keys hold every input (`role:<principal>`, `asg:<principal>`,
//!   `pair:<provider>:<client>`, under a format version).
//! - Expiry is absolute: an entry lives until `read time + ttl`, clamped to
//!   the earliest end of a relationship it holds, measured by the configured
//!   clock and checked on every hit (reads never extend it).
//! - Concurrent misses of one key make one lookup (moka's `try_get_with`).
//! - The event consumer ([`crate::events`]) evicts exactly the named entries
//!   in both levels. A fetch that overlaps an eviction is answered but not
//!   kept, so an eviction can never be undone by a slow fetch; and a shared
//!   value fetched (by any replica) before an eviction seen here is refused,
//!   so a slower replica cannot bring an old fact back through Redis.
//! - While the event subscription is broken or behind, nothing cached is
//!   trusted: every read goes to the facts services (and is not kept).
//! - A request carrying a revision token (R-GW-4) uses a cached entry only
//!   when the entry provably reflects that revision; otherwise it refetches.
//! - Facts that cannot be had and are not cached fail closed: UNAVAILABLE (R-GW-5).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ccp_platform::auth::{InternalClientInterceptor, Principal};
use ccp_platform::cache::Cache;
use ccp_platform::clock::Clock;
use ccp_platform::revision::Revision;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::delegation::v1 as del;
use ccp_proto::delegation::v1::relationship_facts_client::RelationshipFactsClient;
use chrono::{DateTime, Utc};
use prost::Message as _;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use ccp_types::{Bn9, Bn15};

use crate::decide::{
    AssignmentFacts, ClientAssignment, Membership, PairFacts, Relationship, Role, RoleFacts, Scope,
    VisibilityRules,
};

/// A facts client: a channel with the gateway's internal token and trace context.
pub type FactsChannel = InterceptedService<Channel, InternalClientInterceptor>;

/// Why facts could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FactsError {
    /// The facts service could not be reached or failed, and nothing trusted is cached.
    #[error("facts unavailable: {0}")]
    Unavailable(String),
}

impl From<FactsError> for tonic::Status {
    fn from(err: FactsError) -> Self {
        tracing::warn!(error = %err, "failing closed");
        tonic::Status::unavailable("authorization facts are unavailable; try again")
    }
}

/// The version of the encoding of cached values; part of every key.
const KEY_VERSION: &str = "gw:f1:";

/// A cache key: which facts of whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FactsKey {
    /// A principal's role facts (accounts).
    Role(Principal),
    /// A principal's assignment facts (delegation).
    Assignments(Principal),
    /// A (provider, client) pair's facts (delegation).
    Pair(Bn9, Bn9),
}

impl FactsKey {
    /// Returns the key's text, the same in both levels.
    pub fn text(&self) -> String {
        match self {
            Self::Role(p) => format!("{KEY_VERSION}role:{p}"),
            Self::Assignments(p) => format!("{KEY_VERSION}asg:{p}"),
            Self::Pair(provider, client) => format!("{KEY_VERSION}pair:{provider}:{client}"),
        }
    }
}

/// Facts as cached: the domain value, the proto it came from, and until when it may be used.
#[derive(Debug, Clone)]
pub enum FactsValue {
    /// Role facts.
    Role(Arc<RoleFacts>),
    /// Assignment facts.
    Assignments(Arc<AssignmentFacts>),
    /// Pair facts.
    Pair(Arc<PairFacts>),
}

#[derive(Debug)]
struct Entry {
    value: FactsValue,
    /// Absolute expiry by the configured clock.
    expires_at: DateTime<Utc>,
    /// The eviction epoch when its load started.
    started_epoch: u64,
    /// Set when an eviction happened between the start of its load and its
    /// insertion: the callers waiting for it are answered, then it is never
    /// served again (the eviction may concern it).
    discarded: AtomicBool,
}

impl Entry {
    fn usable(&self, now: DateTime<Utc>) -> bool {
        !self.discarded.load(Ordering::Acquire) && now < self.expires_at
    }
}

/// Settings of the facts cache.
#[derive(Debug, Clone)]
pub struct FactsCacheSettings {
    /// Longest life of a cached fact (events evict sooner).
    pub ttl: Duration,
    /// Most entries kept in process.
    pub local_entries: u64,
}

/// Whether cached facts may be trusted: true only while every event stream
/// the consumer reads is caught up.
#[derive(Debug, Default)]
pub struct Trust {
    trusted: AtomicBool,
}

impl Trust {
    /// Returns true when cached facts may be used.
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Sets the trust state (the event consumer calls it).
    pub fn set(&self, trusted: bool) {
        self.trusted.store(trusted, Ordering::Release);
    }
}

/// The two-level facts cache in front of accounts' and delegation's facts RPCs.
#[derive(Clone)]
pub struct FactsCache {
    inner: Arc<Inner>,
}

struct Inner {
    accounts: AccountFactsClient<FactsChannel>,
    delegation: RelationshipFactsClient<FactsChannel>,
    shared: Arc<dyn Cache>,
    local: moka::future::Cache<String, Arc<Entry>>,
    clock: Clock,
    trust: Arc<Trust>,
    /// Grows with every eviction; a fetch that saw it move is not kept.
    epoch: AtomicU64,
    /// Per evicted key, the instant before which a shared-level value may
    /// predate the change (another replica may still write one it fetched
    /// before the change, until its own consumer sees the event).
    floors: moka::sync::Cache<String, DateTime<Utc>>,
    ttl: chrono::Duration,
    /// Reads answered from the in-process level (counted for benchmarks).
    hits: AtomicU64,
    /// Reads that had to load (shared level or facts service), trusted or not.
    misses: AtomicU64,
}

/// Counters of the facts cache since it started (cheap relaxed atomics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactsStats {
    /// Reads answered from the in-process level.
    pub hits: u64,
    /// Reads that went to the shared level or the facts services.
    pub misses: u64,
}

/// How much the clocks of two gateway replicas may disagree: a shared-level
/// value fetched less than this after an eviction is not trusted.
pub const CLOCK_SKEW_MARGIN: chrono::Duration = chrono::Duration::seconds(2);

impl std::fmt::Debug for FactsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactsCache")
            .field("trusted", &self.inner.trust.is_trusted())
            .field("local_entries", &self.inner.local.entry_count())
            .finish_non_exhaustive()
    }
}

/// Expires each in-process entry at its own absolute instant (the value's
/// clock instant is re-checked on every hit; this only frees memory).
struct AbsoluteExpiry {
    clock: Clock,
}

impl moka::Expiry<String, Arc<Entry>> for AbsoluteExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _at: std::time::Instant,
    ) -> Option<Duration> {
        Some(
            (value.expires_at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO),
        )
    }
}

impl FactsCache {
    /// Returns a cache over the facts services behind `accounts` and `delegation`.
    pub fn new(
        accounts: AccountFactsClient<FactsChannel>,
        delegation: RelationshipFactsClient<FactsChannel>,
        shared: Arc<dyn Cache>,
        clock: Clock,
        trust: Arc<Trust>,
        settings: &FactsCacheSettings,
    ) -> Self {
        let local = moka::future::Cache::builder()
            .max_capacity(settings.local_entries)
            .expire_after(AbsoluteExpiry {
                clock: clock.clone(),
            })
            .build();
        Self {
            inner: Arc::new(Inner {
                accounts,
                delegation,
                shared,
                local,
                clock,
                trust,
                epoch: AtomicU64::new(0),
                floors: moka::sync::Cache::builder()
                    .max_capacity(settings.local_entries)
                    // A stale shared value lives at most one TTL after the last
                    // slow fetch that could write it.
                    .time_to_live(settings.ttl * 2 + Duration::from_secs(10))
                    .build(),
                ttl: chrono::Duration::from_std(settings.ttl)
                    .unwrap_or_else(|_| chrono::Duration::seconds(60)),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// Returns the trust state shared with the event consumer.
    pub fn trust(&self) -> &Arc<Trust> {
        &self.inner.trust
    }

    /// Returns the hit and miss counters since the cache was made.
    pub fn stats(&self) -> FactsStats {
        FactsStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
        }
    }

    /// Returns a principal's role facts.
    pub async fn role_facts(
        &self,
        principal: &Principal,
        revision: Option<&Revision>,
    ) -> Result<Arc<RoleFacts>, FactsError> {
        match self.get(FactsKey::Role(*principal), revision).await? {
            FactsValue::Role(v) => Ok(v),
            _ => Err(FactsError::Unavailable("unexpected cached value".into())),
        }
    }

    /// Returns a principal's assignment facts.
    pub async fn assignment_facts(
        &self,
        principal: &Principal,
        revision: Option<&Revision>,
    ) -> Result<Arc<AssignmentFacts>, FactsError> {
        match self
            .get(FactsKey::Assignments(*principal), revision)
            .await?
        {
            FactsValue::Assignments(v) => Ok(v),
            _ => Err(FactsError::Unavailable("unexpected cached value".into())),
        }
    }

    /// Returns a pair's facts.
    pub async fn pair_facts(
        &self,
        provider: &Bn9,
        client: &Bn9,
        revision: Option<&Revision>,
    ) -> Result<Arc<PairFacts>, FactsError> {
        match self
            .get(FactsKey::Pair(provider.clone(), client.clone()), revision)
            .await?
        {
            FactsValue::Pair(v) => Ok(v),
            _ => Err(FactsError::Unavailable("unexpected cached value".into())),
        }
    }

    /// Evicts the entries in both levels. The in-process level first, so this
    /// replica never serves the old value once the event was seen.
    pub async fn evict(&self, keys: &[FactsKey]) {
        if keys.is_empty() {
            return;
        }
        let inner = &self.inner;
        inner.epoch.fetch_add(1, Ordering::AcqRel);
        let texts: Vec<String> = keys.iter().map(FactsKey::text).collect();
        let floor = inner.clock.now() + CLOCK_SKEW_MARGIN;
        for key in &texts {
            inner.floors.insert(key.clone(), floor);
            inner.local.invalidate(key).await;
        }
        let deleted = inner.shared.delete(&texts).await;
        // Again after the shared delete: a load that read the shared level in
        // between is not kept.
        inner.epoch.fetch_add(1, Ordering::AcqRel);
        if let Err(err) = deleted {
            // Others replicas evict too; and an unreachable shared level is not read
            // (its reads fail), so a missed delete can only leave an entry that
            // expires by its absolute TTL. Distrust it all the same.
            tracing::warn!(error = %err, "shared facts cache eviction failed");
        }
    }

    /// Forgets every in-process entry (after the event stream was broken).
    pub fn evict_all_local(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.local.invalidate_all();
    }

    async fn get(
        &self,
        key: FactsKey,
        revision: Option<&Revision>,
    ) -> Result<FactsValue, FactsError> {
        let inner = &self.inner;
        if !inner.trust.is_trusted() {
            inner.misses.fetch_add(1, Ordering::Relaxed);
            // Read through: nothing cached is trusted, and nothing read now is kept.
            return Ok(self.fetch(&key).await?.0);
        }
        let text = key.text();
        let now = inner.clock.now();
        if let Some(entry) = inner.local.get(&text).await {
            if entry.usable(now) && fresh_enough(&entry.value, revision) {
                inner.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(entry.value.clone());
            }
            inner.local.invalidate(&text).await;
        }
        inner.misses.fetch_add(1, Ordering::Relaxed);
        let entry = if revision.is_some() {
            // A revision the cached entry does not prove: read it again (shared
            // level if it proves it, else the facts service), outside single-flight.
            let entry = self.load(&key, revision).await?;
            inner.local.insert(text.clone(), entry.clone()).await;
            entry
        } else {
            let this = self.clone();
            let loader_key = key.clone();
            inner
                .local
                .try_get_with(
                    text.clone(),
                    async move { this.load(&loader_key, None).await },
                )
                .await
                .map_err(|e: Arc<FactsError>| (*e).clone())?
        };
        // An eviction since the load started may concern what was loaded: answer
        // with it (the question came before the eviction was seen), never keep it.
        if inner.epoch.load(Ordering::Acquire) != entry.started_epoch
            || entry.discarded.load(Ordering::Acquire)
        {
            entry.discarded.store(true, Ordering::Release);
            inner.local.invalidate(&text).await;
        }
        Ok(entry.value.clone())
    }

    /// Loads one entry on a miss: the shared level, then the facts service.
    async fn load(
        &self,
        key: &FactsKey,
        revision: Option<&Revision>,
    ) -> Result<Arc<Entry>, FactsError> {
        let inner = &self.inner;
        let epoch = inner.epoch.load(Ordering::Acquire);
        let text = key.text();
        match inner.shared.get(&text).await {
            Ok(Some(bytes)) => {
                let floor = inner.floors.get(&text);
                if let Some((value, expires_at, fetched_at)) = decode(key, &bytes)
                    && inner.clock.now() < expires_at
                    && floor.is_none_or(|floor| fetched_at > floor)
                    && fresh_enough(&value, revision)
                {
                    return Ok(Arc::new(Entry {
                        value,
                        expires_at,
                        started_epoch: epoch,
                        discarded: AtomicBool::new(false),
                    }));
                }
            }
            Ok(None) => {}
            Err(err) => tracing::debug!(error = %err, "shared facts cache read failed"),
        }
        let fetched_at = inner.clock.now();
        let (value, bytes) = self.fetch(key).await?;
        let now = inner.clock.now();
        let expires_at = clamp_expiry(&value, now, now + inner.ttl);
        let evicted_meanwhile = inner.epoch.load(Ordering::Acquire) != epoch;
        if !evicted_meanwhile && expires_at > now {
            let wall = Utc::now() + (expires_at - now);
            let stored = encode(expires_at, fetched_at, &bytes);
            if let Err(err) = inner.shared.set(&text, &stored, wall).await {
                tracing::debug!(error = %err, "shared facts cache write failed");
            } else if inner.epoch.load(Ordering::Acquire) != epoch {
                // An eviction raced the write: undo it.
                let _ = inner.shared.delete(std::slice::from_ref(&text)).await;
            }
        }
        Ok(Arc::new(Entry {
            value,
            expires_at,
            started_epoch: epoch,
            discarded: AtomicBool::new(evicted_meanwhile || expires_at <= now),
        }))
    }

    /// Fetches facts from the owning service (uncached); returns them with their proto bytes.
    async fn fetch(&self, key: &FactsKey) -> Result<(FactsValue, Vec<u8>), FactsError> {
        match key {
            FactsKey::Role(p) => {
                let proto = self.fetch_role_facts(p).await?;
                let bytes = proto.encode_to_vec();
                Ok((
                    FactsValue::Role(Arc::new(role_facts_from_proto(&proto))),
                    bytes,
                ))
            }
            FactsKey::Assignments(p) => {
                let proto = self.fetch_assignment_facts(p).await?;
                let bytes = proto.encode_to_vec();
                Ok((
                    FactsValue::Assignments(Arc::new(assignment_facts_from_proto(&proto))),
                    bytes,
                ))
            }
            FactsKey::Pair(provider, client) => {
                let proto = self.fetch_pair_facts(provider, client).await?;
                let bytes = proto.encode_to_vec();
                Ok((
                    FactsValue::Pair(Arc::new(pair_facts_from_proto(&proto))),
                    bytes,
                ))
            }
        }
    }

    /// Reads role facts from accounts, bypassing the caches (Explain uses it).
    pub async fn fetch_role_facts(&self, p: &Principal) -> Result<acc::RoleFacts, FactsError> {
        let mut client = self.inner.accounts.clone();
        client
            .get_role_facts(acc::GetRoleFactsRequest {
                principal: p.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(upstream("accounts"))
    }

    /// Reads assignment facts from delegation, bypassing the caches.
    pub async fn fetch_assignment_facts(
        &self,
        p: &Principal,
    ) -> Result<del::AssignmentFacts, FactsError> {
        let mut client = self.inner.delegation.clone();
        client
            .get_assignment_facts(del::GetAssignmentFactsRequest {
                principal: p.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(upstream("delegation"))
    }

    /// Reads pair facts from delegation, bypassing the caches.
    pub async fn fetch_pair_facts(
        &self,
        provider: &Bn9,
        client: &Bn9,
    ) -> Result<del::PairFacts, FactsError> {
        let mut c = self.inner.delegation.clone();
        c.get_pair_facts(del::GetPairFactsRequest {
            provider: provider.to_string(),
            client: client.to_string(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(upstream("delegation"))
    }

    /// Reads one page of a provider's clients from delegation (uncached).
    pub async fn list_clients(
        &self,
        provider: &Bn9,
        page_size: i32,
        page_token: String,
    ) -> Result<del::ListClientsResponse, FactsError> {
        let mut c = self.inner.delegation.clone();
        c.list_clients(del::ListClientsRequest {
            provider: provider.to_string(),
            page_size,
            page_token,
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(upstream("delegation"))
    }

    /// Reads one relationship request's facts from delegation (uncached; a
    /// rare write needs them). None when the request is unknown or its name
    /// malformed: a deny, not an outage.
    pub async fn request_facts(&self, name: &str) -> Result<Option<del::RequestFacts>, FactsError> {
        let mut c = self.inner.delegation.clone();
        let answer = c
            .get_request_facts(del::GetRequestFactsRequest {
                name: name.to_owned(),
            })
            .await;
        absent_as_none(answer, "delegation")
    }

    /// Reads one employee group's facts from accounts (uncached; a rare write
    /// needs them). None when the group is unknown or its name malformed.
    pub async fn employee_group_facts(
        &self,
        name: &str,
    ) -> Result<Option<acc::EmployeeGroupFacts>, FactsError> {
        let mut c = self.inner.accounts.clone();
        let answer = c
            .get_employee_group_facts(acc::GetEmployeeGroupFactsRequest {
                name: name.to_owned(),
            })
            .await;
        absent_as_none(answer, "accounts")
    }

    /// Reads a business's facts from accounts (uncached).
    pub async fn business_facts(&self, bn: &Bn9) -> Result<acc::BusinessFacts, FactsError> {
        let mut c = self.inner.accounts.clone();
        c.get_business_facts(acc::GetBusinessFactsRequest {
            business: bn.to_string(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(upstream("accounts"))
    }
}

/// Returns the facts of a named resource read uncached: None when the service
/// answers NOT_FOUND or INVALID_ARGUMENT (no such resource, or a name that
/// cannot be one — the caller denies), UNAVAILABLE for any other error.
fn absent_as_none<T>(
    answer: Result<tonic::Response<T>, tonic::Status>,
    service: &'static str,
) -> Result<Option<T>, FactsError> {
    match answer {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            Ok(None)
        }
        Err(status) => Err(upstream(service)(status)),
    }
}

fn upstream(service: &'static str) -> impl Fn(tonic::Status) -> FactsError {
    move |status| FactsError::Unavailable(format!("{service}: {}", status.message()))
}

/// Returns the absolute expiry of freshly read facts: `default`, clamped to the
/// earliest end of an active relationship inside.
fn clamp_expiry(value: &FactsValue, now: DateTime<Utc>, default: DateTime<Utc>) -> DateTime<Utc> {
    match value {
        FactsValue::Pair(pair) => crate::decide::earliest_expiry([pair.as_ref()], now)
            .map_or(default, |end| end.min(default)),
        _ => default,
    }
}

/// Returns true when cached facts provably reflect `revision` (R-GW-4).
/// A revision they cannot be compared with is not proof: the caller refetches.
fn fresh_enough(value: &FactsValue, revision: Option<&Revision>) -> bool {
    let Some(rev) = revision else {
        return true;
    };
    match (rev.service.as_str(), value) {
        ("accounts", FactsValue::Role(facts)) => Bn9::try_new(&rev.scope)
            .and_then(|bn| facts.memberships.get(&bn))
            .is_some_and(|m| m.revision >= rev.counter),
        ("delegation", FactsValue::Assignments(facts)) => Bn9::try_new(&rev.scope)
            .and_then(|bn| facts.revisions.get(&bn))
            .is_some_and(|r| *r >= rev.counter),
        ("delegation", FactsValue::Pair(pair)) => pair.revision >= rev.counter,
        // Identity's revisions concern sessions (the revocation set), not facts;
        // accounts' revisions say nothing of delegation's facts and back.
        _ => true,
    }
}

/// Encodes a shared-level value: expiry, when its fetch started, the proto.
fn encode(expires_at: DateTime<Utc>, fetched_at: DateTime<Utc>, proto: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + proto.len());
    out.extend_from_slice(&expires_at.timestamp_micros().to_be_bytes());
    out.extend_from_slice(&fetched_at.timestamp_micros().to_be_bytes());
    out.extend_from_slice(proto);
    out
}

fn decode(key: &FactsKey, bytes: &[u8]) -> Option<(FactsValue, DateTime<Utc>, DateTime<Utc>)> {
    let (head, rest) = bytes.split_at_checked(8)?;
    let (fetched, body) = rest.split_at_checked(8)?;
    let instant = |b: &[u8]| -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(i64::from_be_bytes(b.try_into().ok()?))
    };
    let expires_at = instant(head)?;
    let fetched_at = instant(fetched)?;
    let value = match key {
        FactsKey::Role(_) => FactsValue::Role(Arc::new(role_facts_from_proto(
            &acc::RoleFacts::decode(body).ok()?,
        ))),
        FactsKey::Assignments(_) => FactsValue::Assignments(Arc::new(assignment_facts_from_proto(
            &del::AssignmentFacts::decode(body).ok()?,
        ))),
        FactsKey::Pair(..) => FactsValue::Pair(Arc::new(pair_facts_from_proto(
            &del::PairFacts::decode(body).ok()?,
        ))),
    };
    Some((value, expires_at, fetched_at))
}

// ------------------------------------------------------------ edge conversion

/// Converts a proto role to a domain role (UNSPECIFIED and unknown values are no role).
pub fn role_from_proto(role: i32) -> Option<Role> {
    use ccp_proto::common::v1::Role as P;
    match P::try_from(role).ok()? {
        P::Reader => Some(Role::Reader),
        P::Editor => Some(Role::Editor),
        P::Pam => Some(Role::Pam),
        P::Bam => Some(Role::Bam),
        P::Unspecified => None,
    }
}

/// Converts accounts' role facts. Malformed entries are dropped: a fact that
/// cannot be read gives no access (removing facts never allows more).
pub fn role_facts_from_proto(proto: &acc::RoleFacts) -> RoleFacts {
    let mut memberships = BTreeMap::new();
    for m in &proto.memberships {
        let Some(bn) = Bn9::try_new(&m.business) else {
            continue;
        };
        let roles = m
            .roles
            .iter()
            .filter_map(|r| {
                let program = Bn15::try_new(&r.program_account)?;
                // A program role is on the business's own programs, and never BAM.
                let role = role_from_proto(r.role).filter(|role| *role != Role::Bam)?;
                (*program.bn9() == bn).then_some((program, role))
            })
            .fold(BTreeMap::new(), |mut acc: BTreeMap<Bn15, Role>, (p, r)| {
                let e = acc.entry(p).or_insert(r);
                *e = (*e).max(r);
                acc
            });
        memberships.insert(
            bn,
            Membership {
                business_manager: m.business_manager,
                roles,
                revision: m.revision,
            },
        );
    }
    RoleFacts { memberships }
}

/// Converts delegation's assignment facts.
pub fn assignment_facts_from_proto(proto: &del::AssignmentFacts) -> AssignmentFacts {
    let assignments = proto
        .assignments
        .iter()
        .filter_map(|a| {
            Some(ClientAssignment {
                provider: Bn9::try_new(&a.provider)?,
                client: Bn9::try_new(&a.client)?,
                // A provider's assignment is Editor or Reader at most.
                role: role_from_proto(a.role)?.min(Role::Editor),
            })
        })
        .collect();
    let revisions = proto
        .revisions
        .iter()
        .filter_map(|r| Some((Bn9::try_new(&r.provider)?, r.revision)))
        .collect();
    AssignmentFacts {
        assignments,
        revisions,
    }
}

/// Converts one relationship fact; None when it cannot be read (no expiry, bad level).
pub fn relationship_from_proto(r: &del::RelationshipFact) -> Option<Relationship> {
    let expire_time = ccp_platform::store::from_timestamp(r.expire_time.as_ref()?)?;
    let end_time = match &r.end_time {
        Some(ts) => Some(ccp_platform::store::from_timestamp(ts)?),
        None => None,
    };
    let scope = match del::RelationshipLevel::try_from(r.level).ok()? {
        del::RelationshipLevel::Business => Scope::Business,
        del::RelationshipLevel::Program => Scope::Programs(
            r.program_accounts
                .iter()
                .filter_map(|p| Bn15::try_new(p))
                .collect::<BTreeSet<_>>(),
        ),
        del::RelationshipLevel::Unspecified => return None,
    };
    let has = |v: del::Visibility| r.visibility.contains(&(v as i32));
    Some(Relationship {
        scope,
        visibility: VisibilityRules {
            client: has(del::Visibility::SubmittedByClient),
            other_businesses: has(del::Visibility::SubmittedByOtherBusinesses),
        },
        expire_time,
        end_time,
    })
}

/// Converts delegation's pair facts.
pub fn pair_facts_from_proto(proto: &del::PairFacts) -> PairFacts {
    PairFacts {
        relationships: proto
            .relationships
            .iter()
            .filter_map(relationship_from_proto)
            .collect(),
        revision: proto.revision,
    }
}
