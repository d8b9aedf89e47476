//! `sweep_leases`: which replica runs a background job, and until when.

use sea_orm::entity::prelude::*;

/// A lease on one background job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sweep_leases")]
pub struct Model {
    /// The job (`sweep`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The replica holding it (a random id per process).
    pub holder: String,
    /// Until when it holds it, microseconds since the epoch.
    pub until_us: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
