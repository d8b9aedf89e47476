//! Tests of the accounts service through its gRPC front door, each on SQLite
//! and PostgreSQL; names carry the rule they check.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod binary;
mod helpers;
mod members;
mod outbox;
mod paging;
mod registration;
mod requests;
mod write_path;
