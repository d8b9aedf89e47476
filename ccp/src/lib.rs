//! The `ccp` command's library: the suite's configuration tree, the
//! embedded mode that runs all four services in one process, and the client
//! commands that do each step of the registration guide through the gateway.
//!
//! It owns how the services are put together (endpoints, data directory,
//! shared runtime), never what they do.

pub mod bench;
pub mod cli;
pub mod client;
pub mod demo;
pub mod embedded;
pub mod health_cmd;
pub mod help_examples;
pub mod identity_cmd;
pub mod mail_cmd;
pub mod notifications_cmd;
pub mod private_file;
pub mod registry_cmd;
pub mod settings;
pub mod suite_state;
