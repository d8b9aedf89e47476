//! The in-process cache used by the embedded mode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::Expiry;

use super::{Cache, CacheError};

/// A stored value and the absolute instant it stops being valid.
#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    expires_at: DateTime<Utc>,
}

impl Entry {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }

    /// Returns the time left until the absolute expiry, measured now.
    fn remaining(&self) -> Duration {
        (self.expires_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    }
}

/// Expires each entry at its own absolute instant; reads leave the deadline alone and a
/// rewrite takes the new entry's instant.
struct AbsoluteExpiry;

impl Expiry<String, Entry> for AbsoluteExpiry {
    fn expire_after_create(&self, _key: &String, value: &Entry, _at: Instant) -> Option<Duration> {
        Some(value.remaining())
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        // moka's default keeps the old deadline; a rewritten fact must carry its own.
        Some(value.remaining())
    }
}

/// An in-memory [`Cache`] bounded by entry count, for one process (the embedded mode and tests).
#[derive(Clone)]
pub struct MemoryCache {
    entries: moka::sync::Cache<String, Entry>,
    shared: bool,
}

impl MemoryCache {
    /// Returns an empty cache holding at most `max_entries` entries (least recently used go
    /// first), shared by whoever holds a clone of it (the replicas of a test).
    pub fn new(max_entries: u64) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_entries)
            .expire_after(AbsoluteExpiry)
            .build();
        Self {
            entries,
            shared: true,
        }
    }

    /// Returns an empty cache like [`MemoryCache::new`] that says it is not shared
    /// ([`Cache::is_shared`]): the process's only cache when no Redis is configured.
    pub fn process_local(max_entries: u64) -> Self {
        Self {
            shared: false,
            ..Self::new(max_entries)
        }
    }

    /// Returns how many entries it holds (pending evictions run first).
    pub fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    fn lookup(&self, key: &str, now: DateTime<Utc>) -> Option<Vec<u8>> {
        // moka's timer has coarse granularity; the stored instant is the authority.
        self.entries
            .get(key)
            .filter(|entry| entry.is_live(now))
            .map(|entry| entry.value.to_vec())
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    fn is_shared(&self) -> bool {
        self.shared
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.lookup(key, Utc::now()))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let now = Utc::now();
        Ok(keys.iter().map(|key| self.lookup(key, now)).collect())
    }

    async fn set(
        &self,
        key: &str,
        value: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), CacheError> {
        if expires_at <= Utc::now() {
            self.entries.invalidate(key);
            return Ok(());
        }
        let entry = Entry {
            value: Arc::from(value),
            expires_at,
        };
        self.entries.insert(key.to_owned(), entry);
        Ok(())
    }

    async fn get_or_set(
        &self,
        key: &str,
        value: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, CacheError> {
        let now = Utc::now();
        if expires_at <= now {
            return Ok(self.lookup(key, now));
        }
        let entry = self
            .entries
            .entry(key.to_owned())
            .or_insert_with_if(
                || Entry {
                    value: Arc::from(value),
                    expires_at,
                },
                |old| !old.is_live(now),
            )
            .into_value();
        Ok(Some(entry.value.to_vec()))
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        for key in keys {
            self.entries.invalidate(key);
        }
        Ok(())
    }
}
