//! The `profiles` table.

use sea_orm::entity::prelude::*;

/// One row of `profiles`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub legal_name: String,
    pub email: String,
    pub phone: String,
    pub preferred_language: String,
    pub email_notifications: bool,
    /// A JSON object of kind of notice to on/off.
    pub notification_choices: String,
    pub create_us: i64,
    pub update_us: i64,
    pub version: i64,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
