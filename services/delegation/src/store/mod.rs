//! This service's schema: migrations, sea-orm entities of the tables it
//! writes row by row, and repositories over them (query builder). The facts
//! queries and ListClients stay set-based SQL through `ccp_platform::db`.
//! Models never leave this module: repositories take and return the domain's
//! records, and a row that does not decode is an error naming its table and
//! column.

pub mod entity;
pub mod migration;

mod assignments;
mod client_groups;
mod facts;
mod leases;
mod registrations;
mod relationships;
mod requests;

pub use assignments::*;
pub use client_groups::*;
pub use facts::*;
pub use leases::*;
pub use migration::Migrator;
pub use registrations::*;
pub use relationships::*;
pub use requests::*;

use ccp_platform::db::{decode_enum, decode_json, encode_json, from_micros, to_micros};
use chrono::{DateTime, Utc};
use sea_orm::DbErr;

/// Returns the stored microseconds of an instant.
fn us(t: DateTime<Utc>) -> i64 {
    to_micros(t)
}

/// Returns the stored microseconds of an optional instant.
fn opt_us(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_micros)
}

/// Decodes an optional microseconds column.
fn opt_instant(v: Option<i64>, table: &str, column: &str) -> Result<Option<DateTime<Utc>>, DbErr> {
    v.map(|v| from_micros(v, table, column)).transpose()
}

/// Decodes a JSON list of strings.
fn list(text: &str, table: &str, column: &str) -> Result<Vec<String>, DbErr> {
    decode_json(text, table, column)
}

/// Decodes a JSON list of stored spellings.
fn spelled_list<T: std::str::FromStr>(
    text: &str,
    table: &str,
    column: &str,
) -> Result<Vec<T>, DbErr> {
    list(text, table, column)?
        .iter()
        .map(|item| decode_enum(item, table, column))
        .collect()
}

/// Encodes a list of strings for a JSON column.
fn encode_list(items: &[String]) -> Result<String, DbErr> {
    encode_json(&items)
}
