//! This service's schema: migrations and repositories.

pub mod migration;

pub use migration::Migrator;
