//! The clock every expiry is measured against.
//!
//! Production uses the system clock. Tests and demos may use a settable one to
//! reach an expiry instant exactly; configuration refuses it elsewhere
//! (see [`crate::config::Environment::allows_settable_clock`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// A source of the current instant. Cheap to clone; clones share the time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    settable: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// Returns the system clock.
    pub fn system() -> Self {
        Self { settable: None }
    }

    /// Returns a settable clock starting at `start` that only moves when set.
    pub fn settable(start: DateTime<Utc>) -> Self {
        Self {
            settable: Some(Arc::new(AtomicI64::new(start.timestamp_micros()))),
        }
    }

    /// Returns true for a settable clock.
    pub fn is_settable(&self) -> bool {
        self.settable.is_some()
    }

    /// Returns the current instant (microsecond precision).
    pub fn now(&self) -> DateTime<Utc> {
        match &self.settable {
            None => Utc::now(),
            Some(micros) => {
                DateTime::from_timestamp_micros(micros.load(Ordering::Acquire)).unwrap_or_default()
            }
        }
    }

    /// Sets a settable clock to `instant`. Returns false (and changes nothing)
    /// on the system clock.
    pub fn set(&self, instant: DateTime<Utc>) -> bool {
        match &self.settable {
            None => false,
            Some(micros) => {
                micros.store(instant.timestamp_micros(), Ordering::Release);
                true
            }
        }
    }

    /// Moves a settable clock forward by `by`. Returns false on the system clock.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.settable {
            None => false,
            Some(micros) => {
                let delta = by.num_microseconds().unwrap_or(i64::MAX);
                micros.fetch_add(delta, Ordering::AcqRel);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settable_clock_moves_only_when_set() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let clock = Clock::settable(start);
        assert_eq!(clock.now(), start);
        assert!(clock.advance(Duration::milliseconds(1)));
        assert_eq!(clock.now(), start + Duration::milliseconds(1));
        let shared = clock.clone();
        assert!(shared.set(start));
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn system_clock_cannot_be_set() {
        let clock = Clock::system();
        assert!(!clock.set(Utc::now()));
        assert!(!clock.is_settable());
    }
}
