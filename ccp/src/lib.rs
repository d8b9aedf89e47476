//! The `ccp` command's library: the suite's configuration tree and the
//! embedded mode that runs all four services in one process.
//!
//! It owns how the services are put together (endpoints, data directory,
//! shared runtime), never what they do.

pub mod bench;
pub mod demo;
pub mod embedded;
pub mod identity_cmd;
pub mod registry_cmd;
pub mod settings;
