//! tonic handlers of `ccp.identity.v1.Identity` and `RelationshipFacts`:
//! proto <-> domain conversion and errors to `Status`. Every RPC answers
//! UNIMPLEMENTED until the identity issue builds it.

use ccp_platform::context::ServiceContext;
use ccp_proto::delegation::v1::delegation_server::Delegation;
use ccp_proto::delegation::v1::relationship_facts_server::RelationshipFacts;
use sea_orm::DatabaseConnection;

/// The public `Identity` service.
#[derive(Debug, Clone)]
pub struct DelegationApi {
    #[allow(dead_code)]
    db: DatabaseConnection,
    #[allow(dead_code)]
    ctx: ServiceContext,
}

impl DelegationApi {
    /// Returns the service over `db`.
    pub fn new(db: DatabaseConnection, ctx: ServiceContext) -> Self {
        Self { db, ctx }
    }
}

#[tonic::async_trait]
impl Delegation for DelegationApi {}

/// The internal `RelationshipFacts` service.
#[derive(Debug, Clone)]
pub struct RelationshipFactsApi {
    #[allow(dead_code)]
    db: DatabaseConnection,
    #[allow(dead_code)]
    ctx: ServiceContext,
}

impl RelationshipFactsApi {
    /// Returns the service over `db`.
    pub fn new(db: DatabaseConnection, ctx: ServiceContext) -> Self {
        Self { db, ctx }
    }
}

#[tonic::async_trait]
impl RelationshipFacts for RelationshipFactsApi {}
