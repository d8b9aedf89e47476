//! Delegation commands: relationship requests and relationships between a
//! customs broker (the provider) and an importer (the client), the broker's
//! client groups and its employees' assignments.

mod assignments;
mod client_groups;
mod relationships;

pub use assignments::AssignmentArgs;
pub(super) use assignments::assignment;
pub use client_groups::ClientGroupArgs;
pub(super) use client_groups::client_group;
pub use relationships::RelationshipArgs;
pub(super) use relationships::relationship;
