//! Shared plumbing for every CCP service, and nothing domain-specific.
//!
//! It owns configuration loading, telemetry, the gRPC server bootstrap (health,
//! reflection, tower layers, graceful shutdown), the error-code table, database
//! connection and migration, who-is-calling (principals, access and internal
//! token verification), client-side balancing over upstream replicas, the
//! clock, revision tokens, metrics, and the fact cache and event bus with Redis and
//! in-memory implementations. It must never hold
//! domain rules: services decide, this crate only carries.

pub mod auth;
pub mod balance;
pub mod bus;
pub mod cache;
pub mod clock;
pub mod config;
pub mod config_keys;
pub mod context;
pub mod db;
pub mod error;
pub mod metrics;
pub mod paging;
pub mod redis_link;
pub mod retry;
pub mod revision;
pub mod server;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod tls;
