//! Where the shared Redis is (one server, or a Redis Cluster) and the connection the cache and the
//! bus talk to it through, the same for both forms.
//!
//! On a Redis Cluster every command is routed to the node owning its key's slot. Commands that
//! touch several keys either are split by slot by the client (`MGET`, `DEL`: each key stands on
//! its own, none needs to sit with another) or carry keys that share a hash tag (the rate-limit
//! script's one key, `<prefix>rate:{<principal>}`); the bus's commands each name one stream.

use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, IntoConnectionInfo as _, RedisFuture, Value};

/// How long connecting to a node and waiting for a reply may take before a command fails: a fact
/// that cannot be read now must fail closed (R-GW-5) rather than make the caller wait.
const FAIL_FAST: Duration = Duration::from_secs(1);

/// The Redis the cache and the bus use: one server, or the seed nodes of a Redis Cluster.
///
/// Built from the settings with [`crate::config::RedisSettings::target`]; a `&str` or `String`
/// converts into [`RedisTarget::Server`].
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis://host:port`, or `rediss://…`).
    Server(String),
    /// Some nodes of a Redis Cluster (each `redis://host:port`); the client learns the others
    /// and which node owns which slot from them.
    Cluster(Vec<String>),
}

impl std::fmt::Debug for RedisTarget {
    // The URLs may carry a password: show how many, not what.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server(_) => f.write_str("RedisTarget::Server(..)"),
            Self::Cluster(seeds) => write!(f, "RedisTarget::Cluster({} seeds)", seeds.len()),
        }
    }
}

impl From<&str> for RedisTarget {
    fn from(url: &str) -> Self {
        Self::Server(url.to_owned())
    }
}

impl From<String> for RedisTarget {
    fn from(url: String) -> Self {
        Self::Server(url)
    }
}

impl From<&String> for RedisTarget {
    fn from(url: &String) -> Self {
        Self::Server(url.clone())
    }
}

impl RedisTarget {
    /// Returns the target `url` names: one server, or with `cluster` a comma-separated list of
    /// a cluster's seed nodes. Fails on an empty list or a URL the client cannot read.
    pub fn parse(url: &str, cluster: bool) -> Result<Self, String> {
        let urls: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err("names no Redis".to_owned());
        }
        for url in &urls {
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                return Err("each URL must start with redis:// or rediss://".to_owned());
            }
            // The client's own parser; its message never repeats the URL (nor a password).
            url.as_str()
                .into_connection_info()
                .map_err(|e| format!("is not a Redis URL the client can use: {e}"))?;
        }
        match (cluster, <[String; 1]>::try_from(urls)) {
            (false, Ok([url])) => Ok(Self::Server(url)),
            (false, Err(_)) => {
                Err("lists several URLs: set redis.cluster = true for a Redis Cluster".to_owned())
            }
            (true, Ok(one)) => Ok(Self::Cluster(one.into())),
            (true, Err(urls)) => Ok(Self::Cluster(urls)),
        }
    }

    /// Connects now; fails when the server (every seed node) cannot be reached.
    pub(crate) async fn connect(&self) -> redis::RedisResult<RedisLink> {
        match self {
            Self::Server(url) => {
                let client = redis::Client::open(url.as_str())?;
                let conn = ConnectionManager::new_with_config(client, manager_config()).await?;
                Ok(RedisLink::Server(conn))
            }
            Self::Cluster(seeds) => {
                let client = cluster_client(seeds)?;
                Ok(RedisLink::Cluster(
                    client
                        .get_async_connection_with_config(cluster_config(FAIL_FAST))
                        .await?,
                ))
            }
        }
    }

    /// Returns a connection made on first use, so a process can start while Redis is down (each
    /// command then fails until it is back). Fails only on a malformed URL.
    pub(crate) fn connect_lazy(&self) -> redis::RedisResult<RedisLink> {
        match self {
            Self::Server(url) => {
                let client = redis::Client::open(url.as_str())?;
                let conn = ConnectionManager::new_lazy_with_config(client, manager_config())?;
                Ok(RedisLink::Server(conn))
            }
            Self::Cluster(seeds) => Ok(RedisLink::Cluster(
                cluster_client(seeds)?
                    .get_pending_async_connection_with_config(cluster_config(FAIL_FAST)),
            )),
        }
    }

    /// Opens a connection of its own for a caller that blocks on it (`XREAD BLOCK`), waiting up
    /// to `response_timeout` for each reply.
    pub(crate) async fn connect_dedicated(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<RedisLink> {
        match self {
            Self::Server(url) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(FAIL_FAST))
                    .set_response_timeout(Some(response_timeout));
                let conn = redis::Client::open(url.as_str())?
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(RedisLink::Direct(conn))
            }
            // A cluster connection of its own: its link to the stream's node is not shared.
            Self::Cluster(seeds) => Ok(RedisLink::Cluster(
                cluster_client(seeds)?
                    .get_async_connection_with_config(cluster_config(response_timeout))
                    .await?,
            )),
        }
    }
}

/// Returns a connection-manager configuration that gives up quickly (see [`FAIL_FAST`]).
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(FAIL_FAST))
        .set_response_timeout(Some(FAIL_FAST))
}

/// Returns a cluster client that gives up as quickly as the single-server one; its two retries
/// let a command follow a `MOVED` or `ASK` redirection while slots move.
fn cluster_client(seeds: &[String]) -> redis::RedisResult<ClusterClient> {
    ClusterClientBuilder::new(seeds.iter().map(String::as_str))
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(500)
        .connection_timeout(FAIL_FAST)
        .build()
}

fn cluster_config(response_timeout: Duration) -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(FAIL_FAST)
        .set_response_timeout(response_timeout)
}

/// A connection to the shared Redis, whichever its form; cheap to clone (clones share it).
#[derive(Clone)]
pub(crate) enum RedisLink {
    /// One server, reconnected on failure.
    Server(ConnectionManager),
    /// One server, a connection of its own ([`RedisTarget::connect_dedicated`]).
    Direct(MultiplexedConnection),
    /// A Redis Cluster: each command goes to the node that owns its slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(conn) => conn.req_packed_command(cmd),
            Self::Direct(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Direct(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(conn) => conn.get_db(),
            Self::Direct(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Runs `cmd`, running it once more when the first attempt fails with an error for which
/// `retry_if` holds.
///
/// The connection manager answers the first command after an outage with the error of its last
/// failed reconnection and only then reconnects, so without a second attempt the first command
/// after the server is back would fail for nothing.
pub(crate) async fn query_retrying<T: redis::FromRedisValue>(
    conn: &RedisLink,
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::RedisTarget;

    #[test]
    fn one_url_is_a_server_and_a_list_needs_the_cluster_flag() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379", false),
            Ok(RedisTarget::Server("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            RedisTarget::parse(" redis://a:7000 , redis://b:7001,", true),
            Ok(RedisTarget::Cluster(vec![
                "redis://a:7000".into(),
                "redis://b:7001".into()
            ]))
        );
        assert_eq!(
            RedisTarget::parse("redis://a:7000", true),
            Ok(RedisTarget::Cluster(vec!["redis://a:7000".into()]))
        );
        let several = RedisTarget::parse("redis://a:7000,redis://b:7001", false).unwrap_err();
        assert!(several.contains("redis.cluster"), "{several}");
        assert!(RedisTarget::parse(" , ", true).is_err());
        assert!(RedisTarget::parse("redis://a:7000,http://b", true).is_err());
        assert!(RedisTarget::parse("redis://a:notaport", false).is_err());
    }

    #[test]
    fn debug_never_shows_a_password() {
        let target =
            RedisTarget::parse("redis://:secret@a:7000,redis://:secret@b:7001", true).unwrap();
        assert!(!format!("{target:?}").contains("secret"));
    }
}
