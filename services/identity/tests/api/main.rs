//! The identity service through its gRPC front door, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod binary;
mod helpers;
mod rsa_fixture;

mod audit;
mod choices;
mod credentials;
mod facts;
mod keys;
mod profiles;
mod sessions;
mod sign_in;
mod write_path;
