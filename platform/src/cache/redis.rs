//! The Redis cache shared by every gateway replica in the distributed mode.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Cache, CacheError, Gcra, Throttle};
use crate::redis_link::{RedisLink, RedisTarget, is_unavailable, query_retrying};

/// A [`Cache`] in Redis (one server or a Redis Cluster): `SET … PXAT` (absolute expiry), `MGET`,
/// `DEL`, and rate limits kept by a GCRA script; every key prefixed.
#[derive(Clone)]
pub struct RedisCache {
    conn: RedisLink,
    key_prefix: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects to the Redis at `target` (a `redis://` URL, or a [`RedisTarget`]) and returns a
    /// cache prefixing every key with `key_prefix`. Fails with [`CacheError::Unavailable`] when
    /// the server (every seed node of a cluster) cannot be reached.
    pub async fn connect(
        target: impl Into<RedisTarget>,
        key_prefix: impl Into<String>,
    ) -> Result<Self, CacheError> {
        let conn = target.into().connect().await.map_err(cache_error)?;
        Ok(Self {
            conn,
            key_prefix: key_prefix.into(),
        })
    }

    /// Returns a cache on the Redis at `target` that connects on first
    /// use, so a process can start while Redis is down (each command then
    /// fails until it is back). Fails only on a malformed URL.
    pub fn connect_lazy(
        target: impl Into<RedisTarget>,
        key_prefix: impl Into<String>,
    ) -> Result<Self, CacheError> {
        let conn = target.into().connect_lazy().map_err(cache_error)?;
        Ok(Self {
            conn,
            key_prefix: key_prefix.into(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.key_prefix, key)
    }
}

/// Returns the last whole millisecond at which a value expiring at `expires_at` may still be read.
///
/// Redis keeps a key while its clock is at or before the `PXAT` millisecond, so passing the
/// expiry instant itself would let a read at exactly that instant succeed; one millisecond less
/// makes the key vanish at (or up to a millisecond before) the instant, never after it.
fn last_visible_millisecond(expires_at: DateTime<Utc>) -> i64 {
    expires_at.timestamp_millis() - 1
}

fn cache_error(e: redis::RedisError) -> CacheError {
    if is_unavailable(&e) {
        CacheError::Unavailable(e.to_string())
    } else {
        CacheError::Other(e.to_string())
    }
}

/// The GCRA script: the well-known algorithm the gateway's local limiter runs too, as a script
/// because plain Redis has no rate-limit command (redis-cell is a module a managed Redis may not
/// load). Sent with EVALSHA; the client loads it on NOSCRIPT.
static GCRA: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("gcra.lua")));

/// Returns a duration in whole microseconds, at least one.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl RedisCache {
    /// Runs an idempotent cache command, retried once when the server seemed unreachable.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, CacheError> {
        query_retrying(&self.conn, cmd, is_unavailable)
            .await
            .map_err(cache_error)
    }
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.run(redis::cmd("GET").arg(self.key(key))).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        let values: Vec<Option<Vec<u8>>> = self.run(&cmd).await?;
        if values.len() != keys.len() {
            return Err(CacheError::Other(format!(
                "MGET returned {} values for {} keys",
                values.len(),
                keys.len()
            )));
        }
        Ok(values)
    }

    async fn set(
        &self,
        key: &str,
        value: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), CacheError> {
        if expires_at <= Utc::now() {
            // PXAT in the past races the clock; an expired fact is simply absent.
            return self.run(redis::cmd("DEL").arg(self.key(key))).await;
        }
        self.run(
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("PXAT")
                .arg(last_visible_millisecond(expires_at)),
        )
        .await
    }

    async fn get_or_set(
        &self,
        key: &str,
        value: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, CacheError> {
        if expires_at <= Utc::now() {
            return self.get(key).await;
        }
        // SET … NX GET (Redis 7.0): the value found, or nil when ours was stored. A retry
        // after a lost reply finds ours, which is the same answer.
        let found: Option<Vec<u8>> = self
            .run(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("NX")
                    .arg("PXAT")
                    .arg(last_visible_millisecond(expires_at))
                    .arg("GET"),
            )
            .await?;
        Ok(Some(found.unwrap_or_else(|| value.to_vec())))
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("DEL");
        for key in keys {
            cmd.arg(self.key(key));
        }
        self.run(&cmd).await
    }

    async fn throttle(&self, key: &str, limit: Gcra) -> Result<Throttle, CacheError> {
        let interval = micros(limit.interval);
        let tolerance = micros(limit.tolerance()).max(interval);
        // Not retried: a first attempt that did run would count the call twice.
        let wait: i64 = GCRA
            .key(self.key(key))
            .arg(interval)
            .arg(tolerance)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(cache_error)?;
        Ok(match u64::try_from(wait) {
            Ok(wait) if wait > 0 => Throttle::Refused(Duration::from_micros(wait)),
            _ => Throttle::Allowed,
        })
    }
}
