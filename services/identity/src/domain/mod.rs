//! Plain-Rust rules of identity: profiles, sessions, credentials, signing
//! keys. No prost, no sea-orm, no I/O. Values here are parsed: holding one
//! proves it is valid. Business numbers and request ids come from `ccp-types`.

pub mod credential;
pub mod error;
pub mod keys;
pub mod profile;
pub mod session;

pub use error::{FieldRule, IdentityError};
