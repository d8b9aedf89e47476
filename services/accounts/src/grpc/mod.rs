//! tonic handlers of `ccp.accounts.v1.Accounts` and `AccountFacts`: each
//! hands its request to the use case in [`crate::app`] and maps the error
//! onto a `Status`.

use ccp_platform::auth::caller;
use ccp_platform::error::Error;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::account_facts_server::AccountFacts;
use ccp_proto::accounts::v1::accounts_server::Accounts;
use tonic::{Request, Response, Status};

use crate::app::Core;

mod limits;

/// The public `Accounts` service.
#[derive(Debug, Clone)]
pub struct AccountsApi {
    core: Core,
}

impl AccountsApi {
    /// Returns the service over the shared state.
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

/// The internal `AccountFacts` service.
#[derive(Debug, Clone)]
pub struct AccountFactsApi {
    core: Core,
}

impl AccountFactsApi {
    /// Returns the service over the shared state.
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

type Rsp<T> = Result<Response<T>, Status>;

fn done<T>(r: Result<T, Error>) -> Rsp<T> {
    r.map(Response::new).map_err(Status::from)
}

macro_rules! with_caller {
    ($self:ident, $request:ident, $method:ident) => {{
        let who = caller(&$request)?.clone();
        limits::check($request.get_ref())?;
        done($self.core.$method(&who, $request.into_inner()).await)
    }};
}

macro_rules! plain {
    ($self:ident, $request:ident, $method:ident) => {{
        limits::check($request.get_ref())?;
        done($self.core.$method($request.into_inner()).await)
    }};
}

#[tonic::async_trait]
impl Accounts for AccountsApi {
    async fn get_terms_and_conditions(
        &self,
        request: Request<pb::GetTermsAndConditionsRequest>,
    ) -> Rsp<pb::TermsAndConditions> {
        let _ = request;
        done(Ok(self.core.terms()))
    }

    async fn get_registration_challenge(
        &self,
        request: Request<pb::GetRegistrationChallengeRequest>,
    ) -> Rsp<pb::RegistrationChallenge> {
        plain!(self, request, get_registration_challenge)
    }

    async fn register_business(
        &self,
        request: Request<pb::RegisterBusinessRequest>,
    ) -> Rsp<pb::RegisterBusinessResponse> {
        with_caller!(self, request, register_business)
    }

    async fn get_business(&self, request: Request<pb::GetBusinessRequest>) -> Rsp<pb::Business> {
        plain!(self, request, get_business)
    }

    async fn list_program_accounts(
        &self,
        request: Request<pb::ListProgramAccountsRequest>,
    ) -> Rsp<pb::ListProgramAccountsResponse> {
        with_caller!(self, request, list_program_accounts)
    }

    async fn list_my_businesses(
        &self,
        request: Request<pb::ListMyBusinessesRequest>,
    ) -> Rsp<pb::ListMyBusinessesResponse> {
        with_caller!(self, request, list_my_businesses)
    }

    async fn request_employee_access(
        &self,
        request: Request<pb::RequestEmployeeAccessRequest>,
    ) -> Rsp<pb::RequestEmployeeAccessResponse> {
        with_caller!(self, request, request_employee_access)
    }

    async fn withdraw_employee_request(
        &self,
        request: Request<pb::WithdrawEmployeeRequestRequest>,
    ) -> Rsp<pb::WithdrawEmployeeRequestResponse> {
        with_caller!(self, request, withdraw_employee_request)
    }

    async fn list_employee_requests(
        &self,
        request: Request<pb::ListEmployeeRequestsRequest>,
    ) -> Rsp<pb::ListEmployeeRequestsResponse> {
        with_caller!(self, request, list_employee_requests)
    }

    async fn list_my_employee_requests(
        &self,
        request: Request<pb::ListMyEmployeeRequestsRequest>,
    ) -> Rsp<pb::ListMyEmployeeRequestsResponse> {
        with_caller!(self, request, list_my_employee_requests)
    }

    async fn approve_employee_request(
        &self,
        request: Request<pb::ApproveEmployeeRequestRequest>,
    ) -> Rsp<pb::ApproveEmployeeRequestResponse> {
        with_caller!(self, request, approve_employee_request)
    }

    async fn reject_employee_request(
        &self,
        request: Request<pb::RejectEmployeeRequestRequest>,
    ) -> Rsp<pb::RejectEmployeeRequestResponse> {
        with_caller!(self, request, reject_employee_request)
    }

    async fn list_employees(
        &self,
        request: Request<pb::ListEmployeesRequest>,
    ) -> Rsp<pb::ListEmployeesResponse> {
        with_caller!(self, request, list_employees)
    }

    async fn get_member(&self, request: Request<pb::GetMemberRequest>) -> Rsp<pb::Member> {
        plain!(self, request, get_member)
    }

    async fn set_member_roles(
        &self,
        request: Request<pb::SetMemberRolesRequest>,
    ) -> Rsp<pb::SetMemberRolesResponse> {
        with_caller!(self, request, set_member_roles)
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Rsp<pb::RemoveMemberResponse> {
        with_caller!(self, request, remove_member)
    }

    async fn create_employee_group(
        &self,
        request: Request<pb::CreateEmployeeGroupRequest>,
    ) -> Rsp<pb::CreateEmployeeGroupResponse> {
        with_caller!(self, request, create_employee_group)
    }

    async fn get_employee_group(
        &self,
        request: Request<pb::GetEmployeeGroupRequest>,
    ) -> Rsp<pb::EmployeeGroup> {
        plain!(self, request, get_employee_group)
    }

    async fn list_employee_groups(
        &self,
        request: Request<pb::ListEmployeeGroupsRequest>,
    ) -> Rsp<pb::ListEmployeeGroupsResponse> {
        with_caller!(self, request, list_employee_groups)
    }

    async fn update_employee_group(
        &self,
        request: Request<pb::UpdateEmployeeGroupRequest>,
    ) -> Rsp<pb::UpdateEmployeeGroupResponse> {
        with_caller!(self, request, update_employee_group)
    }

    async fn delete_employee_group(
        &self,
        request: Request<pb::DeleteEmployeeGroupRequest>,
    ) -> Rsp<pb::DeleteEmployeeGroupResponse> {
        with_caller!(self, request, delete_employee_group)
    }

    async fn add_employee_group_members(
        &self,
        request: Request<pb::AddEmployeeGroupMembersRequest>,
    ) -> Rsp<pb::AddEmployeeGroupMembersResponse> {
        with_caller!(self, request, add_employee_group_members)
    }

    async fn remove_employee_group_members(
        &self,
        request: Request<pb::RemoveEmployeeGroupMembersRequest>,
    ) -> Rsp<pb::RemoveEmployeeGroupMembersResponse> {
        with_caller!(self, request, remove_employee_group_members)
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Rsp<pb::ListAuditEventsResponse> {
        with_caller!(self, request, list_audit_events)
    }
}

#[tonic::async_trait]
impl AccountFacts for AccountFactsApi {
    async fn get_role_facts(
        &self,
        request: Request<pb::GetRoleFactsRequest>,
    ) -> Rsp<pb::RoleFacts> {
        plain!(self, request, get_role_facts)
    }

    async fn get_business_facts(
        &self,
        request: Request<pb::GetBusinessFactsRequest>,
    ) -> Rsp<pb::BusinessFacts> {
        plain!(self, request, get_business_facts)
    }

    async fn batch_get_business_facts(
        &self,
        request: Request<pb::BatchGetBusinessFactsRequest>,
    ) -> Rsp<pb::BatchGetBusinessFactsResponse> {
        plain!(self, request, batch_get_business_facts)
    }

    async fn get_employee_group_facts(
        &self,
        request: Request<pb::GetEmployeeGroupFactsRequest>,
    ) -> Rsp<pb::EmployeeGroupFacts> {
        plain!(self, request, get_employee_group_facts)
    }

    async fn import_registry(
        &self,
        request: Request<pb::ImportRegistryRequest>,
    ) -> Rsp<pb::ImportRegistryResponse> {
        let subject = request
            .extensions()
            .get::<ccp_platform::auth::InternalClaims>()
            .map_or_else(|| "internal".to_owned(), |c| c.sub.clone());
        done(
            self.core
                .import_registry(&subject, request.into_inner())
                .await,
        )
    }
}
