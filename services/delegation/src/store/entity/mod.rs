//! sea-orm entities of the tables this service writes row by row, matching
//! the columns m0002 and m0003 create (instants as microseconds, lists as JSON text,
//! states by their stored spelling). Models never leave `store`.

pub mod assignment;
pub mod client_group;
pub mod client_group_client;
pub mod consumer_position;
pub mod registered_business;
pub mod relationship;
pub mod relationship_request;
