//! tonic handlers of `ccp.identity.v1.Identity` and `IdentityFacts`:
//! proto <-> domain conversion and errors to `Status`. Every RPC answers
//! UNIMPLEMENTED until the identity issue builds it.

use ccp_platform::context::ServiceContext;
use ccp_proto::identity::v1::identity_facts_server::IdentityFacts;
use ccp_proto::identity::v1::identity_server::Identity;
use sea_orm::DatabaseConnection;

/// The public `Identity` service.
#[derive(Debug, Clone)]
pub struct IdentityApi {
    #[allow(dead_code)]
    db: DatabaseConnection,
    #[allow(dead_code)]
    ctx: ServiceContext,
}

impl IdentityApi {
    /// Returns the service over `db`.
    pub fn new(db: DatabaseConnection, ctx: ServiceContext) -> Self {
        Self { db, ctx }
    }
}

#[tonic::async_trait]
impl Identity for IdentityApi {}

/// The internal `IdentityFacts` service.
#[derive(Debug, Clone)]
pub struct IdentityFactsApi {
    #[allow(dead_code)]
    db: DatabaseConnection,
    #[allow(dead_code)]
    ctx: ServiceContext,
}

impl IdentityFactsApi {
    /// Returns the service over `db`.
    pub fn new(db: DatabaseConnection, ctx: ServiceContext) -> Self {
        Self { db, ctx }
    }
}

#[tonic::async_trait]
impl IdentityFacts for IdentityFactsApi {}
