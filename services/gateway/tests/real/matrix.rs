//! The authorization matrix (issue 6): every public RPC of identity, accounts
//! and delegation × every kind of principal, called through the gateway on
//! the real services, against the outcome R-AZ requires; and a Check-level
//! matrix (VIEW/EDIT/MANAGE × BN9/BN15 × submitted_by) for the relationship
//! cases. Both tables are rendered into `docs/authorization-matrix.md`.
//!
//! How an answer is classified:
//! - `denied`: PERMISSION_DENIED with the gateway's bare message — the
//!   gateway refused it (R-GW-1, R-AZ-6);
//! - `profile required`: FAILED_PRECONDITION "create your profile first" —
//!   a self-service call of a person without a profile (R-ID-2);
//! - `unauthenticated`: UNAUTHENTICATED (no token, R-GW-1);
//! - `forwarded`: anything else the service itself answered — OK, or its own
//!   business error (writes are sent with an empty `request_id`, so an
//!   admitted write is answered INVALID_ARGUMENT naming `request_id` by the
//!   service and changes nothing; reads answer OK or NOT_FOUND).
//!   UNAVAILABLE, INTERNAL and UNKNOWN are never acceptable.
//!
//! The expected outcomes are written here from R-AZ by hand (not derived
//! from the gateway's policy table), so the test checks the table.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{Action as PAction, Role};
use ccp_proto::delegation::v1 as del;
use ccp_proto::gateway::v1 as gw;
use ccp_proto::identity::v1 as idn;
use prost::Message as _;
use tonic::{Code, Status};

use crate::harness::{Suite, memory_context};
use crate::world::{self, ABC, ITN, Kind, MAPLE, PACIFIQUE, Who, World, grants, req, rm};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Forwarded,
    Denied,
    /// FAILED_PRECONDITION from the gateway: create your profile first (R-ID-2).
    ProfileRequired,
    Unauthenticated,
}

impl Outcome {
    fn cell(self) -> &'static str {
        match self {
            Outcome::Forwarded => "✓",
            Outcome::Denied => "·",
            Outcome::ProfileRequired => "P",
            Outcome::Unauthenticated => "U",
        }
    }
}

/// How R-AZ admits a row.
#[derive(Debug, Clone, Copy)]
enum Admit {
    /// No token needed (R-GW-1's named exceptions).
    Anonymous,
    /// A person with a profile, on itself (R-AZ-0).
    SelfService,
    /// Any signed-in person, profile or not (CreateProfile, R-ID-2).
    AnyPerson,
    /// Exactly these kinds (R-AZ-1..5).
    Only(&'static [Kind]),
}

const PERSONS_WITHOUT_PROFILE: [Kind; 1] = [Kind::NoProfile];

/// Every member of ABC, and every provider principal with an active
/// relationship covering ABC's BN9 and an assignment (VIEW of the BN9).
const VIEW_ABC: &[Kind] = &[
    Kind::Bam,
    Kind::Pam,
    Kind::PamOther,
    Kind::Editor,
    Kind::Reader,
    Kind::Machine,
    Kind::ProviderBam,
    Kind::Assigned,
    Kind::GroupAssigned,
    Kind::ProviderMachine,
    Kind::ProgramLevel,
];
/// ABC's BAM or a PAM of one of its programs (people only).
const MANAGE_SOME_ABC: &[Kind] = &[Kind::Bam, Kind::Pam, Kind::PamOther];
/// MANAGE of ABC's RM0001: its BAM and its PAM.
const MANAGE_RM1: &[Kind] = &[Kind::Bam, Kind::Pam];
/// MANAGE of ABC's BN9: its BAM.
const ABC_BAM: &[Kind] = &[Kind::Bam];
/// MANAGE of the provider ITN: its BAM.
const ITN_BAM: &[Kind] = &[Kind::ProviderBam];

fn is_machine(kind: Kind) -> bool {
    matches!(kind, Kind::Machine | Kind::ProviderMachine)
}

fn expected(admit: Admit, kind: Kind) -> Outcome {
    use Outcome::*;
    match admit {
        Admit::Anonymous => Forwarded,
        _ if kind == Kind::Anonymous => Unauthenticated,
        Admit::SelfService => {
            if is_machine(kind) {
                Denied
            } else if PERSONS_WITHOUT_PROFILE.contains(&kind) {
                ProfileRequired
            } else {
                Forwarded
            }
        }
        Admit::AnyPerson => {
            if is_machine(kind) {
                Denied
            } else {
                Forwarded
            }
        }
        Admit::Only(kinds) => {
            if kinds.contains(&kind) {
                Forwarded
            } else {
                Denied
            }
        }
    }
}

/// One row: a label (`Service/Rpc`, with a variant after a space), the rule,
/// and what R-AZ says in words.
struct Row {
    label: &'static str,
    admit: Admit,
    why: &'static str,
}

const fn row(label: &'static str, admit: Admit, why: &'static str) -> Row {
    Row { label, admit, why }
}

const ROWS: &[Row] = &[
    // identity
    row(
        "Identity/SignIn",
        Admit::Anonymous,
        "R-GW-1: establishes authentication",
    ),
    row("Identity/RefreshSession", Admit::Anonymous, "R-GW-1"),
    row(
        "Identity/SignOut",
        Admit::SelfService,
        "R-AZ-0: own session",
    ),
    row("Identity/GetSigningKeys", Admit::Anonymous, "R-GW-1"),
    row(
        "Identity/CreateProfile",
        Admit::AnyPerson,
        "R-ID-2: the only call without a profile",
    ),
    row("Identity/GetMyProfile", Admit::SelfService, "R-AZ-0"),
    row("Identity/UpdateMyProfile", Admit::SelfService, "R-AZ-0"),
    row(
        "Identity/CreateMachineCredential",
        Admit::Only(ABC_BAM),
        "R-AZ-1: credentials are the BAM's",
    ),
    row(
        "Identity/ListMachineCredentials",
        Admit::Only(ABC_BAM),
        "R-AZ-1",
    ),
    row(
        "Identity/RevokeMachineCredential",
        Admit::Only(ABC_BAM),
        "R-AZ-1",
    ),
    row("Identity/IssueMachineToken", Admit::Anonymous, "R-GW-1"),
    row(
        "Identity/ListAuditEvents profiles/me",
        Admit::SelfService,
        "R-AZ-0: own history",
    ),
    row(
        "Identity/ListAuditEvents business",
        Admit::Only(ABC_BAM),
        "R-AZ-1: audit export",
    ),
    // accounts
    row("Accounts/GetTermsAndConditions", Admit::Anonymous, "R-GW-1"),
    row(
        "Accounts/GetRegistrationChallenge",
        Admit::SelfService,
        "R-AZ-0: register a business",
    ),
    row("Accounts/RegisterBusiness", Admit::SelfService, "R-AZ-0"),
    row(
        "Accounts/GetBusiness",
        Admit::Only(VIEW_ABC),
        "R-AZ-1 members; R-AZ-2/3 an active, assigned provider may VIEW the BN9",
    ),
    row(
        "Accounts/ListProgramAccounts",
        Admit::Only(VIEW_ABC),
        "R-AZ-1: VIEW of the BN9 lists its programs",
    ),
    row("Accounts/ListMyBusinesses", Admit::SelfService, "R-AZ-0"),
    row(
        "Accounts/RequestEmployeeAccess",
        Admit::SelfService,
        "R-AZ-0",
    ),
    row(
        "Accounts/WithdrawEmployeeRequest",
        Admit::SelfService,
        "R-AZ-0: own request",
    ),
    row(
        "Accounts/ListEmployeeRequests",
        Admit::Only(MANAGE_SOME_ABC),
        "R-AZ-1: BAM, or PAM (its programs)",
    ),
    row(
        "Accounts/ListMyEmployeeRequests",
        Admit::SelfService,
        "R-AZ-0",
    ),
    row(
        "Accounts/ApproveEmployeeRequest",
        Admit::Only(MANAGE_RM1),
        "R-AZ-1: granting on RM0001 needs MANAGE of RM0001",
    ),
    row(
        "Accounts/ApproveEmployeeRequest BAM",
        Admit::Only(ABC_BAM),
        "R-GW-1: granting BAM needs MANAGE of the business",
    ),
    row(
        "Accounts/RejectEmployeeRequest",
        Admit::Only(MANAGE_SOME_ABC),
        "R-AZ-1",
    ),
    row(
        "Accounts/ListEmployees",
        Admit::Only(MANAGE_RM1),
        "R-AZ-1: people of RM0001",
    ),
    row("Accounts/GetMember", Admit::Only(MANAGE_SOME_ABC), "R-AZ-1"),
    row(
        "Accounts/SetMemberRoles",
        Admit::Only(MANAGE_RM1),
        "R-AZ-1: the Editor of RM0001, changed on RM0001",
    ),
    row(
        "Accounts/RemoveMember",
        Admit::Only(MANAGE_RM1),
        "R-AZ-1, R-AC-7",
    ),
    row(
        "Accounts/RemoveMember credential",
        Admit::Only(ABC_BAM),
        "R-AZ-1: credentials are the BAM's",
    ),
    row(
        "Accounts/CreateEmployeeGroup",
        Admit::Only(MANAGE_RM1),
        "R-AC-6: a PAM for its programs",
    ),
    row(
        "Accounts/GetEmployeeGroup",
        Admit::Only(MANAGE_SOME_ABC),
        "R-AC-6",
    ),
    row(
        "Accounts/ListEmployeeGroups",
        Admit::Only(MANAGE_SOME_ABC),
        "R-AC-6",
    ),
    row(
        "Accounts/UpdateEmployeeGroup",
        Admit::Only(ABC_BAM),
        "R-AC-6: an unknown group: the BAM only (existence not revealed)",
    ),
    row(
        "Accounts/UpdateEmployeeGroup RM0001 group",
        Admit::Only(MANAGE_RM1),
        "R-AC-6: a group covering RM0001, roles on RM0001: BAM, or PAM of RM0001",
    ),
    row(
        "Accounts/UpdateEmployeeGroup RM0001 group to RM0002",
        Admit::Only(ABC_BAM),
        "R-AC-6: also MANAGE of RM0002, the program of the new roles (no PAM of both)",
    ),
    row(
        "Accounts/DeleteEmployeeGroup",
        Admit::Only(ABC_BAM),
        "R-AC-6: an unknown group: the BAM only",
    ),
    row(
        "Accounts/DeleteEmployeeGroup RM0001 group",
        Admit::Only(MANAGE_RM1),
        "R-AC-6: a group covering RM0001: BAM, or PAM of RM0001",
    ),
    row(
        "Accounts/DeleteEmployeeGroup no programs",
        Admit::Only(ABC_BAM),
        "R-AC-6: a group covering no program: the BAM only",
    ),
    row(
        "Accounts/AddEmployeeGroupMembers",
        Admit::Only(ABC_BAM),
        "R-AC-6: an unknown group: the BAM only",
    ),
    row(
        "Accounts/AddEmployeeGroupMembers RM0001 group",
        Admit::Only(MANAGE_RM1),
        "R-AC-6: a group covering RM0001: BAM, or PAM of RM0001",
    ),
    row(
        "Accounts/AddEmployeeGroupMembers credential",
        Admit::Only(ABC_BAM),
        "R-ID-4, R-AZ-1: a credential's roles are the BAM's to give",
    ),
    row(
        "Accounts/RemoveEmployeeGroupMembers",
        Admit::Only(ABC_BAM),
        "R-AC-6: an unknown group: the BAM only",
    ),
    row(
        "Accounts/RemoveEmployeeGroupMembers RM0001 group",
        Admit::Only(MANAGE_RM1),
        "R-AC-6: a group covering RM0001: BAM, or PAM of RM0001",
    ),
    row(
        "Accounts/ListAuditEvents",
        Admit::Only(ABC_BAM),
        "R-AZ-1: audit export",
    ),
    // delegation
    row(
        "Delegation/SendRelationshipRequest",
        Admit::Only(ITN_BAM),
        "R-AZ-1: a provider's BAM sends",
    ),
    row(
        "Delegation/WithdrawRelationshipRequest",
        Admit::Only(ITN_BAM),
        "R-DE-1",
    ),
    row(
        "Delegation/ListReceivedRequests",
        Admit::Only(MANAGE_SOME_ABC),
        "R-DE-2: BAM, or PAM (program level)",
    ),
    row(
        "Delegation/ListSentRequests",
        Admit::Only(ITN_BAM),
        "R-DE-1",
    ),
    row(
        "Delegation/ApproveRelationshipRequest",
        Admit::Only(ABC_BAM),
        "R-AZ-1: business level is the BAM's",
    ),
    row(
        "Delegation/ApproveRelationshipRequest program",
        Admit::Only(MANAGE_RM1),
        "R-DE-2: PAM for its programs",
    ),
    row(
        "Delegation/RejectRelationshipRequest",
        Admit::Only(ABC_BAM),
        "R-DE-2: an unknown request: the BAM only (existence not revealed)",
    ),
    row(
        "Delegation/RejectRelationshipRequest program",
        Admit::Only(MANAGE_RM1),
        "R-DE-2: a request naming RM0001: BAM, or PAM of RM0001",
    ),
    row(
        "Delegation/GetRelationship",
        Admit::Only(MANAGE_SOME_ABC),
        "R-DE-2; R-AZ-2: a provider never MANAGEs the client's relationships",
    ),
    row(
        "Delegation/ListRelationships",
        Admit::Only(MANAGE_SOME_ABC),
        "R-DE-2",
    ),
    row(
        "Delegation/UpdateRelationship",
        Admit::Only(ABC_BAM),
        "R-DE-3",
    ),
    row(
        "Delegation/EndRelationship",
        Admit::Only(ABC_BAM),
        "R-DE-3 (the client's side)",
    ),
    row(
        "Delegation/EndRelationship provider",
        Admit::Only(ITN_BAM),
        "R-DE-3 (the provider's side)",
    ),
    row(
        "Delegation/CreateClientGroup",
        Admit::Only(ITN_BAM),
        "R-DE-5",
    ),
    row("Delegation/GetClientGroup", Admit::Only(ITN_BAM), "R-DE-5"),
    row(
        "Delegation/ListClientGroups",
        Admit::Only(ITN_BAM),
        "R-DE-5",
    ),
    row(
        "Delegation/UpdateClientGroup",
        Admit::Only(ITN_BAM),
        "R-DE-5",
    ),
    row(
        "Delegation/DeleteClientGroup",
        Admit::Only(ITN_BAM),
        "R-DE-5",
    ),
    row(
        "Delegation/AddClientGroupClients",
        Admit::Only(ITN_BAM),
        "R-DE-5",
    ),
    row(
        "Delegation/RemoveClientGroupClients",
        Admit::Only(ITN_BAM),
        "R-DE-5",
    ),
    row("Delegation/AssignToClient", Admit::Only(ITN_BAM), "R-DE-5"),
    row("Delegation/Unassign", Admit::Only(ITN_BAM), "R-DE-5"),
    row("Delegation/ListAssignments", Admit::Only(ITN_BAM), "R-DE-5"),
    row(
        "Delegation/ListAuditEvents",
        Admit::Only(ABC_BAM),
        "R-AZ-1: audit export",
    ),
];

fn none() -> String {
    String::new()
}

fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Calls one row's representative request as `who` through the gateway.
async fn call(suite: &Suite, w: &World, label: &str, who: &Who) -> Result<(), Status> {
    let g = suite.gw();
    let (mut i, mut a, mut d) = (g.identity(), g.accounts(), g.delegation());
    let abc = format!("businesses/{ABC}");
    let itn = format!("businesses/{ITN}");
    let editor = &w.who[&Kind::Editor].principal;
    let rel = &w.itn_relationship;
    macro_rules! go {
        ($client:ident . $method:ident ( $msg:expr )) => {
            $client.$method(req(who, $msg)).await.map(|_| ())
        };
    }
    match label {
        "Identity/SignIn" => {
            let id_token = suite
                .dev
                .mint(
                    &format!("matrix-{}", unknown_id()),
                    suite.clock.now(),
                    std::time::Duration::from_secs(300),
                )
                .unwrap();
            go!(i.sign_in(idn::SignInRequest { id_token }))
        }
        "Identity/RefreshSession" => {
            let fresh = world::sign_in(suite, g, &format!("refresh-{}", unknown_id())).await;
            let refresh_token = fresh.session.unwrap().refresh_token;
            go!(i.refresh_session(idn::RefreshSessionRequest { refresh_token }))
        }
        "Identity/SignOut" => go!(i.sign_out(idn::SignOutRequest { request_id: none() })),
        "Identity/GetSigningKeys" => go!(i.get_signing_keys(idn::GetSigningKeysRequest {})),
        "Identity/CreateProfile" => go!(i.create_profile(idn::CreateProfileRequest {
            request_id: none(),
            profile: Some(idn::Profile {
                legal_name: "X".into(),
                ..Default::default()
            }),
        })),
        "Identity/GetMyProfile" => go!(i.get_my_profile(idn::GetMyProfileRequest {})),
        "Identity/UpdateMyProfile" => go!(i.update_my_profile(idn::UpdateMyProfileRequest {
            request_id: none(),
            profile: Some(idn::Profile::default()),
            update_mask: None,
        })),
        "Identity/CreateMachineCredential" => {
            go!(
                i.create_machine_credential(idn::CreateMachineCredentialRequest {
                    request_id: none(),
                    parent: abc.clone(),
                    display_name: "x".into(),
                    expire_time: None,
                })
            )
        }
        "Identity/ListMachineCredentials" => {
            go!(
                i.list_machine_credentials(idn::ListMachineCredentialsRequest {
                    parent: abc.clone(),
                    ..Default::default()
                })
            )
        }
        "Identity/RevokeMachineCredential" => {
            go!(
                i.revoke_machine_credential(idn::RevokeMachineCredentialRequest {
                    request_id: none(),
                    name: w.machine.name.clone(),
                    reason: "x".into(),
                })
            )
        }
        "Identity/IssueMachineToken" => go!(i.issue_machine_token(idn::IssueMachineTokenRequest {
            client_id: w.machine.client_id.clone(),
            client_secret: w.machine.client_secret.clone(),
        })),
        "Identity/ListAuditEvents profiles/me" => {
            go!(i.list_audit_events(idn::ListAuditEventsRequest {
                parent: "profiles/me".into(),
                ..Default::default()
            }))
        }
        "Identity/ListAuditEvents business" => {
            go!(i.list_audit_events(idn::ListAuditEventsRequest {
                parent: abc.clone(),
                ..Default::default()
            }))
        }
        "Accounts/GetTermsAndConditions" => {
            go!(a.get_terms_and_conditions(acc::GetTermsAndConditionsRequest {}))
        }
        "Accounts/GetRegistrationChallenge" => {
            go!(
                a.get_registration_challenge(acc::GetRegistrationChallengeRequest {
                    program_account: rm(ABC, 1),
                })
            )
        }
        "Accounts/RegisterBusiness" => go!(a.register_business(acc::RegisterBusinessRequest {
            request_id: none(),
            program_account: rm(ABC, 1),
            ..Default::default()
        })),
        "Accounts/GetBusiness" => {
            go!(a.get_business(acc::GetBusinessRequest { name: abc.clone() }))
        }
        "Accounts/ListProgramAccounts" => {
            go!(a.list_program_accounts(acc::ListProgramAccountsRequest {
                parent: abc.clone(),
                ..Default::default()
            }))
        }
        "Accounts/ListMyBusinesses" => {
            go!(a.list_my_businesses(acc::ListMyBusinessesRequest::default()))
        }
        "Accounts/RequestEmployeeAccess" => {
            go!(
                a.request_employee_access(acc::RequestEmployeeAccessRequest {
                    request_id: none(),
                    parent: abc.clone(),
                    note: "x".into(),
                })
            )
        }
        "Accounts/WithdrawEmployeeRequest" => {
            go!(
                a.withdraw_employee_request(acc::WithdrawEmployeeRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/employeeRequests/{}", unknown_id()),
                })
            )
        }
        "Accounts/ListEmployeeRequests" => {
            go!(a.list_employee_requests(acc::ListEmployeeRequestsRequest {
                parent: abc.clone(),
                ..Default::default()
            }))
        }
        "Accounts/ListMyEmployeeRequests" => {
            go!(a.list_my_employee_requests(acc::ListMyEmployeeRequestsRequest::default()))
        }
        "Accounts/ApproveEmployeeRequest" => {
            go!(
                a.approve_employee_request(acc::ApproveEmployeeRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/employeeRequests/{}", unknown_id()),
                    grants: Some(grants(false, &[(&rm(ABC, 1), Role::Reader)])),
                })
            )
        }
        "Accounts/ApproveEmployeeRequest BAM" => {
            go!(
                a.approve_employee_request(acc::ApproveEmployeeRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/employeeRequests/{}", unknown_id()),
                    grants: Some(grants(true, &[])),
                })
            )
        }
        "Accounts/RejectEmployeeRequest" => {
            go!(
                a.reject_employee_request(acc::RejectEmployeeRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/employeeRequests/{}", unknown_id()),
                    reason: "x".into(),
                })
            )
        }
        "Accounts/ListEmployees" => go!(a.list_employees(acc::ListEmployeesRequest {
            parent: abc.clone(),
            program_account: rm(ABC, 1),
            ..Default::default()
        })),
        "Accounts/GetMember" => go!(a.get_member(acc::GetMemberRequest {
            name: format!("{abc}/members/{editor}"),
        })),
        "Accounts/SetMemberRoles" => go!(a.set_member_roles(acc::SetMemberRolesRequest {
            request_id: none(),
            name: format!("{abc}/members/{editor}"),
            grants: Some(grants(false, &[(&rm(ABC, 1), Role::Reader)])),
            etag: none(),
        })),
        "Accounts/RemoveMember" => go!(a.remove_member(acc::RemoveMemberRequest {
            request_id: none(),
            name: format!("{abc}/members/{editor}"),
            etag: none(),
        })),
        "Accounts/RemoveMember credential" => go!(a.remove_member(acc::RemoveMemberRequest {
            request_id: none(),
            name: format!("{abc}/members/{}", w.machine.who.principal),
            etag: none(),
        })),
        "Accounts/CreateEmployeeGroup" => {
            go!(a.create_employee_group(acc::CreateEmployeeGroupRequest {
                request_id: none(),
                parent: abc.clone(),
                group: Some(acc::EmployeeGroup {
                    display_name: "x".into(),
                    roles: grants(false, &[(&rm(ABC, 1), Role::Reader)]).program_roles,
                    ..Default::default()
                }),
            }))
        }
        "Accounts/GetEmployeeGroup" => go!(a.get_employee_group(acc::GetEmployeeGroupRequest {
            name: format!("{abc}/employeeGroups/{}", unknown_id()),
        })),
        "Accounts/ListEmployeeGroups" => {
            go!(a.list_employee_groups(acc::ListEmployeeGroupsRequest {
                parent: abc.clone(),
                ..Default::default()
            }))
        }
        "Accounts/UpdateEmployeeGroup" => {
            go!(a.update_employee_group(acc::UpdateEmployeeGroupRequest {
                request_id: none(),
                group: Some(acc::EmployeeGroup {
                    name: format!("{abc}/employeeGroups/{}", unknown_id()),
                    ..Default::default()
                }),
                update_mask: None,
            }))
        }
        "Accounts/DeleteEmployeeGroup" => {
            go!(a.delete_employee_group(acc::DeleteEmployeeGroupRequest {
                request_id: none(),
                name: format!("{abc}/employeeGroups/{}", unknown_id()),
                etag: none(),
            }))
        }
        "Accounts/AddEmployeeGroupMembers" => {
            go!(
                a.add_employee_group_members(acc::AddEmployeeGroupMembersRequest {
                    request_id: none(),
                    group: format!("{abc}/employeeGroups/{}", unknown_id()),
                    principals: vec![editor.clone()],
                })
            )
        }
        "Accounts/RemoveEmployeeGroupMembers" => {
            go!(
                a.remove_employee_group_members(acc::RemoveEmployeeGroupMembersRequest {
                    request_id: none(),
                    group: format!("{abc}/employeeGroups/{}", unknown_id()),
                    principals: vec![editor.clone()],
                })
            )
        }
        "Accounts/UpdateEmployeeGroup RM0001 group"
        | "Accounts/UpdateEmployeeGroup RM0001 group to RM0002" => {
            let program = if label.ends_with("RM0002") { 2 } else { 1 };
            go!(a.update_employee_group(acc::UpdateEmployeeGroupRequest {
                request_id: none(),
                group: Some(acc::EmployeeGroup {
                    name: w.abc_rm1_group.clone(),
                    roles: grants(false, &[(&rm(ABC, program), Role::Editor)]).program_roles,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["roles".to_owned()],
                }),
            }))
        }
        "Accounts/DeleteEmployeeGroup RM0001 group"
        | "Accounts/DeleteEmployeeGroup no programs" => {
            let name = if label.ends_with("no programs") {
                w.abc_empty_group.clone()
            } else {
                w.abc_rm1_group.clone()
            };
            go!(a.delete_employee_group(acc::DeleteEmployeeGroupRequest {
                request_id: none(),
                name,
                etag: none(),
            }))
        }
        "Accounts/AddEmployeeGroupMembers RM0001 group"
        | "Accounts/AddEmployeeGroupMembers credential" => {
            let principal = if label.ends_with("credential") {
                w.machine.who.principal.clone()
            } else {
                editor.clone()
            };
            go!(
                a.add_employee_group_members(acc::AddEmployeeGroupMembersRequest {
                    request_id: none(),
                    group: w.abc_rm1_group.clone(),
                    principals: vec![principal],
                })
            )
        }
        "Accounts/RemoveEmployeeGroupMembers RM0001 group" => {
            go!(
                a.remove_employee_group_members(acc::RemoveEmployeeGroupMembersRequest {
                    request_id: none(),
                    group: w.abc_rm1_group.clone(),
                    principals: vec![editor.clone()],
                })
            )
        }
        "Accounts/ListAuditEvents" => go!(a.list_audit_events(acc::ListAuditEventsRequest {
            parent: abc.clone(),
            ..Default::default()
        })),
        "Delegation/SendRelationshipRequest" => {
            go!(
                d.send_relationship_request(del::SendRelationshipRequestRequest {
                    request_id: none(),
                    parent: itn.clone(),
                    client: MAPLE.into(),
                    program_accounts: vec![],
                    note: "x".into(),
                })
            )
        }
        "Delegation/WithdrawRelationshipRequest" => {
            go!(
                d.withdraw_relationship_request(del::WithdrawRelationshipRequestRequest {
                    request_id: none(),
                    name: format!("{itn}/sentRequests/{}", unknown_id()),
                })
            )
        }
        "Delegation/ListReceivedRequests" => {
            go!(d.list_received_requests(del::ListReceivedRequestsRequest {
                parent: abc.clone(),
                ..Default::default()
            }))
        }
        "Delegation/ListSentRequests" => go!(d.list_sent_requests(del::ListSentRequestsRequest {
            parent: itn.clone(),
            ..Default::default()
        })),
        "Delegation/ApproveRelationshipRequest" => {
            go!(
                d.approve_relationship_request(del::ApproveRelationshipRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/receivedRequests/{}", unknown_id()),
                    level: del::RelationshipLevel::Business as i32,
                    ..Default::default()
                })
            )
        }
        "Delegation/ApproveRelationshipRequest program" => {
            go!(
                d.approve_relationship_request(del::ApproveRelationshipRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/receivedRequests/{}", unknown_id()),
                    level: del::RelationshipLevel::Program as i32,
                    program_accounts: vec![rm(ABC, 1)],
                    ..Default::default()
                })
            )
        }
        "Delegation/RejectRelationshipRequest" => {
            go!(
                d.reject_relationship_request(del::RejectRelationshipRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/receivedRequests/{}", unknown_id()),
                    reason: "x".into(),
                })
            )
        }
        "Delegation/RejectRelationshipRequest program" => {
            go!(
                d.reject_relationship_request(del::RejectRelationshipRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/receivedRequests/{}", w.abc_program_request),
                    reason: "x".into(),
                })
            )
        }
        "Delegation/GetRelationship" => go!(d.get_relationship(del::GetRelationshipRequest {
            name: format!("{abc}/relationships/{rel}"),
        })),
        "Delegation/ListRelationships" => {
            go!(d.list_relationships(del::ListRelationshipsRequest {
                parent: abc.clone(),
                ..Default::default()
            }))
        }
        "Delegation/UpdateRelationship" => {
            go!(d.update_relationship(del::UpdateRelationshipRequest {
                request_id: none(),
                relationship: Some(del::Relationship {
                    name: format!("{abc}/relationships/{rel}"),
                    ..Default::default()
                }),
                update_mask: None,
            }))
        }
        "Delegation/EndRelationship" => go!(d.end_relationship(del::EndRelationshipRequest {
            request_id: none(),
            name: format!("{abc}/relationships/{rel}"),
            note: "x".into(),
        })),
        "Delegation/EndRelationship provider" => {
            go!(d.end_relationship(del::EndRelationshipRequest {
                request_id: none(),
                name: format!("{itn}/relationships/{rel}"),
                note: "x".into(),
            }))
        }
        "Delegation/CreateClientGroup" => {
            go!(d.create_client_group(del::CreateClientGroupRequest {
                request_id: none(),
                parent: itn.clone(),
                group: Some(del::ClientGroup {
                    display_name: "x".into(),
                    ..Default::default()
                }),
            }))
        }
        "Delegation/GetClientGroup" => go!(d.get_client_group(del::GetClientGroupRequest {
            name: w.itn_group.clone(),
        })),
        "Delegation/ListClientGroups" => {
            go!(d.list_client_groups(del::ListClientGroupsRequest {
                parent: itn.clone(),
                ..Default::default()
            }))
        }
        "Delegation/UpdateClientGroup" => {
            go!(d.update_client_group(del::UpdateClientGroupRequest {
                request_id: none(),
                group: Some(del::ClientGroup {
                    name: w.itn_group.clone(),
                    ..Default::default()
                }),
                update_mask: None,
            }))
        }
        "Delegation/DeleteClientGroup" => {
            go!(d.delete_client_group(del::DeleteClientGroupRequest {
                request_id: none(),
                name: w.itn_group.clone(),
                etag: none(),
            }))
        }
        "Delegation/AddClientGroupClients" => {
            go!(
                d.add_client_group_clients(del::AddClientGroupClientsRequest {
                    request_id: none(),
                    group: w.itn_group.clone(),
                    clients: vec![MAPLE.into()],
                })
            )
        }
        "Delegation/RemoveClientGroupClients" => {
            go!(
                d.remove_client_group_clients(del::RemoveClientGroupClientsRequest {
                    request_id: none(),
                    group: w.itn_group.clone(),
                    clients: vec![ABC.into()],
                })
            )
        }
        "Delegation/AssignToClient" => go!(d.assign_to_client(del::AssignToClientRequest {
            request_id: none(),
            parent: itn.clone(),
            assignment: Some(del::Assignment {
                assignee: w.who[&Kind::Unassigned].principal.clone(),
                target: Some(del::assignment::Target::Client(ABC.into())),
                role: Role::Reader as i32,
                ..Default::default()
            }),
        })),
        "Delegation/Unassign" => go!(d.unassign(del::UnassignRequest {
            request_id: none(),
            name: format!("{itn}/assignments/{}", unknown_id()),
        })),
        "Delegation/ListAssignments" => go!(d.list_assignments(del::ListAssignmentsRequest {
            parent: itn.clone(),
            ..Default::default()
        })),
        "Delegation/ListAuditEvents" => go!(d.list_audit_events(del::ListAuditEventsRequest {
            parent: abc.clone(),
            ..Default::default()
        })),
        other => panic!("no request for row {other}"),
    }
}

/// Classifies an answer (see the module doc).
fn classify(label: &str, kind: Kind, answer: &Result<(), Status>) -> Outcome {
    match answer {
        Ok(()) => Outcome::Forwarded,
        Err(s) if s.code() == Code::PermissionDenied && s.message() == "permission denied" => {
            Outcome::Denied
        }
        Err(s) if s.code() == Code::Unauthenticated => Outcome::Unauthenticated,
        Err(s)
            if s.code() == Code::FailedPrecondition
                && s.message() == "create your profile first" =>
        {
            Outcome::ProfileRequired
        }
        Err(s)
            if matches!(
                s.code(),
                Code::Unavailable | Code::Internal | Code::Unknown | Code::DeadlineExceeded
            ) =>
        {
            panic!("{label} as {kind:?}: {s:?}")
        }
        Err(_) => Outcome::Forwarded,
    }
}

fn public_rpcs() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(ccp_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = BTreeSet::new();
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if ccp_proto::PUBLIC_SERVICES.contains(&full.as_str()) {
                for method in &service.method {
                    rpcs.insert(format!("{}/{}", service.name(), method.name()));
                }
            }
        }
    }
    rpcs
}

// ------------------------------------------------------------ Check matrix

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Bn9,
    Rm1,
    Rm2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    None,
    Provider,
    Client,
    Other,
}

const CHECK_KINDS: [Kind; 17] = [
    Kind::Orphan,
    Kind::Bam,
    Kind::Pam,
    Kind::PamOther,
    Kind::Editor,
    Kind::Reader,
    Kind::Machine,
    Kind::OtherBam,
    Kind::ProviderBam,
    Kind::Assigned,
    Kind::GroupAssigned,
    Kind::Unassigned,
    Kind::Removed,
    Kind::ProviderMachine,
    Kind::ProgramLevel,
    Kind::Expired,
    Kind::Ended,
];
const ACTIONS: [PAction; 3] = [PAction::View, PAction::Edit, PAction::Manage];
const RESOURCES: [Res; 3] = [Res::Bn9, Res::Rm1, Res::Rm2];
const SUBS: [Sub; 4] = [Sub::None, Sub::Provider, Sub::Client, Sub::Other];

/// The power an action needs: Reader 1, Editor 2, PAM 3 (R-AC-4).
fn need(action: PAction) -> u8 {
    match action {
        PAction::View => 1,
        PAction::Edit => 2,
        _ => 3,
    }
}

/// What R-AZ-1..5 say, written out independently of the gateway's `decide`.
fn oracle(kind: Kind, action: PAction, res: Res, sub: Sub) -> bool {
    // R-AZ-1: a member's own role on its own business (submitted_by is a
    // provider's concern, R-AZ-3).
    let own = |program: Res, power: u8| match res {
        Res::Bn9 => action == PAction::View,
        p => p == program && power >= need(action),
    };
    // R-AZ-2/3: an active relationship: never MANAGE, never EDIT the BN9,
    // the assignment's power, the program covered, visibility by submitter.
    let active = |power: u8, covers_rm2: bool, client: bool, other: bool| {
        if action == PAction::Manage || (res == Res::Bn9 && action == PAction::Edit) {
            return false;
        }
        if res == Res::Rm2 && !covers_rm2 {
            return false;
        }
        if power < need(action) {
            return false;
        }
        match sub {
            Sub::None | Sub::Provider => true,
            Sub::Client => client,
            Sub::Other => other,
        }
    };
    match kind {
        Kind::Bam => true,
        Kind::Pam => own(Res::Rm1, 3),
        Kind::PamOther => own(Res::Rm2, 3),
        Kind::Editor | Kind::Machine => own(Res::Rm1, 2),
        Kind::Reader => own(Res::Rm1, 1),
        // ITN: business level, visibility provider + client; BAM counts as Editor.
        Kind::ProviderBam | Kind::Assigned => active(2, true, true, false),
        // R-AZ-5: a credential acts with the assignment its provider gave it.
        Kind::GroupAssigned | Kind::ProviderMachine => active(1, true, true, false),
        // Pacifique: program level on RM0001, visibility provider + other businesses.
        Kind::ProgramLevel => active(2, false, false, true),
        // R-AZ-4: expired users VIEW their provider's own submissions on programs.
        Kind::Expired | Kind::Ended => {
            action == PAction::View && res != Res::Bn9 && sub == Sub::Provider
        }
        _ => false,
    }
}

fn resource(res: Res) -> String {
    match res {
        Res::Bn9 => ABC.to_owned(),
        Res::Rm1 => rm(ABC, 1),
        Res::Rm2 => rm(ABC, 2),
    }
}

fn submitted_by(kind: Kind, sub: Sub) -> String {
    match sub {
        Sub::None => String::new(),
        Sub::Provider => kind.provider().unwrap_or(ITN).to_owned(),
        Sub::Client => ABC.to_owned(),
        Sub::Other => {
            if kind == Kind::ProgramLevel || kind.provider().is_none() {
                MAPLE.to_owned()
            } else {
                PACIFIQUE.to_owned()
            }
        }
    }
}

async fn check(suite: &Suite, principal: &str, action: PAction, res: &str, sub: &str) -> bool {
    let answer = suite
        .gw()
        .authorization()
        .check(suite.internal(gw::CheckRequest {
            principal: principal.to_owned(),
            item: Some(gw::CheckItem {
                action: action as i32,
                resource: res.to_owned(),
                submitted_by: sub.to_owned(),
            }),
            revision: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    answer.decision == gw::Decision::Allow as i32
}

// ------------------------------------------------------------ rendering

fn render() -> String {
    let mut out = String::from(
        "# Authorization matrix\n\n\
         Generated by the test `matrix::r_az_authorization_matrix_on_the_real_services` \
         (`services/gateway/tests/real/matrix.rs`), which checks every cell against the \
         gateway in front of the real identity, accounts and delegation services; do not \
         edit by hand (`CCP_UPDATE_DOCS=1 cargo test -p ccp-gateway --test real matrix` \
         rewrites it).\n\n\
         ## Principals\n\n| column | who |\n|---|---|\n",
    );
    for k in Kind::ALL {
        let _ = writeln!(out, "| {} | {} |", k.short(), k.describe());
    }
    out.push_str(
        "\n## Public RPCs through the gateway\n\n\
         Each RPC is called with a representative request naming ABC (the client, \
         `businesses/123456782`) or, for the provider's own RPCs, ITN \
         (`businesses/888316171`). `✓`: the gateway forwarded the call and the service \
         answered (OK or its own business error; writes are sent with an empty \
         `request_id`, so they are answered INVALID_ARGUMENT by the service and change \
         nothing); `·`: PERMISSION_DENIED from the gateway (bare, R-AZ-6); `P`: \
         FAILED_PRECONDITION from the gateway, create your profile first (a self-service \
         call of a person without a profile, R-ID-2); `U`: \
         UNAUTHENTICATED (no token, R-GW-1). The relationship of prov-expired has \
         passed its expiry instant when the matrix runs.\n\n| RPC |",
    );
    for k in Kind::ALL {
        let _ = write!(out, " {} |", k.short());
    }
    out.push_str(" rule |\n|---|");
    for _ in Kind::ALL {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for r in ROWS {
        let _ = write!(out, "| {} |", r.label);
        for k in Kind::ALL {
            let _ = write!(out, " {} |", expected(r.admit, k).cell());
        }
        let _ = writeln!(out, " {} |", r.why);
    }
    out.push_str(
        "\n## Check (VIEW / EDIT / MANAGE × BN9 / BN15 × submitted_by)\n\n\
         Asked by an internal caller about each principal. Resources: ABC's BN9 \
         `123456782`, `123456782RM0001` (covered by the program-level relationship) and \
         `123456782RM0002` (not covered). `submitted_by`: none (details, or a new \
         submission with EDIT); the principal's own provider (ITN for non-providers); \
         the client ABC; another business. ITN's relationship shows the provider's and \
         the client's submissions; 712345677's shows the provider's and other \
         businesses'. `A` allow, `·` deny.\n\n\
         | principal | resource | action | none | provider | client | other |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for kind in CHECK_KINDS {
        for res in RESOURCES {
            for action in ACTIONS {
                let _ = write!(
                    out,
                    "| {} | {} | {} |",
                    kind.short(),
                    resource(res),
                    action.as_str_name().trim_start_matches("ACTION_")
                );
                for sub in SUBS {
                    let cell = if oracle(kind, action, res, sub) {
                        "A"
                    } else {
                        "·"
                    };
                    let _ = write!(out, " {cell} |");
                }
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn docs_authorization_matrix_md_is_up_to_date() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/authorization-matrix.md");
    let rendered = render();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != rendered {
        if std::env::var_os("CCP_UPDATE_DOCS").is_some() {
            std::fs::write(&path, rendered).unwrap();
        } else {
            panic!(
                "{} is stale: run `CCP_UPDATE_DOCS=1 cargo test -p ccp-gateway --test real docs_authorization` and commit it",
                path.display()
            );
        }
    }
}

#[test]
fn r_gw_1_the_matrix_has_a_row_for_every_public_rpc() {
    let rows: BTreeSet<String> = ROWS
        .iter()
        .map(|r| r.label.split(' ').next().unwrap().to_owned())
        .collect();
    let rpcs = public_rpcs();
    assert!(rpcs.len() > 50);
    let missing: Vec<_> = rpcs.difference(&rows).collect();
    assert!(missing.is_empty(), "RPCs without a matrix row: {missing:?}");
    let unknown: Vec<_> = rows.difference(&rpcs).collect();
    assert!(unknown.is_empty(), "rows naming no RPC: {unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_az_authorization_matrix_on_the_real_services() {
    let suite = Suite::start(memory_context(), 1).await;
    let w = world::build(&suite).await;

    // R-DE-4: the expiring relationship's facts are cached (an allow) one
    // second before its expiry instant and denied from the instant on.
    let expired = &w.who[&Kind::Expired].principal;
    suite.clock.set(w.expire_at - chrono::Duration::seconds(1));
    assert!(check(&suite, expired, PAction::View, ABC, "").await);
    suite.clock.set(w.expire_at);
    assert!(!check(&suite, expired, PAction::View, ABC, "").await);
    assert!(check(&suite, expired, PAction::View, &rm(ABC, 1), world::NORTHERN).await);

    let mut failures = Vec::new();
    let mut cells = 0;
    let mut forwarded_codes = std::collections::BTreeMap::<String, usize>::new();
    for r in ROWS {
        for kind in Kind::ALL {
            let answer = call(&suite, &w, r.label, &w.who[&kind]).await;
            let got = classify(r.label, kind, &answer);
            let want = expected(r.admit, kind);
            cells += 1;
            if got == Outcome::Forwarded {
                let code = answer.as_ref().err().map_or(Code::Ok, Status::code);
                *forwarded_codes.entry(format!("{code:?}")).or_default() += 1;
            }
            if got != want {
                failures.push(format!(
                    "{} as {:?}: want {want:?}, got {got:?} ({:?})",
                    r.label,
                    kind,
                    answer.err().map(|s| (s.code(), s.message().to_owned()))
                ));
            }
        }
    }
    let mut checks = 0;
    for kind in CHECK_KINDS {
        let principal = &w.who[&kind].principal;
        for res in RESOURCES {
            for action in ACTIONS {
                for sub in SUBS {
                    let got = check(
                        &suite,
                        principal,
                        action,
                        &resource(res),
                        &submitted_by(kind, sub),
                    )
                    .await;
                    checks += 1;
                    if got != oracle(kind, action, res, sub) {
                        failures.push(format!(
                            "Check {kind:?} {action:?} {res:?} submitted_by {sub:?}: got allow={got}"
                        ));
                    }
                }
            }
        }
    }
    // BatchCheck answers the same questions the same way, in order, in one call
    // per principal (one snapshot of the facts).
    let mut batched = 0;
    for kind in CHECK_KINDS {
        let principal = &w.who[&kind].principal;
        let mut questions = Vec::new();
        for res in RESOURCES {
            for action in ACTIONS {
                for sub in SUBS {
                    questions.push((action, res, sub));
                }
            }
        }
        let answers = suite
            .gw()
            .authorization()
            .batch_check(
                suite.internal(gw::BatchCheckRequest {
                    principal: principal.clone(),
                    items: questions
                        .iter()
                        .map(|(action, res, sub)| gw::CheckItem {
                            action: *action as i32,
                            resource: resource(*res),
                            submitted_by: submitted_by(kind, *sub),
                        })
                        .collect(),
                    revision: String::new(),
                }),
            )
            .await
            .unwrap()
            .into_inner()
            .results;
        assert_eq!(answers.len(), questions.len(), "{kind:?}");
        for ((action, res, sub), answer) in questions.iter().zip(&answers) {
            batched += 1;
            let got = answer.decision == gw::Decision::Allow as i32;
            if got != oracle(kind, *action, *res, *sub) {
                failures.push(format!(
                    "BatchCheck {kind:?} {action:?} {res:?} submitted_by {sub:?}: got allow={got}"
                ));
            }
        }
    }
    eprintln!(
        "matrix: {cells} RPC cells, {checks} Check cells, {batched} BatchCheck cells; forwarded answers by code: {forwarded_codes:?}"
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
