//! Plain-Rust rules of delegation: business numbers, notes, visibility rules,
//! request and relationship lifecycles, and the reminder schedule. No prost,
//! no sea-orm.

pub mod bn;
pub mod rules;

pub use bn::{Bn9, Bn15};
pub use rules::*;
