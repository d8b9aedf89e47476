//! Reading every page of a list RPC: each list request names its response
//! and the field its items come in, once, in the table below.

use ccp_proto::common::v1::AuditEvent;
use ccp_proto::{
    accounts::v1 as acc, delegation::v1 as del, gateway::v1 as gw, identity::v1 as id,
};

/// The page size asked for when a request names none.
const PAGE_SIZE: i32 = 100;

/// A list request read page by page, and the response it pages through.
pub trait Paged: Clone {
    /// The list response.
    type Response;
    /// One item of a page.
    type Item;
    /// Returns this request for the page at `token` (100 items unless it names a size).
    fn at(&self, token: String) -> Self;
    /// Returns this request asking for `size` items per page.
    fn sized(self, size: i32) -> Self;
    /// Returns a response's items and the next page's token (empty after the last page).
    fn split(response: Self::Response) -> (Vec<Self::Item>, String);
}

macro_rules! paged {
    ($($request:ty => $response:ty { $field:ident: $item:ty }),* $(,)?) => {$(
        impl Paged for $request {
            type Response = $response;
            type Item = $item;
            fn at(&self, token: String) -> Self {
                let mut page = self.clone();
                if page.page_size == 0 {
                    page.page_size = PAGE_SIZE;
                }
                page.page_token = token;
                page
            }
            fn sized(self, size: i32) -> Self {
                Self { page_size: size, ..self }
            }
            fn split(response: $response) -> (Vec<$item>, String) {
                (response.$field, response.next_page_token)
            }
        }
    )*};
}

paged! {
    acc::ListProgramAccountsRequest => acc::ListProgramAccountsResponse { program_accounts: acc::ProgramAccount },
    acc::ListMyBusinessesRequest => acc::ListMyBusinessesResponse { businesses: acc::MyBusiness },
    acc::ListMyEmployeeRequestsRequest => acc::ListMyEmployeeRequestsResponse { requests: acc::EmployeeRequest },
    acc::ListEmployeeRequestsRequest => acc::ListEmployeeRequestsResponse { requests: acc::EmployeeRequest },
    acc::ListEmployeesRequest => acc::ListEmployeesResponse { members: acc::Member },
    acc::ListEmployeeGroupsRequest => acc::ListEmployeeGroupsResponse { groups: acc::EmployeeGroup },
    acc::ListAuditEventsRequest => acc::ListAuditEventsResponse { events: AuditEvent },
    del::ListReceivedRequestsRequest => del::ListReceivedRequestsResponse { requests: del::RelationshipRequest },
    del::ListSentRequestsRequest => del::ListSentRequestsResponse { requests: del::RelationshipRequest },
    del::ListRelationshipsRequest => del::ListRelationshipsResponse { relationships: del::Relationship },
    del::ListClientGroupsRequest => del::ListClientGroupsResponse { groups: del::ClientGroup },
    del::ListAssignmentsRequest => del::ListAssignmentsResponse { assignments: del::Assignment },
    del::ListAuditEventsRequest => del::ListAuditEventsResponse { events: AuditEvent },
    id::ListMachineCredentialsRequest => id::ListMachineCredentialsResponse { credentials: id::MachineCredential },
    id::ListAuditEventsRequest => id::ListAuditEventsResponse { events: AuditEvent },
    gw::ListAccessibleRequest => gw::ListAccessibleResponse { resources: gw::AccessibleResource },
}
