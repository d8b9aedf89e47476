//! `relationships`: one row per relationship, with its reminder schedule.

use sea_orm::entity::prelude::*;

/// A stored relationship.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "relationships")]
pub struct Model {
    /// Uuid.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Client BN9.
    pub client: String,
    /// The request it came from.
    pub request_id: String,
    /// BUSINESS or PROGRAM.
    pub level: String,
    /// JSON list of BN15s.
    pub program_accounts: String,
    /// JSON list of visibility spellings.
    pub visibility: String,
    /// Began (µs).
    pub start_us: i64,
    /// Expires (µs).
    pub expire_us: i64,
    /// Recorded ending (µs).
    pub end_us: Option<i64>,
    /// Recorded end reason spelling.
    pub end_reason: Option<String>,
    /// Who ended it.
    pub ended_by: String,
    /// End note.
    pub end_note: String,
    /// Last change (µs).
    pub update_us: i64,
    /// Update counter (the etag).
    pub version: i64,
    /// Due instant of the 30-day reminder (µs).
    pub remind_30_us: Option<i64>,
    /// Due instant of the 7-day reminder (µs).
    pub remind_7_us: Option<i64>,
    /// Due instant of the 1-day reminder (µs).
    pub remind_1_us: Option<i64>,
}

/// No relations are declared; the store joins by hand where it must.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
