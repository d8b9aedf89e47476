//! The delegation service through its gRPC front door (R-DE-1..6, R-AU-1,
//! R-EV-1, R-IN-1), each behaviour on SQLite and PostgreSQL, against the real
//! identity and accounts services (see `helpers`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod approval;
mod binary;
mod concurrency;
mod helpers;
mod internal_port;
mod provider;
mod relationships;
mod requests;
mod write_path;
