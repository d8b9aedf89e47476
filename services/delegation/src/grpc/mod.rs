//! tonic handlers of `ccp.delegation.v1.Delegation` and `RelationshipFacts`:
//! the caller's principal in, errors out as `Status`. The use cases are
//! [`Core`] methods in `app`, one file per area.

use ccp_platform::auth::Caller;
use ccp_proto::delegation::v1 as pb;
use ccp_proto::delegation::v1::delegation_server::Delegation;
use ccp_proto::delegation::v1::relationship_facts_server::RelationshipFacts;
use tonic::{Request, Response, Status};

use crate::app::Core;
use crate::app::client_groups::GroupClientsChange;

mod limits;

/// Returns the caller's principal text.
fn principal_of<T>(request: &Request<T>) -> Result<String, Status> {
    let caller: &Caller = ccp_platform::auth::caller(request)?;
    Ok(caller.principal.to_string())
}

/// The public `Delegation` service.
#[derive(Debug, Clone)]
pub struct DelegationApi {
    core: Core,
}

impl DelegationApi {
    /// Returns the service over `core`.
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Delegation for DelegationApi {
    async fn send_relationship_request(
        &self,
        request: Request<pb::SendRelationshipRequestRequest>,
    ) -> R<pb::SendRelationshipRequestResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .send_request(principal, request.into_inner())
                .await?,
        ))
    }
    async fn withdraw_relationship_request(
        &self,
        request: Request<pb::WithdrawRelationshipRequestRequest>,
    ) -> R<pb::WithdrawRelationshipRequestResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .withdraw_request(principal, request.into_inner())
                .await?,
        ))
    }
    async fn list_received_requests(
        &self,
        request: Request<pb::ListReceivedRequestsRequest>,
    ) -> R<pb::ListReceivedRequestsResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .list_received(&principal, request.into_inner())
                .await?,
        ))
    }
    async fn list_sent_requests(
        &self,
        request: Request<pb::ListSentRequestsRequest>,
    ) -> R<pb::ListSentRequestsResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .list_sent(&principal, request.into_inner())
                .await?,
        ))
    }
    async fn approve_relationship_request(
        &self,
        request: Request<pb::ApproveRelationshipRequestRequest>,
    ) -> R<pb::ApproveRelationshipRequestResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .approve_request(principal, request.into_inner())
                .await?,
        ))
    }
    async fn reject_relationship_request(
        &self,
        request: Request<pb::RejectRelationshipRequestRequest>,
    ) -> R<pb::RejectRelationshipRequestResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .reject_request(principal, request.into_inner())
                .await?,
        ))
    }
    async fn get_relationship(
        &self,
        request: Request<pb::GetRelationshipRequest>,
    ) -> R<pb::Relationship> {
        limits::check(request.get_ref())?;
        principal_of(&request)?;
        Ok(Response::new(
            self.core.get_relationship(request.into_inner()).await?,
        ))
    }
    async fn list_relationships(
        &self,
        request: Request<pb::ListRelationshipsRequest>,
    ) -> R<pb::ListRelationshipsResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .list_relationships(&principal, request.into_inner())
                .await?,
        ))
    }
    async fn update_relationship(
        &self,
        request: Request<pb::UpdateRelationshipRequest>,
    ) -> R<pb::UpdateRelationshipResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .update_relationship(principal, request.into_inner())
                .await?,
        ))
    }
    async fn end_relationship(
        &self,
        request: Request<pb::EndRelationshipRequest>,
    ) -> R<pb::EndRelationshipResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .end_relationship(principal, request.into_inner())
                .await?,
        ))
    }
    async fn create_client_group(
        &self,
        request: Request<pb::CreateClientGroupRequest>,
    ) -> R<pb::CreateClientGroupResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .create_group(principal, request.into_inner())
                .await?,
        ))
    }
    async fn get_client_group(
        &self,
        request: Request<pb::GetClientGroupRequest>,
    ) -> R<pb::ClientGroup> {
        limits::check(request.get_ref())?;
        principal_of(&request)?;
        Ok(Response::new(
            self.core.get_group(request.into_inner()).await?,
        ))
    }
    async fn list_client_groups(
        &self,
        request: Request<pb::ListClientGroupsRequest>,
    ) -> R<pb::ListClientGroupsResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .list_groups(&principal, request.into_inner())
                .await?,
        ))
    }
    async fn update_client_group(
        &self,
        request: Request<pb::UpdateClientGroupRequest>,
    ) -> R<pb::UpdateClientGroupResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .update_group(principal, request.into_inner())
                .await?,
        ))
    }
    async fn delete_client_group(
        &self,
        request: Request<pb::DeleteClientGroupRequest>,
    ) -> R<pb::DeleteClientGroupResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .delete_group(principal, request.into_inner())
                .await?,
        ))
    }
    async fn assign_to_client(
        &self,
        request: Request<pb::AssignToClientRequest>,
    ) -> R<pb::AssignToClientResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core.assign(principal, request.into_inner()).await?,
        ))
    }
    async fn unassign(&self, request: Request<pb::UnassignRequest>) -> R<pb::UnassignResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core.unassign(principal, request.into_inner()).await?,
        ))
    }
    async fn list_assignments(
        &self,
        request: Request<pb::ListAssignmentsRequest>,
    ) -> R<pb::ListAssignmentsResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .list_assignments(&principal, request.into_inner())
                .await?,
        ))
    }
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> R<pb::ListAuditEventsResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        Ok(Response::new(
            self.core
                .list_audit_events(&principal, request.into_inner())
                .await?,
        ))
    }

    async fn add_client_group_clients(
        &self,
        request: Request<pb::AddClientGroupClientsRequest>,
    ) -> R<pb::AddClientGroupClientsResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        let req = request.into_inner();
        let (group, revision) = self
            .core
            .change_group_clients(
                principal,
                GroupClientsChange::Add,
                &req.request_id,
                req.group,
                req.clients,
            )
            .await?;
        Ok(Response::new(pb::AddClientGroupClientsResponse {
            group: Some(group),
            revision,
        }))
    }

    async fn remove_client_group_clients(
        &self,
        request: Request<pb::RemoveClientGroupClientsRequest>,
    ) -> R<pb::RemoveClientGroupClientsResponse> {
        limits::check(request.get_ref())?;
        let principal = principal_of(&request)?;
        let req = request.into_inner();
        let (group, revision) = self
            .core
            .change_group_clients(
                principal,
                GroupClientsChange::Remove,
                &req.request_id,
                req.group,
                req.clients,
            )
            .await?;
        Ok(Response::new(pb::RemoveClientGroupClientsResponse {
            group: Some(group),
            revision,
        }))
    }
}

/// The internal `RelationshipFacts` service.
#[derive(Debug, Clone)]
pub struct RelationshipFactsApi {
    core: Core,
}

impl RelationshipFactsApi {
    /// Returns the service over `core`.
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl RelationshipFacts for RelationshipFactsApi {
    async fn get_pair_facts(&self, request: Request<pb::GetPairFactsRequest>) -> R<pb::PairFacts> {
        Ok(Response::new(
            self.core.pair_facts(request.into_inner()).await?,
        ))
    }

    async fn get_assignment_facts(
        &self,
        request: Request<pb::GetAssignmentFactsRequest>,
    ) -> R<pb::AssignmentFacts> {
        Ok(Response::new(
            self.core.assignment_facts(request.into_inner()).await?,
        ))
    }

    async fn list_clients(
        &self,
        request: Request<pb::ListClientsRequest>,
    ) -> R<pb::ListClientsResponse> {
        // The internal caller's subject binds its page tokens (R-IN-1).
        let subject = internal_subject(&request);
        Ok(Response::new(
            self.core
                .list_clients(&subject, request.into_inner())
                .await?,
        ))
    }

    async fn list_assigned_clients(
        &self,
        request: Request<pb::ListAssignedClientsRequest>,
    ) -> R<pb::ListAssignedClientsResponse> {
        // The internal caller's subject binds its page tokens (R-IN-1).
        let subject = internal_subject(&request);
        Ok(Response::new(
            self.core
                .list_assigned_clients(&subject, request.into_inner())
                .await?,
        ))
    }

    async fn get_request_facts(
        &self,
        request: Request<pb::GetRequestFactsRequest>,
    ) -> R<pb::RequestFacts> {
        Ok(Response::new(
            self.core.request_facts(request.into_inner()).await?,
        ))
    }
}

/// The subject of the internal token a facts call came with.
fn internal_subject<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<ccp_platform::auth::InternalClaims>()
        .map_or_else(|| "internal".to_owned(), |c| c.sub.clone())
}
