//! The v1 protobuf contracts of CCP, generated with prost and tonic.
//!
//! This crate owns the wire contracts only: the public services (identity,
//! accounts, delegation) that the gateway serves and forwards, the internal
//! facts services it never exposes, the gateway's decision API, the notifier's
//! operator API, and the shared types and domain-event envelope. Feature `client` generates the clients,
//! `server` the server traits (every RPC of a server trait defaults to
//! UNIMPLEMENTED). The comments in `proto/` are the API reference.
#![allow(missing_docs)]

/// Types shared by every service (`ccp.common.v1`).
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("ccp.common.v1");
    }
}

/// The identity service (`ccp.identity.v1`).
pub mod identity {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("ccp.identity.v1");
    }
}

/// The accounts service (`ccp.accounts.v1`).
pub mod accounts {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("ccp.accounts.v1");
    }
}

/// The delegation service (`ccp.delegation.v1`).
pub mod delegation {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("ccp.delegation.v1");
    }
}

/// The gateway's decision API (`ccp.gateway.v1`).
pub mod gateway {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("ccp.gateway.v1");
    }
}

/// The notifications service's operator API (`ccp.notifications.v1`).
pub mod notifications {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("ccp.notifications.v1");
    }
}

/// The encoded `FileDescriptorSet` of every contract, for gRPC reflection and
/// for walking the RPCs (the gateway's policy table test does).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ccp_descriptor");

/// Fully qualified names of the public services, served by the gateway.
pub const PUBLIC_SERVICES: &[&str] = &[
    "ccp.identity.v1.Identity",
    "ccp.accounts.v1.Accounts",
    "ccp.delegation.v1.Delegation",
];

/// Fully qualified names of the internal facts services, never exposed by the gateway.
pub const INTERNAL_SERVICES: &[&str] = &[
    "ccp.identity.v1.IdentityFacts",
    "ccp.accounts.v1.AccountFacts",
    "ccp.delegation.v1.RelationshipFacts",
];

/// Fully qualified names of the operator services (internal token required, called by `ccp`'s
/// operator commands), never exposed by the gateway.
pub const OPERATOR_SERVICES: &[&str] = &["ccp.notifications.v1.NotificationsAdmin"];
