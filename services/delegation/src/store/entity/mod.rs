//! sea-orm entities of the tables this service writes row by row, matching
//! the columns m0002 creates (instants as microseconds, lists as JSON text,
//! states by their stored spelling). Models never leave `store`. The sweep
//! lease (m0003) is written through `ccp_platform::store::lease`.

pub mod assignment;
pub mod client_group;
pub mod client_group_client;
pub mod consumer_position;
pub mod registered_business;
pub mod relationship;
pub mod relationship_request;
