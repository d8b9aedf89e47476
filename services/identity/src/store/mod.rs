//! This service's schema: migrations, sea-orm entities (one per table) and
//! the repositories over them, plus the signing-key ring. Entities never
//! leave this module: repositories take and return domain types, and a row
//! that does not decode is an error naming its table and column.

pub mod credentials;
mod entity;
pub mod keys;
pub mod migration;
pub mod profiles;
pub mod revocations;
pub mod sessions;

pub use migration::Migrator;

/// Returns the instant an optional microseconds column holds (see
/// [`ccp_platform::db::from_micros`]).
fn optional_micros(
    value: Option<i64>,
    table: &str,
    column: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sea_orm::DbErr> {
    value
        .map(|v| ccp_platform::db::from_micros(v, table, column))
        .transpose()
}
