//! The fact cache: bytes under string keys until an absolute instant.
//!
//! The gateway keeps authorization *facts* here (R-GW-2). Expiry is always absolute: a read never
//! extends an entry's life, because a sliding TTL would keep a revoked fact alive for as long as
//! it keeps being asked for.

mod memory;
pub(crate) mod redis;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;

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

    /// Removes the keys; a later get sees nothing.
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError>;
}
