//! This service's schema: migrations, queries and the signing-key ring.
//! Rows never leave this module as sea-orm types: callers get plain structs.

pub mod keys;
pub mod migration;
pub mod repo;

pub use migration::Migrator;

use chrono::{DateTime, Utc};

/// Returns an instant as microseconds since the epoch (the stored form).
pub fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Returns the instant of stored microseconds.
pub fn from_us(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}
