//! `relationship_requests`: one row per request a provider sent.

use sea_orm::entity::prelude::*;

/// A stored relationship request.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "relationship_requests")]
pub struct Model {
    /// Uuid.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Client BN9.
    pub client: String,
    /// JSON list of BN15s.
    pub program_accounts: String,
    /// Note.
    pub note: String,
    /// Stored state spelling.
    pub state: String,
    /// Sender principal.
    pub sender: String,
    /// Created (µs).
    pub create_us: i64,
    /// Visible since (µs).
    pub visible_us: Option<i64>,
    /// Expires (µs).
    pub expire_us: Option<i64>,
    /// Decided (µs).
    pub decide_us: Option<i64>,
    /// Decider.
    pub decided_by: String,
    /// Rejection reason.
    pub reject_reason: String,
    /// Relationship created by approval.
    pub relationship_id: String,
}

/// No relations are declared; the store joins by hand where it must.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
