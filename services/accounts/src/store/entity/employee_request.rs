//! `employee_requests`: an employee access request.

use sea_orm::entity::prelude::*;

/// An employee access request.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "employee_requests")]
pub struct Model {
    /// Uuid.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// BN9.
    pub bn9: String,
    /// `person:<uuid>`.
    pub requester: String,
    /// Justification.
    pub note: String,
    /// State spelling.
    pub state: String,
    /// Created.
    pub create_time: DateTimeUtc,
    /// Expires.
    pub expire_time: DateTimeUtc,
    /// Decided.
    pub decide_time: Option<DateTimeUtc>,
    /// Decided by.
    pub decided_by: String,
    /// Rejection reason.
    pub reject_reason: String,
    /// Granted roles as JSON (empty when none).
    pub granted_json: String,
}

/// No relations are navigated; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
