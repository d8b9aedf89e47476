//! The in-process event bus used by the embedded mode and tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use super::{BusError, Delivered, Delivery, EventBus, Position, StartFrom, Subscription};

/// How many events a subscriber takes from the shared log per lock.
const BATCH: usize = 256;

/// Width of the zero-padded index, so that text order equals numeric order.
const INDEX_WIDTH: usize = 20;

fn position_of(index: u64) -> Position {
    Position::new(format!("{index:0INDEX_WIDTH$}"))
}

fn index_of(position: &Position) -> Result<u64, BusError> {
    match position.as_stream_id() {
        Some((index, 0)) => Ok(index),
        _ => Err(BusError::Other(format!(
            "position {position} is not an in-memory bus position"
        ))),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked: every update is one push/pop.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One stream: its retained events and a signal carrying the index of the newest one.
struct Log {
    events: Mutex<Retained>,
    newest: watch::Sender<u64>,
    /// The index before this bus's first event (see [`MemoryBus::new`]).
    base: u64,
}

struct Retained {
    /// `(index, payload)`, oldest first; indices start after the base and grow by one.
    entries: VecDeque<(u64, Arc<[u8]>)>,
    last_index: u64,
}

impl Log {
    fn new(base: u64) -> Self {
        Self {
            events: Mutex::new(Retained {
                entries: VecDeque::new(),
                last_index: base,
            }),
            newest: watch::Sender::new(base),
            base,
        }
    }
}

/// An in-memory [`EventBus`]: any number of streams and subscribers in one process. Each stream
/// keeps its newest `max_len_per_stream` events; a subscriber that falls further behind gets a
/// [`BusError::Other`] naming the gap and continues with the oldest event still held.
#[derive(Clone)]
pub struct MemoryBus {
    streams: Arc<Mutex<HashMap<String, Arc<Log>>>>,
    max_len_per_stream: usize,
    base: u64,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("max_len_per_stream", &self.max_len_per_stream)
            .finish_non_exhaustive()
    }
}

impl MemoryBus {
    /// Returns an empty bus keeping at most `max_len_per_stream` events in each stream (at least one).
    ///
    /// Its positions start above every position an earlier bus handed out (the
    /// wall clock in microseconds × 1000), so a consumer that stored a position
    /// of the last run of `ccp up` and resumes after it here misses nothing of
    /// this run: a position from before this bus reads from its first event.
    pub fn new(max_len_per_stream: usize) -> Self {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| {
                u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 1000)
            });
        Self {
            streams: Arc::default(),
            max_len_per_stream: max_len_per_stream.max(1),
            base: micros.saturating_mul(1000),
        }
    }

    fn log(&self, stream: &str) -> Arc<Log> {
        lock(&self.streams)
            .entry(stream.to_owned())
            .or_insert_with(|| Arc::new(Log::new(self.base)))
            .clone()
    }
}

#[async_trait::async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<Position, BusError> {
        let log = self.log(stream);
        let index = {
            let mut retained = lock(&log.events);
            retained.last_index += 1;
            let index = retained.last_index;
            retained.entries.push_back((index, Arc::from(payload)));
            while retained.entries.len() > self.max_len_per_stream {
                retained.entries.pop_front();
            }
            index
        };
        log.newest
            .send_modify(|newest| *newest = (*newest).max(index));
        Ok(position_of(index))
    }

    async fn subscribe(&self, stream: &str, from: StartFrom) -> Result<Subscription, BusError> {
        let log = self.log(stream);
        let after = match from {
            StartFrom::Beginning => {
                let retained = lock(&log.events);
                retained
                    .entries
                    .front()
                    .map_or(retained.last_index, |(oldest, _)| oldest - 1)
            }
            StartFrom::Latest => lock(&log.events).last_index,
            // A position of an earlier bus: everything of this one follows it.
            StartFrom::After(position) => index_of(&position)?.max(log.base),
        };
        let reader = Reader {
            newest: log.newest.subscribe(),
            log,
            after,
            pending: VecDeque::new(),
            caught_up: false,
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

/// The state of one subscription.
struct Reader {
    log: Arc<Log>,
    newest: watch::Receiver<u64>,
    /// Index of the last event handed out (or the start point).
    after: u64,
    pending: VecDeque<(u64, Arc<[u8]>)>,
    caught_up: bool,
}

impl Reader {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            if let Some((index, payload)) = self.pending.pop_front() {
                self.after = index;
                return Ok(Delivery::Event(Delivered {
                    position: position_of(index),
                    payload: payload.to_vec(),
                }));
            }
            // Mark the current value seen before reading, so a publish racing the read wakes us.
            self.newest.borrow_and_update();
            let gap = {
                let retained = lock(&self.log.events);
                let oldest = retained.entries.front().map(|(index, _)| *index);
                if let Some(oldest) = oldest {
                    // Indices are contiguous, so the next event's slot is computed, not searched.
                    let start = usize::try_from((self.after + 1).saturating_sub(oldest))
                        .unwrap_or(usize::MAX);
                    self.pending.extend(
                        retained
                            .entries
                            .range(start.min(retained.entries.len())..)
                            .take(BATCH)
                            .cloned(),
                    );
                }
                oldest.filter(|oldest| *oldest > self.after + 1)
            };
            if let Some(oldest) = gap {
                let lost = (self.after + 1, oldest - 1);
                self.after = oldest - 1;
                return Err(BusError::Other(format!(
                    "events {} to {} were trimmed before this subscriber read them",
                    lost.0, lost.1
                )));
            }
            if !self.pending.is_empty() {
                continue;
            }
            if !self.caught_up {
                self.caught_up = true;
                return Ok(Delivery::CaughtUp);
            }
            if self.newest.changed().await.is_err() {
                // Unreachable while we hold the log (and so its sender); stay pending rather than spin.
                std::future::pending::<()>().await;
            }
        }
    }
}
