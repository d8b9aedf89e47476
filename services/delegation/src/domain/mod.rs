//! Plain-Rust rules of delegation: the records it keeps, visibility rules,
//! request and relationship lifecycles, the reminder schedule and the errors
//! its rules give. No I/O, no prost, no sea-orm. Business numbers, notes and
//! request ids come from `ccp-types`.

pub mod error;
pub mod records;
pub mod rules;

pub use ccp_types::{Bn9, Bn15};
pub use error::DelegationError;
pub use records::*;
pub use rules::*;
