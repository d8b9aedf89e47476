//! The Redis cache shared by every gateway replica in the distributed mode.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Cache, CacheError, Gcra, Throttle};

/// A [`Cache`] in Redis: `SET … PXAT` (absolute expiry), `MGET`, `DEL`, and rate limits kept by
/// a GCRA script; every key prefixed.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
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
    /// Returns a cache over an existing connection manager, prefixing every key with `key_prefix`.
    pub fn new(conn: ConnectionManager, key_prefix: impl Into<String>) -> Self {
        Self {
            conn,
            key_prefix: key_prefix.into(),
        }
    }

    /// Connects to the Redis server at `url` and returns a cache prefixing every key with
    /// `key_prefix`. Fails with [`CacheError::Unavailable`] when the server cannot be reached.
    pub async fn connect(url: &str, key_prefix: impl Into<String>) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError::Other(e.to_string()))?;
        let conn = ConnectionManager::new_with_config(client, fail_fast_config())
            .await
            .map_err(cache_error)?;
        Ok(Self::new(conn, key_prefix))
    }

    /// Returns a cache on the Redis server at `url` that connects on first
    /// use, so a process can start while Redis is down (each command then
    /// fails until it is back). Fails only on a malformed URL.
    pub fn connect_lazy(url: &str, key_prefix: impl Into<String>) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError::Other(e.to_string()))?;
        let conn = ConnectionManager::new_lazy_with_config(client, fail_fast_config())
            .map_err(cache_error)?;
        Ok(Self::new(conn, key_prefix))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.key_prefix, key)
    }
}

/// Returns a connection-manager configuration that gives up quickly: a fact that cannot be read
/// now must fail closed (R-GW-5) rather than make the caller wait for a long reconnect.
pub(crate) fn fail_fast_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
}

/// Runs `cmd`, running it once more when the first attempt fails with an error for which
/// `retry_if` holds.
///
/// The connection manager answers the first command after an outage with the error of its last
/// failed reconnection and only then reconnects, so without a second attempt the first command
/// after the server is back would fail for nothing.
pub(crate) async fn query_retrying<T: redis::FromRedisValue>(
    conn: &ConnectionManager,
    cmd: &redis::Cmd,
    retry_if: fn(&redis::RedisError) -> bool,
) -> redis::RedisResult<T> {
    match cmd.query_async(&mut conn.clone()).await {
        Err(e) if retry_if(&e) => cmd.query_async(&mut conn.clone()).await,
        result => result,
    }
}

/// Returns whether a Redis error means the server could not be reached or the link broke.
pub(crate) fn is_unavailable(e: &redis::RedisError) -> bool {
    use redis::ErrorKind;
    use redis::ServerErrorKind;
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
            )
        )
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
