//! The event bus: append-only streams of opaque payloads, read by any number of subscribers.
//!
//! Services publish their domain events from their outbox (R-EV-1); the gateway and other
//! services consume them. Delivery is at least once and in order: a consumer records the
//! position of the last event it handled and, after a restart or reconnect, subscribes with
//! [`StartFrom::After`] that position to receive every later event. Every subscriber sees every
//! event (fan-out); there are no consumer groups.

mod memory;
mod redis;

pub use self::memory::MemoryBus;
pub use self::redis::{DEFAULT_MAX_LEN, RedisBus};

use std::cmp::Ordering;
use std::fmt;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A position in a stream: the Redis stream id (`"<ms>-<seq>"`), or a zero-padded index for the
/// in-memory bus. Positions are ordered within a stream: they compare as Redis stream ids, so a
/// bare number `n` compares as `n-0`; anything else falls back to comparing the text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(String);

impl Position {
    /// Returns a position wrapping `id`, as previously read from [`Position::as_str`].
    pub fn new(id: String) -> Self {
        Self(id)
    }

    /// Returns the position as text, fit to be stored and given back to [`Position::new`].
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the position as a Redis stream id `(milliseconds, sequence)`, when it is one.
    pub(crate) fn as_stream_id(&self) -> Option<(u64, u64)> {
        parse_stream_id(&self.0)
    }
}

/// Returns `(ms, seq)` for `"<ms>-<seq>"` or `"<n>"` (as `(n, 0)`), None for anything else.
pub(crate) fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match id.split_once('-') {
        Some((ms, seq)) if digits(ms) && digits(seq) => Some((ms.parse().ok()?, seq.parse().ok()?)),
        None if digits(id) => Some((id.parse().ok()?, 0)),
        _ => None,
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.as_stream_id(), other.as_stream_id()) {
            (Some(a), Some(b)) => a.cmp(&b).then_with(|| self.0.cmp(&other.0)),
            _ => self.0.cmp(&other.0),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a new subscription starts reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// Every event still held in the stream.
    Beginning,
    /// Only events published after the subscribe call returns.
    Latest,
    /// Every event after this position (the last one the consumer acknowledged).
    After(Position),
}

/// One event handed to a subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The event's position; acknowledge it by storing it and resuming `After` it.
    pub position: Position,
    /// The payload exactly as published.
    pub payload: Vec<u8>,
}

/// An item of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The next event in order.
    Event(Delivered),
    /// Everything present when the reader (re)connected has been delivered; the subscriber is
    /// now live. Yielded once after subscribing and again after every reconnection.
    CaughtUp,
}

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The backend cannot be reached (connection refused, dropped or timed out). A subscription
    /// yields this once per outage and keeps retrying; it does not end.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a malformed position, an unexpected reply, a trimmed backlog.
    #[error("event bus error: {0}")]
    Other(String),
}

/// The items of one subscription, in stream order. It never ends on its own; drop it to stop.
pub type Subscription = Pin<Box<dyn futures::Stream<Item = Result<Delivery, BusError>> + Send>>;

/// Publishes events to named streams and subscribes to them.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Appends a payload to a stream and returns its position.
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<Position, BusError>;

    /// Subscribes to a stream from the given start. The returned stream yields events in order,
    /// at least once, then [`Delivery::CaughtUp`] once the backlog is delivered.
    async fn subscribe(&self, stream: &str, from: StartFrom) -> Result<Subscription, BusError>;

    /// Returns Ok when the bus answers now (for health reporting).
    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_compare_as_stream_ids() {
        let p = |s: &str| Position::new(s.to_owned());
        assert!(p("9-0") < p("10-0"));
        assert!(p("10-2") < p("10-10"));
        assert!(p("00000000000000000009") < p("00000000000000000010"));
        assert!(p("5") < p("5-1"));
        assert_eq!(p("7-3").to_string(), "7-3");
        assert_eq!(parse_stream_id("x-1"), None);
        assert_eq!(parse_stream_id("-1"), None);
    }
}
