//! The delegation service through its gRPC front door (R-DE-1..6, R-AU-1,
//! R-EV-1, R-IN-1), each behaviour on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod helpers;
mod requests;
mod approval;
mod relationships;
mod provider;
mod concurrency;
