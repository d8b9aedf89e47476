//! The clock every expiry is measured against.
//!
//! Production uses the system clock. Tests and demos may use a settable one to
//! reach an expiry instant exactly, or a shared one that every process of a
//! deployment follows from one file (the system clock moved by the offset the
//! file holds); configuration refuses both elsewhere (see
//! [`crate::config::Environment::allows_settable_clock`]).

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};

use chrono::{DateTime, Duration, Utc};

/// A source of the current instant. Cheap to clone; clones share the time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    source: Source,
}

/// Where a [`Clock`] reads the time.
#[derive(Debug, Clone, Default)]
enum Source {
    /// The system clock.
    #[default]
    System,
    /// A settable instant (microseconds since the epoch).
    Settable(Arc<AtomicI64>),
    /// The system clock moved by an offset (microseconds) that a background
    /// thread keeps following from a file.
    Shared(Arc<AtomicI64>),
}

impl Clock {
    /// Returns the system clock.
    pub fn system() -> Self {
        Self {
            source: Source::System,
        }
    }

    /// Returns a settable clock starting at `start` that only moves when set.
    pub fn settable(start: DateTime<Utc>) -> Self {
        Self {
            source: Source::Settable(Arc::new(AtomicI64::new(start.timestamp_micros()))),
        }
    }

    /// Returns a clock that runs like the system clock moved by the offset
    /// held in the file at `path` (see [`read_offset`]), which a background
    /// thread re-reads every `poll` (no read per [`Clock::now`]) until every
    /// clone of the clock is dropped. Every process given the same file reads
    /// the same time; [`write_offset`] moves them all. Fails when the file
    /// cannot be read or holds no offset now; a later bad read keeps the last
    /// offset (and logs a warning).
    pub fn following_file(path: &Path, poll: std::time::Duration) -> std::io::Result<Self> {
        let offset = Arc::new(AtomicI64::new(micros_of(read_offset(path)?)));
        let weak = Arc::downgrade(&offset);
        let path = path.to_path_buf();
        // A thread rather than a task: validation and client commands build
        // clocks outside a runtime, and it must outlive no runtime.
        std::thread::Builder::new()
            .name("ccp-clock-file".to_owned())
            .spawn(move || follow(&path, poll, &weak))?;
        Ok(Self {
            source: Source::Shared(offset),
        })
    }

    /// Returns true for a settable clock.
    pub fn is_settable(&self) -> bool {
        matches!(self.source, Source::Settable(_))
    }

    /// Returns true for a clock following a file ([`Clock::following_file`]).
    pub fn follows_file(&self) -> bool {
        matches!(self.source, Source::Shared(_))
    }

    /// Returns the current instant (microsecond precision).
    pub fn now(&self) -> DateTime<Utc> {
        match &self.source {
            Source::System => Utc::now(),
            Source::Settable(micros) => {
                DateTime::from_timestamp_micros(micros.load(Ordering::Acquire)).unwrap_or_default()
            }
            Source::Shared(offset) => {
                Utc::now() + Duration::microseconds(offset.load(Ordering::Acquire))
            }
        }
    }

    /// Sets a settable clock to `instant`. Returns false (and changes nothing)
    /// on the system clock and on a clock following a file (write the file).
    pub fn set(&self, instant: DateTime<Utc>) -> bool {
        match &self.source {
            Source::Settable(micros) => {
                micros.store(instant.timestamp_micros(), Ordering::Release);
                true
            }
            Source::System | Source::Shared(_) => false,
        }
    }

    /// Moves a settable clock forward by `by`. Returns false on the system
    /// clock and on a clock following a file.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.source {
            Source::Settable(micros) => {
                micros.fetch_add(micros_of(by), Ordering::AcqRel);
                true
            }
            Source::System | Source::Shared(_) => false,
        }
    }
}

/// The largest offset a clock file may hold (about a hundred years).
const MAX_OFFSET_SECS: f64 = 100.0 * 366.0 * 86_400.0;

fn micros_of(d: Duration) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

/// Re-reads `path` every `poll` into `offset` while a clock holds it.
fn follow(path: &Path, poll: std::time::Duration, offset: &Weak<AtomicI64>) {
    let mut failing: Option<String> = None;
    loop {
        std::thread::sleep(poll);
        let Some(offset) = offset.upgrade() else {
            return;
        };
        match read_offset(path) {
            Ok(read) => {
                offset.store(micros_of(read), Ordering::Release);
                if failing.take().is_some() {
                    tracing::info!(file = %path.display(), "the clock file is readable again");
                }
            }
            Err(err) => {
                let said = err.to_string();
                if failing.as_deref() != Some(said.as_str()) {
                    tracing::warn!(
                        file = %path.display(),
                        error = %said,
                        "cannot read the clock file; the clock keeps its last offset"
                    );
                    failing = Some(said);
                }
            }
        }
    }
}

/// Parses a clock file's text: the offset from the system clock in seconds,
/// signed, with up to six decimals (`0`, `2592000` for 30 days ahead,
/// `-90.5`), surrounding whitespace ignored; at most about a hundred years.
pub fn parse_offset(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not an offset in seconds (e.g. 2592000, -90.5)"))?;
    if !secs.is_finite() || secs.abs() > MAX_OFFSET_SECS {
        return Err(format!(
            "{text:?} is out of range (at most {MAX_OFFSET_SECS} seconds either way)"
        ));
    }
    // Exact to the microsecond within the range (well under 2^53 µs).
    #[allow(clippy::cast_possible_truncation)]
    let micros = (secs * 1e6).round() as i64;
    Ok(Duration::microseconds(micros))
}

/// Formats `offset` as a clock file holds it ([`parse_offset`] reads it back
/// exactly): seconds with six decimals.
pub fn format_offset(offset: Duration) -> String {
    let micros = micros_of(offset);
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

/// Reads the offset a clock file holds (see [`parse_offset`]).
pub fn read_offset(path: &Path) -> std::io::Result<Duration> {
    let text = std::fs::read_to_string(path)?;
    parse_offset(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes `offset` into the clock file at `path` (every clock following it
/// moves within its poll interval). The text goes to a temporary file beside
/// it first and is renamed over it, so a reader never sees half of it.
pub fn write_offset(path: &Path, offset: Duration) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let temporary = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temporary, format!("{}\n", format_offset(offset)))?;
    std::fs::rename(&temporary, path)
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
        assert!(!clock.follows_file());
    }

    #[test]
    fn offsets_read_back_exactly() {
        for offset in [
            Duration::zero(),
            Duration::days(30),
            Duration::days(-1) - Duration::microseconds(1),
            Duration::microseconds(-1),
            Duration::days(366 * 90) + Duration::microseconds(999_999),
        ] {
            assert_eq!(parse_offset(&format_offset(offset)), Ok(offset), "{offset}");
        }
        assert_eq!(parse_offset(" 2592000\n"), Ok(Duration::days(30)));
        assert_eq!(parse_offset("-90.5"), Ok(-Duration::milliseconds(90_500)));
    }

    #[test]
    fn a_file_that_holds_no_offset_is_refused() {
        for text in ["", "soon", "NaN", "inf", "1e300", "2026-12-06T00:00:00Z"] {
            assert!(parse_offset(text).is_err(), "{text:?}");
        }
    }
}
