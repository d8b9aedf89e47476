//! The gateway's implementations of the decision API and of the public
//! services. Every RPC answers UNIMPLEMENTED until the gateway issue builds
//! authorization and forwarding.

use ccp_platform::context::ServiceContext;
use ccp_proto::accounts::v1::accounts_server::Accounts;
use ccp_proto::delegation::v1::delegation_server::Delegation;
use ccp_proto::gateway::v1::authorization_server::Authorization;
use ccp_proto::identity::v1::identity_server::Identity;

/// The gateway's service implementation.
#[derive(Debug, Clone)]
pub struct GatewayApi {
    #[allow(dead_code)]
    ctx: ServiceContext,
}

impl GatewayApi {
    /// Returns the gateway's services.
    pub fn new(ctx: ServiceContext) -> Self {
        Self { ctx }
    }
}

#[tonic::async_trait]
impl Authorization for GatewayApi {}

#[tonic::async_trait]
impl Identity for GatewayApi {}

#[tonic::async_trait]
impl Accounts for GatewayApi {}

#[tonic::async_trait]
impl Delegation for GatewayApi {}
