//! Hostile input through the gateway (R-IN-1): a corpus of several hundred
//! requests generated from a table of (RPC, mutation) pairs — oversized
//! repeated fields, long strings, NUL and control characters in free text,
//! BNs of unicode digits, absurd timestamps and page sizes, unknown enum
//! values, malformed page tokens and resource names, malformed protobuf —
//! run against the real services on SQLite and on PostgreSQL. None may
//! answer INTERNAL or UNKNOWN, the suite must still serve afterwards, and
//! every input must be classified (its status code) the same on both
//! backends. Then a bystander test: normal callers' calls all succeed while
//! one caller sends the worst of those requests in a bounded loop.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::{Action, ProgramRole, Role, RoleGrants};
use ccp_proto::delegation::v1 as del;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::gateway::v1 as gw;
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use futures::future::BoxFuture;
use prost::Message as _;
use prost::bytes::{Buf as _, BufMut as _};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::harness::{Suite, memory_context};
use crate::world::{ABC, MAPLE, Who, person, register, rid, rm};

type Reply = BoxFuture<'static, Result<(), tonic::Status>>;
/// One call, ready to be sent on a channel with a bearer token.
type Call = Box<dyn FnOnce(Channel, Option<String>) -> Reply + Send>;

/// The largest message the clients of these tests send or accept.
const WIRE_LIMIT: usize = 16 * 1024 * 1024;

fn request<T>(token: Option<String>, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(token) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    r.set_timeout(Duration::from_secs(20));
    r
}

macro_rules! call {
    ($client:ident, $method:ident, $message:expr) => {{
        let message = $message;
        Box::new(move |channel: Channel, token: Option<String>| -> Reply {
            Box::pin(async move {
                $client::new(channel)
                    .max_encoding_message_size(WIRE_LIMIT)
                    .max_decoding_message_size(WIRE_LIMIT)
                    .$method(request(token, message))
                    .await
                    .map(|_| ())
            })
        }) as Call
    }};
}

/// One hostile input: what it is, and the call that sends it.
struct Case {
    rpc: &'static str,
    mutation: String,
    call: Call,
    expect: Expect,
}

/// What a case must answer, beyond never INTERNAL or UNKNOWN.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Any other code (the same on both backends).
    Any,
    /// INVALID_ARGUMENT naming this field as over its limit.
    OverLimit(&'static str),
    /// RESOURCE_EXHAUSTED: the message is over the 4 MiB size limit.
    TooLarge,
}

/// What the corpus's requests name: a registered business, one that is not,
/// and ids of things that do not exist.
#[derive(Clone)]
struct Base {
    bn: String,
    other: String,
    missing: String,
    principal: String,
}

impl Base {
    fn business(&self) -> String {
        format!("businesses/{}", self.bn)
    }
    fn child(&self, collection: &str) -> String {
        format!("businesses/{}/{collection}/{}", self.bn, self.missing)
    }
    fn rm1(&self) -> String {
        rm(&self.bn, 1)
    }
    fn expire(&self) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: 1_798_761_600, // 2027-01-01
            nanos: 0,
        })
    }
}

/// The hostile strings put in every string field of the table.
fn hostile_strings() -> Vec<(&'static str, String)> {
    vec![
        ("nul", "a\u{0}b".to_owned()),
        ("controls", "\u{1b}[2J\u{7}\u{8}\r\n\u{85}".to_owned()),
        ("100k chars", "x".repeat(100_000)),
        ("arabic-indic digits", "١٢٣٤٥٦٧٨٢".to_owned()),
        (
            "fullwidth bn15",
            "１２３４５６７８２ＲＭ０００１".to_owned(),
        ),
        ("bad luhn", "123456789".to_owned()),
        (
            "path traversal",
            "businesses/123456782/../../programAccounts/%2e%2e/RM0001".to_owned(),
        ),
        (
            "unicode and sql",
            "\u{202e}\u{fffd}\u{feff}🦀' OR 1=1; -- é\u{301}".to_owned(),
        ),
    ]
}

type Make = fn(&Base, String) -> Call;
type MakeTime = fn(&Base, prost_types::Timestamp) -> Call;
type MakeNumber = fn(&Base, i32) -> Call;

fn t(rpc: &'static str, field: &'static str, make: Make) -> (&'static str, &'static str, Make) {
    (rpc, field, make)
}

fn tt(target: &'static str, make: MakeTime) -> (&'static str, MakeTime) {
    (target, make)
}

fn nt(target: &'static str, make: MakeNumber) -> (&'static str, MakeNumber) {
    (target, make)
}

/// Every string field of the public API worth aiming at: (RPC, field, the
/// call with `s` in that field).
fn string_targets() -> Vec<(&'static str, &'static str, Make)> {
    vec![
        // identity
        t("SignIn", "id_token", |_, s| {
            call!(IdentityClient, sign_in, idn::SignInRequest { id_token: s })
        }),
        t("RefreshSession", "refresh_token", |_, s| {
            call!(
                IdentityClient,
                refresh_session,
                idn::RefreshSessionRequest { refresh_token: s }
            )
        }),
        t("CreateProfile", "profile.legal_name", |_, s| {
            call!(
                IdentityClient,
                create_profile,
                idn::CreateProfileRequest {
                    request_id: rid(),
                    profile: Some(idn::Profile {
                        legal_name: s,
                        email: "a@example.ca".into(),
                        ..Default::default()
                    }),
                }
            )
        }),
        t("UpdateMyProfile", "profile.email", |_, s| {
            call!(
                IdentityClient,
                update_my_profile,
                idn::UpdateMyProfileRequest {
                    request_id: rid(),
                    profile: Some(idn::Profile {
                        email: s,
                        etag: "W/\"1\"".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["email".into()]
                    }),
                }
            )
        }),
        t("UpdateMyProfile", "profile.phone", |_, s| {
            call!(
                IdentityClient,
                update_my_profile,
                idn::UpdateMyProfileRequest {
                    request_id: rid(),
                    profile: Some(idn::Profile {
                        phone: s,
                        etag: "W/\"1\"".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["phone".into()]
                    }),
                }
            )
        }),
        t("UpdateMyProfile", "update_mask.paths[0]", |_, s| {
            call!(
                IdentityClient,
                update_my_profile,
                idn::UpdateMyProfileRequest {
                    request_id: rid(),
                    profile: Some(idn::Profile {
                        etag: "W/\"1\"".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths: vec![s] }),
                }
            )
        }),
        t("CreateMachineCredential", "display_name", |b, s| {
            call!(
                IdentityClient,
                create_machine_credential,
                idn::CreateMachineCredentialRequest {
                    request_id: rid(),
                    parent: b.business(),
                    display_name: s,
                    expire_time: b.expire(),
                }
            )
        }),
        t("CreateMachineCredential", "parent", |b, s| {
            call!(
                IdentityClient,
                create_machine_credential,
                idn::CreateMachineCredentialRequest {
                    request_id: rid(),
                    parent: s,
                    display_name: "system".into(),
                    expire_time: b.expire(),
                }
            )
        }),
        t("ListMachineCredentials", "page_token", |b, s| {
            call!(
                IdentityClient,
                list_machine_credentials,
                idn::ListMachineCredentialsRequest {
                    parent: b.business(),
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        t("RevokeMachineCredential", "name", |_, s| {
            call!(
                IdentityClient,
                revoke_machine_credential,
                idn::RevokeMachineCredentialRequest {
                    request_id: rid(),
                    name: s,
                    reason: "gone".into(),
                }
            )
        }),
        t("RevokeMachineCredential", "reason", |b, s| {
            call!(
                IdentityClient,
                revoke_machine_credential,
                idn::RevokeMachineCredentialRequest {
                    request_id: rid(),
                    name: b.child("machineCredentials"),
                    reason: s,
                }
            )
        }),
        t("IssueMachineToken", "client_id", |_, s| {
            call!(
                IdentityClient,
                issue_machine_token,
                idn::IssueMachineTokenRequest {
                    client_id: s,
                    client_secret: "secret".into(),
                }
            )
        }),
        t("IssueMachineToken", "client_secret", |b, s| {
            call!(
                IdentityClient,
                issue_machine_token,
                idn::IssueMachineTokenRequest {
                    client_id: b.missing.clone(),
                    client_secret: s,
                }
            )
        }),
        t("identity.ListAuditEvents", "page_token", |b, s| {
            call!(
                IdentityClient,
                list_audit_events,
                idn::ListAuditEventsRequest {
                    parent: b.business(),
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        // accounts
        t("GetRegistrationChallenge", "program_account", |_, s| {
            call!(
                AccountsClient,
                get_registration_challenge,
                acc::GetRegistrationChallengeRequest { program_account: s }
            )
        }),
        t("RegisterBusiness", "request_id", |b, s| {
            register_with(b, |r| r.request_id = s)
        }),
        t("RegisterBusiness", "program_account", |b, s| {
            register_with(b, |r| r.program_account = s)
        }),
        t("RegisterBusiness", "legal_name", |b, s| {
            register_with(b, |r| r.legal_name = s)
        }),
        t("RegisterBusiness", "address.line1", |b, s| {
            register_with(b, |r| {
                r.address.get_or_insert_with(Default::default).line1 = s
            })
        }),
        t("RegisterBusiness", "address.postal_code", |b, s| {
            register_with(b, |r| {
                r.address.get_or_insert_with(Default::default).postal_code = s
            })
        }),
        t("RegisterBusiness", "answers[0].answer", |b, s| {
            register_with(b, |r| {
                r.answers = vec![acc::KnownFactAnswer {
                    question_id: "q1".into(),
                    answer: s,
                }]
            })
        }),
        t("RegisterBusiness", "accepted_terms_version", |b, s| {
            register_with(b, |r| r.accepted_terms_version = s)
        }),
        t("GetBusiness", "name", |_, s| {
            call!(
                AccountsClient,
                get_business,
                acc::GetBusinessRequest { name: s }
            )
        }),
        t("ListProgramAccounts", "parent", |_, s| {
            call!(
                AccountsClient,
                list_program_accounts,
                acc::ListProgramAccountsRequest {
                    parent: s,
                    ..Default::default()
                }
            )
        }),
        t("ListProgramAccounts", "page_token", |b, s| {
            call!(
                AccountsClient,
                list_program_accounts,
                acc::ListProgramAccountsRequest {
                    parent: b.business(),
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        t("ListMyBusinesses", "page_token", |_, s| {
            call!(
                AccountsClient,
                list_my_businesses,
                acc::ListMyBusinessesRequest {
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        t("RequestEmployeeAccess", "parent", |_, s| {
            call!(
                AccountsClient,
                request_employee_access,
                acc::RequestEmployeeAccessRequest {
                    request_id: rid(),
                    parent: s,
                    note: "I work here".into(),
                }
            )
        }),
        t("RequestEmployeeAccess", "note", |b, s| {
            call!(
                AccountsClient,
                request_employee_access,
                acc::RequestEmployeeAccessRequest {
                    request_id: rid(),
                    parent: format!("businesses/{}", b.other),
                    note: s,
                }
            )
        }),
        t("WithdrawEmployeeRequest", "name", |_, s| {
            call!(
                AccountsClient,
                withdraw_employee_request,
                acc::WithdrawEmployeeRequestRequest {
                    request_id: rid(),
                    name: s
                }
            )
        }),
        t("ListEmployeeRequests", "page_token", |b, s| {
            call!(
                AccountsClient,
                list_employee_requests,
                acc::ListEmployeeRequestsRequest {
                    parent: b.business(),
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        t("ListMyEmployeeRequests", "page_token", |_, s| {
            call!(
                AccountsClient,
                list_my_employee_requests,
                acc::ListMyEmployeeRequestsRequest {
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        t("ApproveEmployeeRequest", "name", |b, s| {
            call!(
                AccountsClient,
                approve_employee_request,
                acc::ApproveEmployeeRequestRequest {
                    request_id: rid(),
                    name: s,
                    grants: Some(role_grants(&b.rm1(), Role::Reader as i32, 1)),
                }
            )
        }),
        t(
            "ApproveEmployeeRequest",
            "grants.program_roles[0].program_account",
            |b, s| {
                call!(
                    AccountsClient,
                    approve_employee_request,
                    acc::ApproveEmployeeRequestRequest {
                        request_id: rid(),
                        name: b.child("employeeRequests"),
                        grants: Some(role_grants(&s, Role::Reader as i32, 1)),
                    }
                )
            },
        ),
        t("RejectEmployeeRequest", "reason", |b, s| {
            call!(
                AccountsClient,
                reject_employee_request,
                acc::RejectEmployeeRequestRequest {
                    request_id: rid(),
                    name: b.child("employeeRequests"),
                    reason: s,
                }
            )
        }),
        t("ListEmployees", "program_account", |b, s| {
            call!(
                AccountsClient,
                list_employees,
                acc::ListEmployeesRequest {
                    parent: b.business(),
                    program_account: s,
                    ..Default::default()
                }
            )
        }),
        t("GetMember", "name", |_, s| {
            call!(
                AccountsClient,
                get_member,
                acc::GetMemberRequest { name: s }
            )
        }),
        t("SetMemberRoles", "name", |b, s| {
            call!(
                AccountsClient,
                set_member_roles,
                acc::SetMemberRolesRequest {
                    request_id: rid(),
                    name: s,
                    grants: Some(role_grants(&b.rm1(), Role::Reader as i32, 1)),
                    etag: String::new(),
                }
            )
        }),
        t("SetMemberRoles", "etag", |b, s| {
            call!(
                AccountsClient,
                set_member_roles,
                acc::SetMemberRolesRequest {
                    request_id: rid(),
                    name: format!("{}/members/{}", b.business(), b.principal),
                    grants: Some(role_grants(&b.rm1(), Role::Reader as i32, 1)),
                    etag: s,
                }
            )
        }),
        t("RemoveMember", "name", |_, s| {
            call!(
                AccountsClient,
                remove_member,
                acc::RemoveMemberRequest {
                    request_id: rid(),
                    name: s,
                    etag: String::new()
                }
            )
        }),
        t("CreateEmployeeGroup", "group.display_name", |b, s| {
            call!(
                AccountsClient,
                create_employee_group,
                acc::CreateEmployeeGroupRequest {
                    request_id: rid(),
                    parent: b.business(),
                    group: Some(acc::EmployeeGroup {
                        display_name: s,
                        roles: role_grants(&b.rm1(), Role::Reader as i32, 1).program_roles,
                        ..Default::default()
                    }),
                }
            )
        }),
        t("CreateEmployeeGroup", "group.members[0]", |b, s| {
            call!(
                AccountsClient,
                create_employee_group,
                acc::CreateEmployeeGroupRequest {
                    request_id: rid(),
                    parent: b.business(),
                    group: Some(acc::EmployeeGroup {
                        display_name: "Group".into(),
                        roles: role_grants(&b.rm1(), Role::Reader as i32, 1).program_roles,
                        members: vec![s],
                        ..Default::default()
                    }),
                }
            )
        }),
        t("UpdateEmployeeGroup", "group.name", |_, s| {
            call!(
                AccountsClient,
                update_employee_group,
                acc::UpdateEmployeeGroupRequest {
                    request_id: rid(),
                    group: Some(acc::EmployeeGroup {
                        name: s,
                        display_name: "G".into(),
                        etag: "e".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".into()]
                    }),
                }
            )
        }),
        t("DeleteEmployeeGroup", "etag", |b, s| {
            call!(
                AccountsClient,
                delete_employee_group,
                acc::DeleteEmployeeGroupRequest {
                    request_id: rid(),
                    name: b.child("employeeGroups"),
                    etag: s,
                }
            )
        }),
        t("AddEmployeeGroupMembers", "principals[0]", |b, s| {
            call!(
                AccountsClient,
                add_employee_group_members,
                acc::AddEmployeeGroupMembersRequest {
                    request_id: rid(),
                    group: b.child("employeeGroups"),
                    principals: vec![s],
                }
            )
        }),
        t("RemoveEmployeeGroupMembers", "group", |b, s| {
            call!(
                AccountsClient,
                remove_employee_group_members,
                acc::RemoveEmployeeGroupMembersRequest {
                    request_id: rid(),
                    group: s,
                    principals: vec![b.principal.clone()],
                }
            )
        }),
        t("accounts.ListAuditEvents", "page_token", |b, s| {
            call!(
                AccountsClient,
                list_audit_events,
                acc::ListAuditEventsRequest {
                    parent: b.business(),
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        // delegation
        t("SendRelationshipRequest", "parent", |b, s| {
            call!(
                DelegationClient,
                send_relationship_request,
                del::SendRelationshipRequestRequest {
                    request_id: rid(),
                    parent: s,
                    client: b.other.clone(),
                    program_accounts: vec![],
                    note: "please".into(),
                }
            )
        }),
        t("SendRelationshipRequest", "client", |b, s| {
            call!(
                DelegationClient,
                send_relationship_request,
                del::SendRelationshipRequestRequest {
                    request_id: rid(),
                    parent: b.business(),
                    client: s,
                    program_accounts: vec![],
                    note: "please".into(),
                }
            )
        }),
        t("SendRelationshipRequest", "note", |b, s| {
            call!(
                DelegationClient,
                send_relationship_request,
                del::SendRelationshipRequestRequest {
                    request_id: rid(),
                    parent: b.business(),
                    client: b.other.clone(),
                    program_accounts: vec![],
                    note: s,
                }
            )
        }),
        t("SendRelationshipRequest", "program_accounts[0]", |b, s| {
            call!(
                DelegationClient,
                send_relationship_request,
                del::SendRelationshipRequestRequest {
                    request_id: rid(),
                    parent: b.business(),
                    client: b.other.clone(),
                    program_accounts: vec![s],
                    note: "please".into(),
                }
            )
        }),
        t("WithdrawRelationshipRequest", "name", |_, s| {
            call!(
                DelegationClient,
                withdraw_relationship_request,
                del::WithdrawRelationshipRequestRequest {
                    request_id: rid(),
                    name: s
                }
            )
        }),
        t("ListReceivedRequests", "page_token", |b, s| {
            call!(
                DelegationClient,
                list_received_requests,
                del::ListReceivedRequestsRequest {
                    parent: b.business(),
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        t("ListSentRequests", "parent", |_, s| {
            call!(
                DelegationClient,
                list_sent_requests,
                del::ListSentRequestsRequest {
                    parent: s,
                    ..Default::default()
                }
            )
        }),
        t("ApproveRelationshipRequest", "name", |b, s| {
            call!(
                DelegationClient,
                approve_relationship_request,
                del::ApproveRelationshipRequestRequest {
                    request_id: rid(),
                    name: s,
                    level: del::RelationshipLevel::Business as i32,
                    expire_time: b.expire(),
                    ..Default::default()
                }
            )
        }),
        t("RejectRelationshipRequest", "reason", |b, s| {
            call!(
                DelegationClient,
                reject_relationship_request,
                del::RejectRelationshipRequestRequest {
                    request_id: rid(),
                    name: b.child("receivedRequests"),
                    reason: s,
                }
            )
        }),
        t("GetRelationship", "name", |_, s| {
            call!(
                DelegationClient,
                get_relationship,
                del::GetRelationshipRequest { name: s }
            )
        }),
        t("ListRelationships", "page_token", |b, s| {
            call!(
                DelegationClient,
                list_relationships,
                del::ListRelationshipsRequest {
                    parent: b.business(),
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        t("UpdateRelationship", "relationship.name", |b, s| {
            call!(
                DelegationClient,
                update_relationship,
                del::UpdateRelationshipRequest {
                    request_id: rid(),
                    relationship: Some(del::Relationship {
                        name: s,
                        expire_time: b.expire(),
                        etag: "e".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["expire_time".into()]
                    }),
                }
            )
        }),
        t("EndRelationship", "note", |b, s| {
            call!(
                DelegationClient,
                end_relationship,
                del::EndRelationshipRequest {
                    request_id: rid(),
                    name: b.child("relationships"),
                    note: s,
                }
            )
        }),
        t("CreateClientGroup", "group.display_name", |b, s| {
            call!(
                DelegationClient,
                create_client_group,
                del::CreateClientGroupRequest {
                    request_id: rid(),
                    parent: b.business(),
                    group: Some(del::ClientGroup {
                        display_name: s,
                        ..Default::default()
                    }),
                }
            )
        }),
        t("CreateClientGroup", "group.clients[0]", |b, s| {
            call!(
                DelegationClient,
                create_client_group,
                del::CreateClientGroupRequest {
                    request_id: rid(),
                    parent: b.business(),
                    group: Some(del::ClientGroup {
                        display_name: "Clients".into(),
                        clients: vec![s],
                        ..Default::default()
                    }),
                }
            )
        }),
        t("GetClientGroup", "name", |_, s| {
            call!(
                DelegationClient,
                get_client_group,
                del::GetClientGroupRequest { name: s }
            )
        }),
        t("UpdateClientGroup", "group.etag", |b, s| {
            call!(
                DelegationClient,
                update_client_group,
                del::UpdateClientGroupRequest {
                    request_id: rid(),
                    group: Some(del::ClientGroup {
                        name: b.child("clientGroups"),
                        display_name: "G".into(),
                        etag: s,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".into()]
                    }),
                }
            )
        }),
        t("DeleteClientGroup", "name", |_, s| {
            call!(
                DelegationClient,
                delete_client_group,
                del::DeleteClientGroupRequest {
                    request_id: rid(),
                    name: s,
                    etag: String::new()
                }
            )
        }),
        t("AddClientGroupClients", "clients[0]", |b, s| {
            call!(
                DelegationClient,
                add_client_group_clients,
                del::AddClientGroupClientsRequest {
                    request_id: rid(),
                    group: b.child("clientGroups"),
                    clients: vec![s],
                }
            )
        }),
        t("RemoveClientGroupClients", "group", |b, s| {
            call!(
                DelegationClient,
                remove_client_group_clients,
                del::RemoveClientGroupClientsRequest {
                    request_id: rid(),
                    group: s,
                    clients: vec![b.other.clone()],
                }
            )
        }),
        t("AssignToClient", "assignment.assignee", |b, s| {
            call!(
                DelegationClient,
                assign_to_client,
                del::AssignToClientRequest {
                    request_id: rid(),
                    parent: b.business(),
                    assignment: Some(del::Assignment {
                        assignee: s,
                        target: Some(del::assignment::Target::Client(b.other.clone())),
                        role: Role::Reader as i32,
                        ..Default::default()
                    }),
                }
            )
        }),
        t("AssignToClient", "assignment.client", |b, s| {
            call!(
                DelegationClient,
                assign_to_client,
                del::AssignToClientRequest {
                    request_id: rid(),
                    parent: b.business(),
                    assignment: Some(del::Assignment {
                        assignee: b.principal.clone(),
                        target: Some(del::assignment::Target::Client(s)),
                        role: Role::Reader as i32,
                        ..Default::default()
                    }),
                }
            )
        }),
        t("Unassign", "name", |_, s| {
            call!(
                DelegationClient,
                unassign,
                del::UnassignRequest {
                    request_id: rid(),
                    name: s
                }
            )
        }),
        t("ListAssignments", "assignee", |b, s| {
            call!(
                DelegationClient,
                list_assignments,
                del::ListAssignmentsRequest {
                    parent: b.business(),
                    assignee: s,
                    ..Default::default()
                }
            )
        }),
        t("delegation.ListAuditEvents", "page_token", |b, s| {
            call!(
                DelegationClient,
                list_audit_events,
                del::ListAuditEventsRequest {
                    parent: b.business(),
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
        // gateway
        t("Check", "item.resource", |_, s| {
            call!(
                AuthorizationClient,
                check,
                gw::CheckRequest {
                    item: Some(gw::CheckItem {
                        action: Action::View as i32,
                        resource: s,
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            )
        }),
        t("Check", "principal", |b, s| {
            call!(
                AuthorizationClient,
                check,
                gw::CheckRequest {
                    principal: s,
                    item: Some(gw::CheckItem {
                        action: Action::View as i32,
                        resource: b.business(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            )
        }),
        t("ListAccessible", "page_token", |_, s| {
            call!(
                AuthorizationClient,
                list_accessible,
                gw::ListAccessibleRequest {
                    action: Action::View as i32,
                    page_token: s,
                    ..Default::default()
                }
            )
        }),
    ]
}

fn role_grants(program: &str, role: i32, n: usize) -> RoleGrants {
    RoleGrants {
        business_manager: false,
        program_roles: vec![
            ProgramRole {
                program_account: program.to_owned(),
                role,
            };
            n
        ],
    }
}

fn register_with(b: &Base, change: impl FnOnce(&mut acc::RegisterBusinessRequest)) -> Call {
    let mut r = acc::RegisterBusinessRequest {
        request_id: rid(),
        program_account: rm(&b.other, 1),
        legal_name: "Maple Imports".into(),
        address: Some(ccp_proto::common::v1::Address {
            line1: "1 Main St".into(),
            city: "Ottawa".into(),
            province: "ON".into(),
            postal_code: "K1A 0B1".into(),
            country: "CA".into(),
            ..Default::default()
        }),
        answers: vec![acc::KnownFactAnswer {
            question_id: "q1".into(),
            answer: "1".into(),
        }],
        accepted_terms_version: ccp_accounts::config::DEFAULT_TERMS_VERSION.to_owned(),
    };
    change(&mut r);
    call!(AccountsClient, register_business, r)
}

/// Timestamps no caller should send.
fn absurd_times() -> Vec<(&'static str, prost_types::Timestamp)> {
    let t = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
    vec![
        ("year 0", t(-62_167_219_200, 0)),
        ("year 9999", t(253_402_300_799, 999_999_999)),
        ("year 10000", t(253_402_300_800, 0)),
        ("i64::MAX seconds", t(i64::MAX, 0)),
        ("i64::MIN seconds", t(i64::MIN, 0)),
        ("negative nanos", t(1_798_761_600, -1)),
        ("nanos over a second", t(1_798_761_600, 2_000_000_000)),
    ]
}

fn time_targets() -> Vec<(&'static str, MakeTime)> {
    vec![
        tt("CreateMachineCredential.expire_time", |b, t| {
            call!(
                IdentityClient,
                create_machine_credential,
                idn::CreateMachineCredentialRequest {
                    request_id: rid(),
                    parent: b.business(),
                    display_name: "system".into(),
                    expire_time: Some(t),
                }
            )
        }),
        tt("ApproveRelationshipRequest.expire_time", |b, t| {
            call!(
                DelegationClient,
                approve_relationship_request,
                del::ApproveRelationshipRequestRequest {
                    request_id: rid(),
                    name: b.child("receivedRequests"),
                    level: del::RelationshipLevel::Business as i32,
                    expire_time: Some(t),
                    ..Default::default()
                }
            )
        }),
        tt("UpdateRelationship.relationship.expire_time", |b, t| {
            call!(
                DelegationClient,
                update_relationship,
                del::UpdateRelationshipRequest {
                    request_id: rid(),
                    relationship: Some(del::Relationship {
                        name: b.child("relationships"),
                        expire_time: Some(t),
                        etag: "e".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["expire_time".into()]
                    }),
                }
            )
        }),
        tt("accounts.ListAuditEvents.start_time", |b, t| {
            call!(
                AccountsClient,
                list_audit_events,
                acc::ListAuditEventsRequest {
                    parent: b.business(),
                    start_time: Some(t),
                    ..Default::default()
                }
            )
        }),
        tt("delegation.ListAuditEvents.start_time", |b, t| {
            call!(
                DelegationClient,
                list_audit_events,
                del::ListAuditEventsRequest {
                    parent: b.business(),
                    start_time: Some(t),
                    ..Default::default()
                }
            )
        }),
        tt("identity.ListAuditEvents.start_time", |b, t| {
            call!(
                IdentityClient,
                list_audit_events,
                idn::ListAuditEventsRequest {
                    parent: b.business(),
                    start_time: Some(t),
                    ..Default::default()
                }
            )
        }),
    ]
}

fn page_targets() -> Vec<(&'static str, MakeNumber)> {
    vec![
        nt("ListProgramAccounts", |b, n| {
            call!(
                AccountsClient,
                list_program_accounts,
                acc::ListProgramAccountsRequest {
                    parent: b.business(),
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListMyBusinesses", |_, n| {
            call!(
                AccountsClient,
                list_my_businesses,
                acc::ListMyBusinessesRequest {
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListEmployees", |b, n| {
            call!(
                AccountsClient,
                list_employees,
                acc::ListEmployeesRequest {
                    parent: b.business(),
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListEmployeeGroups", |b, n| {
            call!(
                AccountsClient,
                list_employee_groups,
                acc::ListEmployeeGroupsRequest {
                    parent: b.business(),
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListRelationships", |b, n| {
            call!(
                DelegationClient,
                list_relationships,
                del::ListRelationshipsRequest {
                    parent: b.business(),
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListClientGroups", |b, n| {
            call!(
                DelegationClient,
                list_client_groups,
                del::ListClientGroupsRequest {
                    parent: b.business(),
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListAssignments", |b, n| {
            call!(
                DelegationClient,
                list_assignments,
                del::ListAssignmentsRequest {
                    parent: b.business(),
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListMachineCredentials", |b, n| {
            call!(
                IdentityClient,
                list_machine_credentials,
                idn::ListMachineCredentialsRequest {
                    parent: b.business(),
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListAccessible", |_, n| {
            call!(
                AuthorizationClient,
                list_accessible,
                gw::ListAccessibleRequest {
                    action: Action::View as i32,
                    page_size: n,
                    ..Default::default()
                }
            )
        }),
    ]
}

fn enum_targets() -> Vec<(&'static str, MakeNumber)> {
    vec![
        nt("ListEmployeeRequests.state", |b, n| {
            call!(
                AccountsClient,
                list_employee_requests,
                acc::ListEmployeeRequestsRequest {
                    parent: b.business(),
                    state: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListMyEmployeeRequests.state", |_, n| {
            call!(
                AccountsClient,
                list_my_employee_requests,
                acc::ListMyEmployeeRequestsRequest {
                    state: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListEmployees.role", |b, n| {
            call!(
                AccountsClient,
                list_employees,
                acc::ListEmployeesRequest {
                    parent: b.business(),
                    role: n,
                    ..Default::default()
                }
            )
        }),
        nt("SetMemberRoles.grants.program_roles[0].role", |b, n| {
            call!(
                AccountsClient,
                set_member_roles,
                acc::SetMemberRolesRequest {
                    request_id: rid(),
                    name: format!("{}/members/{}", b.business(), b.principal),
                    grants: Some(role_grants(&b.rm1(), n, 1)),
                    etag: "e".into(),
                }
            )
        }),
        nt("CreateEmployeeGroup.group.roles[0].role", |b, n| {
            call!(
                AccountsClient,
                create_employee_group,
                acc::CreateEmployeeGroupRequest {
                    request_id: rid(),
                    parent: b.business(),
                    group: Some(acc::EmployeeGroup {
                        display_name: "G".into(),
                        roles: role_grants(&b.rm1(), n, 1).program_roles,
                        ..Default::default()
                    }),
                }
            )
        }),
        nt("ListReceivedRequests.state", |b, n| {
            call!(
                DelegationClient,
                list_received_requests,
                del::ListReceivedRequestsRequest {
                    parent: b.business(),
                    state: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListRelationships.side", |b, n| {
            call!(
                DelegationClient,
                list_relationships,
                del::ListRelationshipsRequest {
                    parent: b.business(),
                    side: n,
                    ..Default::default()
                }
            )
        }),
        nt("ListRelationships.state", |b, n| {
            call!(
                DelegationClient,
                list_relationships,
                del::ListRelationshipsRequest {
                    parent: b.business(),
                    state: n,
                    ..Default::default()
                }
            )
        }),
        nt("ApproveRelationshipRequest.level", |b, n| {
            call!(
                DelegationClient,
                approve_relationship_request,
                del::ApproveRelationshipRequestRequest {
                    request_id: rid(),
                    name: b.child("receivedRequests"),
                    level: n,
                    expire_time: b.expire(),
                    ..Default::default()
                }
            )
        }),
        nt("ApproveRelationshipRequest.visibility[0]", |b, n| {
            call!(
                DelegationClient,
                approve_relationship_request,
                del::ApproveRelationshipRequestRequest {
                    request_id: rid(),
                    name: b.child("receivedRequests"),
                    level: del::RelationshipLevel::Business as i32,
                    expire_time: b.expire(),
                    visibility: vec![n],
                    ..Default::default()
                }
            )
        }),
        nt("AssignToClient.assignment.role", |b, n| {
            call!(
                DelegationClient,
                assign_to_client,
                del::AssignToClientRequest {
                    request_id: rid(),
                    parent: b.business(),
                    assignment: Some(del::Assignment {
                        assignee: b.principal.clone(),
                        target: Some(del::assignment::Target::Client(b.other.clone())),
                        role: n,
                        ..Default::default()
                    }),
                }
            )
        }),
        nt("UpdateMyProfile.profile.preferred_language", |_, n| {
            call!(
                IdentityClient,
                update_my_profile,
                idn::UpdateMyProfileRequest {
                    request_id: rid(),
                    profile: Some(idn::Profile {
                        preferred_language: n,
                        etag: "e".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["preferred_language".into()]
                    }),
                }
            )
        }),
        nt("Check.item.action", |b, n| {
            call!(
                AuthorizationClient,
                check,
                gw::CheckRequest {
                    item: Some(gw::CheckItem {
                        action: n,
                        resource: b.business(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            )
        }),
        nt("ListAccessible.action", |_, n| {
            call!(
                AuthorizationClient,
                list_accessible,
                gw::ListAccessibleRequest {
                    action: n,
                    ..Default::default()
                }
            )
        }),
    ]
}

/// Repeated fields over their limits: (RPC and field, entries, the call).
fn count_cases(b: &Base) -> Vec<Case> {
    let bn = |n: usize| vec![b.other.clone(); n];
    let principals = |n: usize| vec![b.principal.clone(); n];
    let group = |n: usize, m: usize| acc::EmployeeGroup {
        display_name: "Big".into(),
        roles: role_grants(&b.rm1(), Role::Reader as i32, n).program_roles,
        members: principals(m),
        ..Default::default()
    };
    let answers = |n: usize| {
        vec![
            acc::KnownFactAnswer {
                question_id: "q1".into(),
                answer: "1".into(),
            };
            n
        ]
    };
    let mut out = Vec::new();
    let mut add = |rpc: &'static str, what: String, expect: Expect, call: Call| {
        out.push(Case {
            rpc,
            mutation: what,
            call,
            expect,
        });
    };
    for n in [51, 100_000] {
        add(
            "RegisterBusiness",
            format!("answers ×{n}"),
            Expect::OverLimit("answers"),
            register_with(b, |r| r.answers = answers(n)),
        );
    }
    for n in [1001, 50_000] {
        add(
            "ApproveEmployeeRequest",
            format!("grants.program_roles ×{n}"),
            Expect::OverLimit("grants.program_roles"),
            call!(
                AccountsClient,
                approve_employee_request,
                acc::ApproveEmployeeRequestRequest {
                    request_id: rid(),
                    name: b.child("employeeRequests"),
                    grants: Some(role_grants(&b.rm1(), Role::Reader as i32, n)),
                }
            ),
        );
        add(
            "SetMemberRoles",
            format!("grants.program_roles ×{n}"),
            Expect::OverLimit("grants.program_roles"),
            call!(
                AccountsClient,
                set_member_roles,
                acc::SetMemberRolesRequest {
                    request_id: rid(),
                    name: format!("{}/members/{}", b.business(), b.principal),
                    grants: Some(role_grants(&b.rm1(), Role::Reader as i32, n)),
                    etag: "e".into(),
                }
            ),
        );
    }
    for (roles, members) in [(1001, 1), (100_000, 1), (1, 1001), (1, 100_000)] {
        add(
            "CreateEmployeeGroup",
            format!("group.roles ×{roles}, group.members ×{members}"),
            if members == 100_000 {
                Expect::TooLarge
            } else if roles > 1 {
                Expect::OverLimit("group.roles")
            } else {
                Expect::OverLimit("group.members")
            },
            call!(
                AccountsClient,
                create_employee_group,
                acc::CreateEmployeeGroupRequest {
                    request_id: rid(),
                    parent: b.business(),
                    group: Some(group(roles, members)),
                }
            ),
        );
    }
    for n in [1001, 100_000] {
        add(
            "AddEmployeeGroupMembers",
            format!("principals ×{n}"),
            if n == 100_000 {
                Expect::TooLarge
            } else {
                Expect::OverLimit("principals")
            },
            call!(
                AccountsClient,
                add_employee_group_members,
                acc::AddEmployeeGroupMembersRequest {
                    request_id: rid(),
                    group: b.child("employeeGroups"),
                    principals: principals(n),
                }
            ),
        );
        add(
            "RemoveEmployeeGroupMembers",
            format!("principals ×{n}"),
            if n == 100_000 {
                Expect::TooLarge
            } else {
                Expect::OverLimit("principals")
            },
            call!(
                AccountsClient,
                remove_employee_group_members,
                acc::RemoveEmployeeGroupMembersRequest {
                    request_id: rid(),
                    group: b.child("employeeGroups"),
                    principals: principals(n),
                }
            ),
        );
        add(
            "SendRelationshipRequest",
            format!("program_accounts ×{n}"),
            Expect::OverLimit("program_accounts"),
            call!(
                DelegationClient,
                send_relationship_request,
                del::SendRelationshipRequestRequest {
                    request_id: rid(),
                    parent: b.business(),
                    client: b.other.clone(),
                    program_accounts: vec![rm(&b.other, 1); n],
                    note: "please".into(),
                }
            ),
        );
        add(
            "ApproveRelationshipRequest",
            format!("program_accounts ×{n}, visibility ×{n}"),
            Expect::OverLimit("program_accounts"),
            call!(
                DelegationClient,
                approve_relationship_request,
                del::ApproveRelationshipRequestRequest {
                    request_id: rid(),
                    name: b.child("receivedRequests"),
                    level: del::RelationshipLevel::Program as i32,
                    program_accounts: vec![b.rm1(); n],
                    expire_time: b.expire(),
                    visibility: vec![1; n],
                }
            ),
        );
        add(
            "UpdateMyProfile",
            format!("update_mask.paths ×{n}"),
            Expect::OverLimit("update_mask.paths"),
            call!(
                IdentityClient,
                update_my_profile,
                idn::UpdateMyProfileRequest {
                    request_id: rid(),
                    profile: Some(idn::Profile {
                        etag: "e".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["email".into(); n]
                    }),
                }
            ),
        );
        add(
            "BatchCheck",
            format!("items ×{n}"),
            Expect::OverLimit("items"),
            call!(
                AuthorizationClient,
                batch_check,
                gw::BatchCheckRequest {
                    items: vec![
                        gw::CheckItem {
                            action: Action::View as i32,
                            resource: b.business(),
                            ..Default::default()
                        };
                        n
                    ],
                    ..Default::default()
                }
            ),
        );
    }
    for n in [10_001, 300_000] {
        add(
            "CreateClientGroup",
            format!("group.clients ×{n}"),
            Expect::OverLimit("group.clients"),
            call!(
                DelegationClient,
                create_client_group,
                del::CreateClientGroupRequest {
                    request_id: rid(),
                    parent: b.business(),
                    group: Some(del::ClientGroup {
                        display_name: "All".into(),
                        clients: bn(n),
                        ..Default::default()
                    }),
                }
            ),
        );
        add(
            "AddClientGroupClients",
            format!("clients ×{n}"),
            Expect::OverLimit("clients"),
            call!(
                DelegationClient,
                add_client_group_clients,
                del::AddClientGroupClientsRequest {
                    request_id: rid(),
                    group: b.child("clientGroups"),
                    clients: bn(n),
                }
            ),
        );
        add(
            "RemoveClientGroupClients",
            format!("clients ×{n}"),
            Expect::OverLimit("clients"),
            call!(
                DelegationClient,
                remove_client_group_clients,
                del::RemoveClientGroupClientsRequest {
                    request_id: rid(),
                    group: b.child("clientGroups"),
                    clients: bn(n),
                }
            ),
        );
    }
    out
}

/// A codec that sends raw bytes as the message, to put any body on the wire.
#[derive(Debug, Clone, Default)]
struct RawCodec;

#[derive(Debug, Clone, Default)]
struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

/// Sends `body` as the message of `path` (a gRPC frame of raw bytes).
fn raw_call(path: &'static str, body: Vec<u8>) -> Call {
    Box::new(move |channel: Channel, token: Option<String>| -> Reply {
        Box::pin(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = http::uri::PathAndQuery::from_static(path);
            grpc.unary(request(token, body), path, RawCodec)
                .await
                .map(|_| ())
        })
    })
}

/// Bodies that are not a protobuf message (or not of the method).
fn malformed_bodies(b: &Base) -> Vec<(&'static str, Vec<u8>)> {
    let valid = acc::RegisterBusinessRequest {
        request_id: rid(),
        program_account: b.rm1(),
        legal_name: "ABC Imports".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut flipped = valid.clone();
    for (i, byte) in flipped.iter_mut().enumerate() {
        if i % 3 == 0 {
            *byte ^= 0xa5;
        }
    }
    let mut nested = Vec::new();
    for _ in 0..200 {
        nested.extend_from_slice(&[0x1a, 0x7f]); // field 3, length 127, never closed
    }
    vec![
        ("truncated varint", vec![0x10, 0xff]),
        ("wire type 7", vec![0x0f, 0x01]),
        (
            "length past the end",
            vec![0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41],
        ),
        ("invalid utf-8 in a string", vec![0x12, 0x02, 0xff, 0xfe]),
        ("unterminated group", vec![0x0b, 0x08, 0x01]),
        ("field number 0", vec![0x00, 0x01]),
        (
            "a real message truncated",
            valid[..valid.len() / 2].to_vec(),
        ),
        ("a real message with bytes flipped", flipped),
        ("nested lengths past the end", nested),
        (
            "10-byte varint overflow",
            vec![
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ),
    ]
}

const RAW_PATHS: [&str; 6] = [
    "/ccp.accounts.v1.Accounts/RegisterBusiness",
    "/ccp.accounts.v1.Accounts/CreateEmployeeGroup",
    "/ccp.delegation.v1.Delegation/CreateClientGroup",
    "/ccp.identity.v1.Identity/CreateProfile",
    "/ccp.identity.v1.Identity/SignIn",
    "/ccp.gateway.v1.Authorization/BatchCheck",
];

/// The whole corpus, in a fixed order.
fn corpus(b: &Base) -> Vec<Case> {
    let mut cases = Vec::new();
    for (rpc, field, make) in string_targets() {
        for (what, s) in hostile_strings() {
            cases.push(Case {
                rpc,
                mutation: format!("{field}: {what}"),
                call: make(b, s),
                expect: Expect::Any,
            });
        }
    }
    for (target, make) in time_targets() {
        // The field is the target's last part after the RPC: `expire_time`, ….
        let field = target.split_once('.').map_or(target, |(_, f)| f);
        let field = field.strip_prefix("ListAuditEvents.").unwrap_or(field);
        for (what, t) in absurd_times() {
            let in_range = (-62_135_596_800..=253_402_300_799).contains(&t.seconds)
                && (0..1_000_000_000).contains(&t.nanos);
            cases.push(Case {
                rpc: target,
                mutation: what.to_owned(),
                call: make(b, t),
                expect: if in_range {
                    Expect::Any
                } else {
                    Expect::OverLimit(field)
                },
            });
        }
    }
    for (rpc, make) in page_targets() {
        for n in [-1, i32::MIN, i32::MAX] {
            cases.push(Case {
                rpc,
                mutation: format!("page_size {n}"),
                call: make(b, n),
                expect: Expect::Any,
            });
        }
    }
    for (target, make) in enum_targets() {
        for n in [-1, 99, i32::MAX] {
            cases.push(Case {
                rpc: target,
                mutation: format!("enum value {n}"),
                call: make(b, n),
                expect: Expect::Any,
            });
        }
    }
    cases.extend(count_cases(b));
    for path in RAW_PATHS {
        for (what, body) in malformed_bodies(b) {
            cases.push(Case {
                rpc: path,
                mutation: format!("malformed protobuf: {what}"),
                call: raw_call(path, body),
                expect: Expect::Any,
            });
        }
    }
    cases.push(Case {
        rpc: "/ccp.accounts.v1.Accounts/NoSuchMethod",
        mutation: "unknown method".into(),
        call: raw_call("/ccp.accounts.v1.Accounts/NoSuchMethod", vec![]),
        expect: Expect::Any,
    });
    cases
}

/// The suite on `backend` with its first BAM (`alice`, of ABC).
async fn world(backend: TestBackend) -> (Suite, Who, Base) {
    let suite = Suite::start_on(memory_context(), 1, backend).await;
    let gw = suite.gw();
    let alice = person(&suite, gw, "Alice Hostile").await;
    register(gw, &alice, ABC).await;
    let base = Base {
        bn: ABC.to_owned(),
        other: MAPLE.to_owned(),
        missing: uuid::Uuid::from_u128(7).to_string(),
        principal: alice.principal.clone(),
    };
    (suite, alice, base)
}

/// Runs the corpus on `backend`: the status code of each case, in order.
async fn run_corpus(backend: TestBackend) -> (Vec<(String, Code)>, Duration) {
    let name = backend.name();
    let (suite, alice, base) = world(backend).await;
    let channel = suite.gw().channel.clone();
    let started = Instant::now();
    let mut out = Vec::new();
    for case in corpus(&base) {
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            (case.call)(channel.clone(), alice.token.clone()),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: {} {} took over 30 s", case.rpc, case.mutation));
        match (&result, case.expect) {
            (_, Expect::Any) => {}
            (Err(status), Expect::OverLimit(field))
                if status.code() == Code::InvalidArgument
                    && status.message().contains(&format!("{field}: must")) => {}
            (Err(status), Expect::TooLarge) if status.code() == Code::ResourceExhausted => {}
            (other, expect) => panic!(
                "{name}: {} {} answered {other:?}, expected {expect:?}",
                case.rpc, case.mutation
            ),
        }
        let code = match result {
            Ok(()) => Code::Ok,
            Err(status) => {
                assert!(
                    !matches!(status.code(), Code::Internal | Code::Unknown),
                    "{name}: {} {} answered {:?}: {}",
                    case.rpc,
                    case.mutation,
                    status.code(),
                    status.message()
                );
                assert!(
                    status.message().len() <= 4096,
                    "{name}: {} {} answered a {}-byte message",
                    case.rpc,
                    case.mutation,
                    status.message().len()
                );
                status.code()
            }
        };
        out.push((format!("{} | {}", case.rpc, case.mutation), code));
    }
    let elapsed = started.elapsed();
    if std::env::var_os("CCP_HOSTILE_VERBOSE").is_some() {
        for (case, code) in &out {
            eprintln!("{name}: {case} => {code:?}");
        }
    }
    // Still alive and serving: a normal call succeeds.
    suite
        .gw()
        .accounts()
        .get_business(crate::world::req(
            &alice,
            acc::GetBusinessRequest {
                name: base.business(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("{name}: the suite no longer serves after the corpus: {s:?}"));
    (out, elapsed)
}

fn summary(codes: &[(String, Code)]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for (_, code) in codes {
        *by.entry(format!("{code:?}")).or_insert(0) += 1;
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_in_1_a_hostile_corpus_is_never_internal_and_classified_alike_on_sqlite_and_postgres() {
    let (sqlite, took) = run_corpus(TestBackend::sqlite()).await;
    assert!(
        sqlite.len() >= 250,
        "the corpus has {} inputs",
        sqlite.len()
    );
    eprintln!(
        "hostile corpus on sqlite: {} inputs in {took:?}: {:?}",
        sqlite.len(),
        summary(&sqlite)
    );
    let Some(pg) = TestBackend::postgres().await else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL not set, the PostgreSQL half not run");
        return;
    };
    let (postgres, took) = run_corpus(pg).await;
    eprintln!(
        "hostile corpus on postgres: {} inputs in {took:?}: {:?}",
        postgres.len(),
        summary(&postgres)
    );
    let differ: Vec<_> = sqlite
        .iter()
        .zip(&postgres)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{}: sqlite {:?}, postgres {:?}", a.0, a.1, b.1))
        .collect();
    assert!(
        differ.is_empty(),
        "classified differently:\n{}",
        differ.join("\n")
    );
}

/// The worst requests of the corpus, one caller sending them in a bounded
/// loop: a legal-size message of 100,000 entries, a 100 KB authorization
/// header, a malformed protobuf body.
async fn attack(
    channel: Channel,
    token: Option<String>,
    base: Base,
    rounds: usize,
) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for round in 0..rounds {
        let call = match round % 4 {
            0 => call!(
                AccountsClient,
                create_employee_group,
                acc::CreateEmployeeGroupRequest {
                    request_id: rid(),
                    parent: base.business(),
                    group: Some(acc::EmployeeGroup {
                        display_name: "Big".into(),
                        roles: role_grants(&base.rm1(), Role::Reader as i32, 100_000).program_roles,
                        ..Default::default()
                    }),
                }
            ),
            1 => call!(
                DelegationClient,
                create_client_group,
                del::CreateClientGroupRequest {
                    request_id: rid(),
                    parent: base.business(),
                    group: Some(del::ClientGroup {
                        display_name: "All".into(),
                        clients: vec![base.other.clone(); 300_000],
                        ..Default::default()
                    }),
                }
            ),
            2 => {
                let huge = format!("x{}", "a".repeat(100 * 1024));
                call!(
                    AccountsClient,
                    get_business,
                    acc::GetBusinessRequest { name: huge }
                )
            }
            _ => raw_call(
                "/ccp.accounts.v1.Accounts/RegisterBusiness",
                vec![0x12, 0xff, 0xff, 0xff, 0xff, 0x0f],
            ),
        };
        let token = if round % 4 == 2 {
            Some("a".repeat(100 * 1024))
        } else {
            token.clone()
        };
        let code = match call(channel.clone(), token).await {
            Ok(()) => Code::Ok,
            Err(s) => s.code(),
        };
        assert!(
            !matches!(code, Code::Internal | Code::Unknown | Code::Ok),
            "attack round {round} answered {code:?}"
        );
        *seen.entry(format!("{code:?}")).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_in_1_bystanders_calls_all_succeed_while_one_caller_sends_the_worst_inputs() {
    const ROUNDS: usize = 24;
    const BYSTANDERS: usize = 6;
    const CALLS_EACH: usize = 50;
    let (suite, alice, base) = world(TestBackend::sqlite()).await;
    let gw = suite.gw();
    let bob = person(&suite, gw, "Bob Bystander").await;
    let started = Instant::now();
    // The attacker on a connection of its own.
    let attacker = Channel::from_shared(gw.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let attack = tokio::spawn(attack(
        attacker.clone(),
        alice.token.clone(),
        base.clone(),
        ROUNDS,
    ));
    let mut bystanders = Vec::new();
    for i in 0..BYSTANDERS {
        // Every other bystander shares the attacker's connection: one
        // refused call must not take the connection's other calls with it.
        let channel = if i % 2 == 0 {
            attacker.clone()
        } else {
            Channel::from_shared(gw.url.clone())
                .unwrap()
                .connect()
                .await
                .unwrap()
        };
        let (who, business) = if i % 3 == 0 {
            (bob.clone(), None)
        } else {
            (alice.clone(), Some(base.business()))
        };
        bystanders.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for n in 0..CALLS_EACH {
                let result = match &business {
                    Some(name) => AccountsClient::new(channel.clone())
                        .get_business(crate::world::req(
                            &who,
                            acc::GetBusinessRequest { name: name.clone() },
                        ))
                        .await
                        .map(|_| ()),
                    None => AccountsClient::new(channel.clone())
                        .list_my_businesses(crate::world::req(
                            &who,
                            acc::ListMyBusinessesRequest::default(),
                        ))
                        .await
                        .map(|_| ()),
                };
                if let Err(s) = result {
                    failures.push(format!(
                        "bystander {i} call {n}: {:?} {}",
                        s.code(),
                        s.message()
                    ));
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for b in bystanders {
        failures.extend(
            tokio::time::timeout(Duration::from_secs(120), b)
                .await
                .expect("bystanders finish within 120 s")
                .unwrap(),
        );
    }
    let seen = tokio::time::timeout(Duration::from_secs(120), attack)
        .await
        .expect("the attack finishes within 120 s")
        .unwrap();
    eprintln!(
        "bystanders: {} calls, {} failed, in {:?}; the attacker's {ROUNDS} calls answered {seen:?}",
        BYSTANDERS * CALLS_EACH,
        failures.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
