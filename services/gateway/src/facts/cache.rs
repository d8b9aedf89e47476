//! The two-level cache itself: in-process entries with absolute expiry,
//! single-flight loads, eviction epochs and floors, and the trust switch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ccp_platform::auth::Principal;
use ccp_platform::cache::Cache;
use ccp_platform::clock::Clock;
use ccp_platform::revision::Revision;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::delegation::v1::relationship_facts_client::RelationshipFactsClient;
use ccp_types::Bn9;
use chrono::{DateTime, Utc};
use prost::Message as _;

use super::convert::{assignment_facts_from_proto, pair_facts_from_proto, role_facts_from_proto};
use super::keys::{ProgramAccounts, clamp_expiry, decode, encode, fresh_enough};
use super::{FactsChannel, FactsError, FactsKey, FactsValue};
use crate::decide::{AssignmentFacts, PairFacts, RoleFacts};
use crate::metrics::LoadSource;

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
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) accounts: AccountFactsClient<FactsChannel>,
    pub(super) delegation: RelationshipFactsClient<FactsChannel>,
    /// The level shared by the replicas; None when the process's cache is not shared.
    shared: Option<Arc<dyn Cache>>,
    /// Keyed by the key itself, so a hit builds no text (the shared level's key).
    local: moka::future::Cache<FactsKey, Arc<Entry>>,
    clock: Clock,
    trust: Arc<Trust>,
    /// Grows with every eviction; a fetch that saw it move is not kept.
    epoch: AtomicU64,
    /// Per evicted key, the instant before which a shared-level value may
    /// predate the change (another replica may still write one it fetched
    /// before the change, until its own consumer sees the event).
    floors: moka::sync::Cache<String, DateTime<Utc>>,
    /// Per principal whose assignments were evicted, the epoch of that
    /// eviction: an in-process assignment entry of the principal whose load
    /// started at or before it is not served. Kept longer than any entry lives.
    principal_floors: moka::sync::Cache<Principal, u64>,
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

impl moka::Expiry<FactsKey, Arc<Entry>> for AbsoluteExpiry {
    fn expire_after_create(
        &self,
        _key: &FactsKey,
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
        // A cache no other replica reads would only hold a second copy of every entry.
        let shared = shared.is_shared().then_some(shared);
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
                // Bounded by time only: a floor dropped for room would let an
                // entry loaded before its eviction be served again. One small
                // entry per principal an event named in the last TTL.
                principal_floors: moka::sync::Cache::builder()
                    .time_to_live(settings.ttl + Duration::from_secs(10))
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

    /// Returns a principal's assignment facts for one client.
    pub async fn assignment_facts(
        &self,
        principal: &Principal,
        client: &Bn9,
        revision: Option<&Revision>,
    ) -> Result<Arc<AssignmentFacts>, FactsError> {
        match self
            .get(FactsKey::Assignment(*principal, client.clone()), revision)
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

    /// Returns a business's program accounts (accounts' business facts).
    pub async fn program_accounts(
        &self,
        business: &Bn9,
        revision: Option<&Revision>,
    ) -> Result<Arc<ProgramAccounts>, FactsError> {
        match self
            .get(FactsKey::Programs(business.clone()), revision)
            .await?
        {
            FactsValue::Programs(v) => Ok(v),
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
        crate::metrics::get().evicted(keys.len());
        let evicted_at = inner.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let texts: Vec<String> = keys.iter().map(FactsKey::text).collect();
        let floor = inner.clock.now() + CLOCK_SKEW_MARGIN;
        for (key, text) in keys.iter().zip(&texts) {
            inner.floors.insert(text.clone(), floor);
            if let FactsKey::Assignments(p) = key {
                // Its per-client entries: checked on each hit (one lookup), not enumerated.
                inner.principal_floors.insert(*p, evicted_at);
            }
            inner.local.invalidate(key).await;
        }
        let deleted = match &inner.shared {
            Some(shared) => shared.delete(&texts).await,
            None => Ok(()),
        };
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
        crate::metrics::get().evicted(1);
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
            crate::metrics::get().cache_miss();
            // Read through: nothing cached is trusted, and nothing read now is kept.
            let started = std::time::Instant::now();
            let value = self.fetch(&key).await?.0;
            crate::metrics::get().loaded(LoadSource::Service, started.elapsed());
            return Ok(value);
        }
        let now = inner.clock.now();
        if let Some(entry) = inner.local.get(&key).await {
            if entry.usable(now)
                && self.not_evicted(&key, &entry)
                && fresh_enough(&entry.value, revision)
            {
                inner.hits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::get().cache_hit();
                return Ok(entry.value.clone());
            }
            inner.local.invalidate(&key).await;
        }
        inner.misses.fetch_add(1, Ordering::Relaxed);
        crate::metrics::get().cache_miss();
        let entry = if revision.is_some() {
            // A revision the cached entry does not prove: read it again (shared
            // level if it proves it, else the facts service), outside single-flight.
            let entry = self.load(&key, revision).await?;
            inner.local.insert(key.clone(), entry.clone()).await;
            entry
        } else {
            let this = self.clone();
            let loader_key = key.clone();
            inner
                .local
                .try_get_with(
                    key.clone(),
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
            inner.local.invalidate(&key).await;
        }
        Ok(entry.value.clone())
    }

    /// Returns false for an assignment entry loaded before an eviction of
    /// its principal's assignments (which did not enumerate it).
    fn not_evicted(&self, key: &FactsKey, entry: &Entry) -> bool {
        match key {
            FactsKey::Assignment(p, _) => self
                .inner
                .principal_floors
                .get(p)
                .is_none_or(|evicted_at| entry.started_epoch > evicted_at),
            _ => true,
        }
    }

    /// Returns the text of `key` in the shared level: for an assignment, under
    /// its principal's generation, read (or made, when there is none) in one
    /// round trip. None when the generation cannot be had: the shared level
    /// is then neither read nor written for this load.
    async fn shared_text(&self, shared: &dyn Cache, key: &FactsKey) -> Option<String> {
        let FactsKey::Assignment(p, _) = key else {
            return Some(key.text());
        };
        let generation_key = FactsKey::Assignments(*p).text();
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        // Outliving its entries is harmless; expiring first only orphans them.
        let until = Utc::now() + self.inner.ttl * 2;
        match shared
            .get_or_set(&generation_key, fresh.as_bytes(), until)
            .await
        {
            Ok(Some(generation)) => Some(key.shared_text(&String::from_utf8_lossy(&generation))),
            Ok(None) => None,
            Err(err) => {
                tracing::debug!(error = %err, "shared facts cache generation read failed");
                None
            }
        }
    }

    /// Loads one entry on a miss: the shared level, then the facts service.
    async fn load(
        &self,
        key: &FactsKey,
        revision: Option<&Revision>,
    ) -> Result<Arc<Entry>, FactsError> {
        let inner = &self.inner;
        let epoch = inner.epoch.load(Ordering::Acquire);
        let started = std::time::Instant::now();
        // Read before the facts service is asked: a value written under it was
        // fetched after it was read, so an eviction that removes it orphans them.
        let shared_text = match &inner.shared {
            Some(shared) => self.shared_text(shared.as_ref(), key).await,
            None => None,
        };
        if let (Some(shared), Some(text)) = (&inner.shared, &shared_text) {
            match shared.get(text).await {
                Ok(Some(bytes)) => {
                    let floor = inner.floors.get(&key.floor_text());
                    if let Some((value, expires_at, fetched_at)) = decode(key, &bytes)
                        && inner.clock.now() < expires_at
                        && floor.is_none_or(|floor| fetched_at > floor)
                        && fresh_enough(&value, revision)
                    {
                        crate::metrics::get().loaded(LoadSource::Shared, started.elapsed());
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
        }
        let fetched_at = inner.clock.now();
        let (value, bytes) = self.fetch(key).await?;
        crate::metrics::get().loaded(LoadSource::Service, started.elapsed());
        Ok(self
            .fetched(shared_text, value, || bytes, epoch, fetched_at)
            .await)
    }

    /// Makes the entry of a value fetched from its service (the fetch started
    /// at `fetched_at`, in eviction epoch `epoch`) and writes it to the shared
    /// level under `shared_text` (None: not written) unless an eviction
    /// happened meanwhile.
    async fn fetched(
        &self,
        shared_text: Option<String>,
        value: FactsValue,
        bytes: impl FnOnce() -> Vec<u8>,
        epoch: u64,
        fetched_at: DateTime<Utc>,
    ) -> Arc<Entry> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let expires_at = clamp_expiry(&value, now, now + inner.ttl);
        let evicted_meanwhile = inner.epoch.load(Ordering::Acquire) != epoch;
        if let (Some(shared), Some(text)) = (&inner.shared, shared_text)
            && !evicted_meanwhile
            && expires_at > now
        {
            let wall = Utc::now() + (expires_at - now);
            let stored = encode(expires_at, fetched_at, &bytes());
            if let Err(err) = shared.set(&text, &stored, wall).await {
                tracing::debug!(error = %err, "shared facts cache write failed");
            } else if inner.epoch.load(Ordering::Acquire) != epoch {
                // An eviction raced the write: undo it.
                let _ = shared.delete(&[text]).await;
            }
        }
        Arc::new(Entry {
            value,
            expires_at,
            started_epoch: epoch,
            discarded: AtomicBool::new(evicted_meanwhile || expires_at <= now),
        })
    }

    /// Returns the program accounts of several businesses, in the order asked:
    /// those cached in process, the others read from accounts in ONE call
    /// (`BatchGetBusinessFacts`) and cached in both levels. ListAccessible
    /// reads a page of clients with it (R-GW-3: a page costs O(page)).
    pub async fn program_accounts_many(
        &self,
        businesses: &[Bn9],
    ) -> Result<Vec<Arc<ProgramAccounts>>, FactsError> {
        let inner = &self.inner;
        let trusted = inner.trust.is_trusted();
        let now = inner.clock.now();
        let mut found: Vec<Option<Arc<ProgramAccounts>>> = vec![None; businesses.len()];
        let mut missing: Vec<usize> = Vec::new();
        for (i, business) in businesses.iter().enumerate() {
            let cached = if trusted {
                inner
                    .local
                    .get(&FactsKey::Programs(business.clone()))
                    .await
                    .filter(|entry| entry.usable(now))
            } else {
                None
            };
            match cached.map(|entry| entry.value.clone()) {
                Some(FactsValue::Programs(v)) => {
                    inner.hits.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::get().cache_hit();
                    found[i] = Some(v);
                }
                _ => {
                    inner.misses.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::get().cache_miss();
                    missing.push(i);
                }
            }
        }
        if !missing.is_empty() {
            let epoch = inner.epoch.load(Ordering::Acquire);
            let fetched_at = inner.clock.now();
            let asked: Vec<Bn9> = missing.iter().map(|&i| businesses[i].clone()).collect();
            let started = std::time::Instant::now();
            let answers = self.batch_business_facts(&asked).await?;
            crate::metrics::get().loaded(LoadSource::Service, started.elapsed());
            if answers.len() != missing.len() {
                return Err(FactsError::Unavailable(
                    "accounts: BatchGetBusinessFacts answered a different count".into(),
                ));
            }
            for (&i, proto) in missing.iter().zip(answers) {
                let listed = Arc::new(ProgramAccounts::from_proto(&proto));
                found[i] = Some(listed.clone());
                if !trusted {
                    // Read through: nothing read while untrusted is kept.
                    continue;
                }
                let key = FactsKey::Programs(businesses[i].clone());
                let value = FactsValue::Programs(listed);
                let entry = self
                    .fetched(
                        Some(key.text()),
                        value,
                        || proto.encode_to_vec(),
                        epoch,
                        fetched_at,
                    )
                    .await;
                if !entry.discarded.load(Ordering::Acquire) {
                    inner.local.insert(key, entry).await;
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
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
            FactsKey::Assignment(p, client) => {
                let proto = self.fetch_assignment_facts(p, client).await?;
                let bytes = proto.encode_to_vec();
                Ok((
                    FactsValue::Assignments(Arc::new(assignment_facts_from_proto(&proto))),
                    bytes,
                ))
            }
            FactsKey::Assignments(_) => Err(FactsError::Unavailable(
                "a principal's assignments are read one client at a time".into(),
            )),
            FactsKey::Pair(provider, client) => {
                let proto = self.fetch_pair_facts(provider, client).await?;
                let bytes = proto.encode_to_vec();
                Ok((
                    FactsValue::Pair(Arc::new(pair_facts_from_proto(&proto))),
                    bytes,
                ))
            }
            FactsKey::Programs(business) => {
                let proto = self.business_facts(business).await?;
                let bytes = proto.encode_to_vec();
                Ok((
                    FactsValue::Programs(Arc::new(ProgramAccounts::from_proto(&proto))),
                    bytes,
                ))
            }
        }
    }
}
