//! The Redis Streams event bus used by the distributed mode.

use std::collections::VecDeque;
use std::time::Duration;

use redis::Value;
use redis::streams::{StreamRangeReply, StreamReadReply};

use super::{BusError, Delivered, Delivery, EventBus, Position, StartFrom, Subscription};
use crate::redis_link::{RedisLink, RedisTarget, is_unavailable, query_retrying};

/// Default approximate cap on the length of each stream (`XADD … MAXLEN ~`).
pub const DEFAULT_MAX_LEN: usize = 100_000;

/// How many entries one `XREAD` asks for.
const READ_COUNT: usize = 256;
/// How long one `XREAD` waits for new entries, in milliseconds, once the reader is live.
const BLOCK_MS: u64 = 1_000;
/// The field that holds an event's payload.
const PAYLOAD_FIELD: &str = "p";
/// First and last pause between reconnection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// An [`EventBus`] on Redis Streams (one server or a Redis Cluster, where each stream is one key
/// and so lives on one node). Publishing shares one connection; every subscription reads with
/// `XREAD BLOCK` on a dedicated connection of its own, so it never holds up other commands. Streams are trimmed to about `max_len` entries; a subscriber further behind than
/// that silently misses the trimmed ones.
#[derive(Clone)]
pub struct RedisBus {
    target: RedisTarget,
    conn: RedisLink,
    key_prefix: String,
    max_len: usize,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("key_prefix", &self.key_prefix)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// Connects to the Redis at `target` (a `redis://` URL, or a [`RedisTarget`]) and returns a
    /// bus whose stream keys are `<key_prefix><stream>`, trimmed to about [`DEFAULT_MAX_LEN`]
    /// entries. Fails with [`BusError::Unavailable`] when the server (every seed node of a
    /// cluster) cannot be reached.
    pub async fn connect(
        target: impl Into<RedisTarget>,
        key_prefix: impl Into<String>,
    ) -> Result<Self, BusError> {
        let target = target.into();
        let conn = target.connect().await.map_err(bus_error)?;
        Ok(Self {
            target,
            conn,
            key_prefix: key_prefix.into(),
            max_len: DEFAULT_MAX_LEN,
        })
    }

    /// Returns a bus on the Redis at `target` that connects on first use,
    /// so a service can start and accept writes while Redis is down: its
    /// events wait in the outbox until a publish succeeds. Fails only on a
    /// malformed URL.
    pub fn connect_lazy(
        target: impl Into<RedisTarget>,
        key_prefix: impl Into<String>,
    ) -> Result<Self, BusError> {
        let target = target.into();
        let conn = target.connect_lazy().map_err(bus_error)?;
        Ok(Self {
            target,
            conn,
            key_prefix: key_prefix.into(),
            max_len: DEFAULT_MAX_LEN,
        })
    }

    /// Returns the bus trimming each stream to about `max_len` entries instead of the default.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(1);
        self
    }

    fn key(&self, stream: &str) -> String {
        format!("{}{}", self.key_prefix, stream)
    }
}

fn bus_error(e: redis::RedisError) -> BusError {
    if is_unavailable(&e) {
        BusError::Unavailable(e.to_string())
    } else {
        BusError::Other(e.to_string())
    }
}

/// Opens the dedicated connection of one subscription; its reply timeout outlasts `XREAD BLOCK`.
async fn open_reader_connection(target: &RedisTarget) -> Result<RedisLink, redis::RedisError> {
    target
        .connect_dedicated(Duration::from_millis(BLOCK_MS) + Duration::from_secs(2))
        .await
}

#[async_trait::async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<Position, BusError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.key(stream))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg(PAYLOAD_FIELD)
            .arg(payload);
        // XADD is not idempotent: retry only when the command cannot have reached the server.
        let id: String = query_retrying(&self.conn, &cmd, redis::RedisError::is_connection_refusal)
            .await
            .map_err(bus_error)?;
        Ok(Position::new(id))
    }

    async fn ping(&self) -> Result<(), BusError> {
        let _: String = query_retrying(
            &self.conn,
            &redis::cmd("PING"),
            redis::RedisError::is_connection_refusal,
        )
        .await
        .map_err(bus_error)?;
        Ok(())
    }

    async fn subscribe(&self, stream: &str, from: StartFrom) -> Result<Subscription, BusError> {
        let key = self.key(stream);
        let after = match &from {
            StartFrom::After(position) => {
                let (ms, seq) = position.as_stream_id().ok_or_else(|| {
                    BusError::Other(format!("position {position} is not a Redis stream id"))
                })?;
                Some(format!("{ms}-{seq}"))
            }
            StartFrom::Beginning => Some("0-0".to_owned()),
            StartFrom::Latest => None,
        };
        let mut conn = open_reader_connection(&self.target)
            .await
            .map_err(bus_error)?;
        let last_id = match after {
            Some(id) => id,
            // "$" would be re-read on every reconnect; pin it to the id that is last right now.
            None => {
                let newest: StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn)
                    .await
                    .map_err(bus_error)?;
                newest
                    .ids
                    .into_iter()
                    .next()
                    .map_or_else(|| "0-0".to_owned(), |entry| entry.id)
            }
        };
        let reader = Reader {
            target: self.target.clone(),
            key,
            conn: Some(conn),
            last_id,
            pending: VecDeque::new(),
            catching_up: true,
            outage_reported: false,
            delays: crate::retry::Delays::new(MIN_BACKOFF, MAX_BACKOFF),
        };
        Ok(Box::pin(futures::stream::unfold(
            reader,
            |mut reader| async move {
                let item = reader.next().await;
                Some((item, reader))
            },
        )))
    }
}

/// An entry read but not yet handed to the subscriber.
enum Pending {
    Event(Delivered),
    /// An entry that cannot be delivered (no payload field); reported, then skipped.
    Malformed {
        id: String,
        error: BusError,
    },
    CaughtUp,
}

/// The state of one subscription. Dropping it closes its connection; nothing runs on its own.
struct Reader {
    target: RedisTarget,
    key: String,
    conn: Option<RedisLink>,
    /// Id of the last entry handed out (or the start point); reading resumes after it.
    last_id: String,
    pending: VecDeque<Pending>,
    /// True from (re)connection until the entries present then have been read.
    catching_up: bool,
    /// True once the current outage has been reported, until a read succeeds again.
    outage_reported: bool,
    delays: crate::retry::Delays,
}

impl Reader {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            match self.pending.pop_front() {
                Some(Pending::Event(delivered)) => {
                    self.last_id = delivered.position.as_str().to_owned();
                    return Ok(Delivery::Event(delivered));
                }
                Some(Pending::Malformed { id, error }) => {
                    self.last_id = id;
                    return Err(error);
                }
                Some(Pending::CaughtUp) => return Ok(Delivery::CaughtUp),
                None => {}
            }
            let conn = match self.conn.as_mut() {
                Some(conn) => conn,
                None => match open_reader_connection(&self.target).await {
                    Ok(conn) => self.conn.insert(conn),
                    Err(e) => {
                        if let Some(error) = self.failed(e).await {
                            return Err(error);
                        }
                        continue;
                    }
                },
            };
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT").arg(READ_COUNT);
            // While catching up, read without blocking so CaughtUp follows the backlog at once.
            if !self.catching_up {
                cmd.arg("BLOCK").arg(BLOCK_MS);
            }
            cmd.arg("STREAMS").arg(&self.key).arg(&self.last_id);
            match cmd.query_async::<Option<StreamReadReply>>(conn).await {
                Ok(reply) => {
                    self.outage_reported = false;
                    self.delays = crate::retry::Delays::new(MIN_BACKOFF, MAX_BACKOFF);
                    let entries = reply
                        .into_iter()
                        .flat_map(|reply| reply.keys)
                        .flat_map(|key| key.ids);
                    let before = self.pending.len();
                    for entry in entries {
                        self.pending
                            .push_back(decode(entry.id, entry.map.get(PAYLOAD_FIELD)));
                    }
                    if self.catching_up && self.pending.len() - before < READ_COUNT {
                        self.catching_up = false;
                        self.pending.push_back(Pending::CaughtUp);
                    }
                }
                Err(e) => {
                    self.conn = None;
                    if let Some(error) = self.failed(e).await {
                        return Err(error);
                    }
                }
            }
        }
    }

    /// Records a failed connect or read. Returns the error to report for the first failure of
    /// an outage; for later ones waits out the backoff and returns None.
    async fn failed(&mut self, e: redis::RedisError) -> Option<BusError> {
        self.catching_up = true;
        if !self.outage_reported {
            self.outage_reported = true;
            tracing::warn!(stream = %self.key, error = %e, "event bus subscription lost its connection");
            return Some(bus_error(e));
        }
        let wait = self.delays.next_delay();
        tracing::debug!(stream = %self.key, error = %e, backoff_ms = wait.as_millis() as u64, "event bus subscription retrying");
        tokio::time::sleep(wait).await;
        None
    }
}

fn decode(id: String, payload: Option<&Value>) -> Pending {
    match payload.map(redis::from_redis_value_ref::<Vec<u8>>) {
        Some(Ok(payload)) => Pending::Event(Delivered {
            position: Position::new(id),
            payload,
        }),
        Some(Err(e)) => Pending::Malformed {
            error: BusError::Other(format!("entry {id} has an unreadable payload: {e}")),
            id,
        },
        None => Pending::Malformed {
            error: BusError::Other(format!("entry {id} has no `{PAYLOAD_FIELD}` field")),
            id,
        },
    }
}
