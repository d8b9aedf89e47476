//! tonic handlers of `ccp.identity.v1.Identity` and `AccountFacts`:
//! proto <-> domain conversion and errors to `Status`. Every RPC answers
//! UNIMPLEMENTED until the identity issue builds it.

use ccp_platform::context::ServiceContext;
use ccp_proto::accounts::v1::account_facts_server::AccountFacts;
use ccp_proto::accounts::v1::accounts_server::Accounts;
use sea_orm::DatabaseConnection;

/// The public `Identity` service.
#[derive(Debug, Clone)]
pub struct AccountsApi {
    #[allow(dead_code)]
    db: DatabaseConnection,
    #[allow(dead_code)]
    ctx: ServiceContext,
}

impl AccountsApi {
    /// Returns the service over `db`.
    pub fn new(db: DatabaseConnection, ctx: ServiceContext) -> Self {
        Self { db, ctx }
    }
}

#[tonic::async_trait]
impl Accounts for AccountsApi {}

/// The internal `AccountFacts` service.
#[derive(Debug, Clone)]
pub struct AccountFactsApi {
    #[allow(dead_code)]
    db: DatabaseConnection,
    #[allow(dead_code)]
    ctx: ServiceContext,
}

impl AccountFactsApi {
    /// Returns the service over `db`.
    pub fn new(db: DatabaseConnection, ctx: ServiceContext) -> Self {
        Self { db, ctx }
    }
}

#[tonic::async_trait]
impl AccountFacts for AccountFactsApi {}
