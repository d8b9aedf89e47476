//! The fact cache: bytes under string keys until an absolute instant.
//!
//! The gateway keeps authorization *facts* here (R-GW-2). Expiry is always absolute: a read never
//! extends an entry's life, because a sliding TTL would keep a revoked fact alive for as long as
//! it keeps being asked for.
//!
//! A shared cache (Redis) also keeps rate limits every replica counts against ([`Cache::throttle`]).

mod memory;
pub(crate) mod redis;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend cannot be reached (connection refused, dropped or timed out).
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error or with something that could not be understood.
    #[error("cache error: {0}")]
    Other(String),
}

/// A GCRA rate limit (the generic cell rate algorithm): one call per `interval` sustained, and up
/// to `burst` calls at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// The time one call costs at the sustained rate (1 s / calls per second).
    pub interval: Duration,
    /// How many calls may be made at once above the sustained rate (at least 1).
    pub burst: u32,
}

impl Gcra {
    /// Returns the limit of `per_second` calls sustained and `burst` at once, or None for 0 (no limit).
    pub fn per_second(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0).then(|| Self {
            interval: Duration::from_secs(1) / per_second,
            burst: burst.max(1),
        })
    }

    /// Returns how far ahead of now the theoretical arrival time may run (`interval × burst`).
    pub fn tolerance(&self) -> Duration {
        self.interval.saturating_mul(self.burst)
    }
}

/// What a shared rate limit answered for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// The call is counted and may go ahead.
    Allowed,
    /// The call is refused; the next one would be allowed after this long.
    Refused(Duration),
    /// This cache is not shared between processes (in memory): the caller limits locally.
    NotShared,
}

/// A store of byte values with absolute expiry, shared by every replica that uses the same backend.
#[async_trait::async_trait]
pub trait Cache: Send + Sync + 'static {
    /// Returns the value stored under `key`, or None when absent or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Returns the values of several keys in one round trip, in the order given.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError>;

    /// Stores `value` until the absolute instant `expires_at` (never extended by reads).
    /// An instant already past stores nothing (and removes any earlier value under `key`).
    async fn set(
        &self,
        key: &str,
        value: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), CacheError>;

    /// Stores `value` until `expires_at` unless `key` holds a live value already, in one
    /// atomic step for every process sharing this cache; returns what `key` holds afterwards
    /// (the value found, else `value`). With an instant already past it stores nothing and
    /// returns what is there.
    async fn get_or_set(
        &self,
        key: &str,
        value: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, CacheError>;

    /// Removes the keys; a later get sees nothing.
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError>;

    /// Returns false when no other process reads this cache (the embedded mode's in-memory
    /// cache): a caller with a cache of its own in front of it gains nothing by writing here.
    fn is_shared(&self) -> bool {
        true
    }

    /// Counts one call against the rate limit `limit` kept under `key`, atomically for every
    /// process sharing this cache. `key` should carry a Redis Cluster hash tag (`rate:{…}`).
    /// A cache that is not shared answers [`Throttle::NotShared`].
    async fn throttle(&self, key: &str, limit: Gcra) -> Result<Throttle, CacheError> {
        let _ = (key, limit);
        Ok(Throttle::NotShared)
    }
}
