#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The gateway against the real identity, accounts and delegation services
//! (SQLite; the services' own tests cover PostgreSQL): the authorization
//! matrix, revocation across replicas on one Redis, faults, token attacks,
//! employee groups changed by a PAM (R-AC-6), retries of forwarded calls, and the
//! services starting while Redis is unreachable (R-EV-1), and replicas of every
//! service behind the balanced upstream channels (PostgreSQL, `replicas`).

mod decided_on;
mod durable_revocation;
mod faults;
mod groups;
mod harness;
mod hostile;
mod listing;
mod matrix;
mod no_profile;
mod programs;
mod redis_outage;
mod references;
mod replicas;
mod retry;
mod revocation;
mod token_attacks;
mod world;
