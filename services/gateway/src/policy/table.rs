//! The rows of the policy table: per public RPC, its rule and its
//! requirements, read from the request in the order written. The words of
//! `docs/policy.md` are rendered from these rows ([`super::words`]).

use std::sync::LazyLock;

use ccp_proto::accounts::v1 as acc;
use ccp_proto::delegation::v1 as del;
use ccp_proto::identity::v1 as idn;

use super::require::{Condition, Field, Flag, List, Place, Require};
use super::{Policy, PolicyEntry, Rule, Writes, words};
use crate::decide::Action;

const IDENTITY: &str = "ccp.identity.v1.Identity";
const ACCOUNTS: &str = "ccp.accounts.v1.Accounts";
const DELEGATION: &str = "ccp.delegation.v1.Delegation";

/// A text field of the row's request `R` (`name` or `outer.name`, the outer one optional).
macro_rules! field {
    ($f:ident) => {
        Field::<R> {
            name: stringify!($f),
            get: |r: &R| r.$f.as_str(),
        }
    };
    ($outer:ident . $f:ident) => {
        Field::<R> {
            name: concat!(stringify!($outer), ".", stringify!($f)),
            get: |r: &R| r.$outer.as_ref().map_or("", |o| o.$f.as_str()),
        }
    };
}

/// A repeated field of the row's request `R`.
macro_rules! list {
    ($f:ident) => {
        List::<R, _> {
            name: stringify!($f),
            get: |r: &R| r.$f.as_slice(),
        }
    };
    ($outer:ident . $f:ident) => {
        List::<R, _> {
            name: concat!(stringify!($outer), ".", stringify!($f)),
            get: |r: &R| r.$outer.as_ref().map_or(&[][..], |o| o.$f.as_slice()),
        }
    };
}

/// A boolean field of an optional message of the row's request `R`.
macro_rules! flag {
    ($outer:ident . $f:ident) => {
        Flag::<R> {
            name: concat!(stringify!($outer), ".", stringify!($f)),
            get: |r: &R| r.$outer.as_ref().is_some_and(|o| o.$f),
        }
    };
}

/// A row's write declaration: None for a read.
macro_rules! writes {
    () => {
        None
    };
    ($writes:ident) => {
        Some(Writes::$writes)
    };
}

macro_rules! policy_table {
    ( $( $service:ident $method:literal $req:ty => $rule:ident $( writes $writes:ident )? [ $( $require:expr ),* $(,)? ] ; )* ) => {
        /// The policy table: one row per public RPC.
        pub static POLICY: &[PolicyEntry] = &[
            $( PolicyEntry {
                service: $service,
                method: $method,
                rule: Rule::$rule,
                writes: writes!($( $writes )?),
                needs: words::row::<$req>,
                request_type: std::any::type_name::<$req>,
            }, )*
        ];

        $(
            impl Policy for $req {
                const SERVICE: &'static str = $service;
                const METHOD: &'static str = $method;
                const RULE: Rule = Rule::$rule;
                fn requirements() -> &'static [Require<Self>] {
                    #[allow(dead_code)]
                    type R = $req;
                    static REQUIREMENTS: LazyLock<Vec<Require<$req>>> =
                        LazyLock::new(|| vec![ $( $require ),* ]);
                    &REQUIREMENTS
                }
            }
        )*
    };
}

policy_table! {
    // ---- identity
    IDENTITY "SignIn" idn::SignInRequest => Anonymous [];
    IDENTITY "RefreshSession" idn::RefreshSessionRequest => Anonymous [];
    IDENTITY "SignOut" idn::SignOutRequest => SelfService writes NoFacts [itself("the caller's own session")];
    IDENTITY "GetSigningKeys" idn::GetSigningKeysRequest => Anonymous [];
    IDENTITY "CreateProfile" idn::CreateProfileRequest => ProfileCreation writes NoFacts [itself("the caller's own profile")];
    IDENTITY "GetMyProfile" idn::GetMyProfileRequest => SelfService [itself("the caller's own profile")];
    IDENTITY "UpdateMyProfile" idn::UpdateMyProfileRequest => SelfService writes NoFacts [itself("the caller's own profile")];
    IDENTITY "CreateMachineCredential" idn::CreateMachineCredentialRequest => Checked writes AccountsFacts [manage(business(field!(parent)))];
    IDENTITY "ListMachineCredentials" idn::ListMachineCredentialsRequest => Checked [manage(business(field!(parent)))];
    IDENTITY "RevokeMachineCredential" idn::RevokeMachineCredentialRequest => Checked writes AccountsFacts
        [manage(child(field!(name), "machineCredentials"))];
    IDENTITY "IssueMachineToken" idn::IssueMachineTokenRequest => Anonymous [];
    IDENTITY "ListAuditEvents" idn::ListAuditEventsRequest => Checked [Require::Either {
        when: Condition { words: "`parent` is `profiles/me`", holds: |r: &R| r.parent == "profiles/me" },
        then: vec![itself("the caller itself")],
        otherwise: vec![manage(business(field!(parent)))],
    }];

    // ---- accounts
    ACCOUNTS "GetTermsAndConditions" acc::GetTermsAndConditionsRequest => Anonymous [];
    ACCOUNTS "GetRegistrationChallenge" acc::GetRegistrationChallengeRequest => SelfService [itself("registering a business")];
    ACCOUNTS "RegisterBusiness" acc::RegisterBusinessRequest => SelfService writes NoFacts [itself("registering a business")];
    ACCOUNTS "GetBusiness" acc::GetBusinessRequest => Checked [view(business(field!(name)))];
    ACCOUNTS "ListProgramAccounts" acc::ListProgramAccountsRequest => Checked [view(business(field!(parent)))];
    ACCOUNTS "ListMyBusinesses" acc::ListMyBusinessesRequest => SelfService [itself("the caller's own businesses")];
    ACCOUNTS "RequestEmployeeAccess" acc::RequestEmployeeAccessRequest => SelfService writes NoFacts [itself("the caller's own request")];
    ACCOUNTS "WithdrawEmployeeRequest" acc::WithdrawEmployeeRequestRequest => SelfService writes NoFacts
        [itself("the caller's own request (accounts checks the requester)")];
    ACCOUNTS "ListEmployeeRequests" acc::ListEmployeeRequestsRequest => Checked [some_program(business(field!(parent)))];
    ACCOUNTS "ListMyEmployeeRequests" acc::ListMyEmployeeRequestsRequest => SelfService [itself("the caller's own requests")];
    ACCOUNTS "ApproveEmployeeRequest" acc::ApproveEmployeeRequestRequest => Checked writes OwnFacts [
        some_program(child(field!(name), "employeeRequests")),
        Require::ManageBusinessIf(child(field!(name), "employeeRequests"), flag!(grants.business_manager)),
        Require::ManageEachProgramRole(list!(grants.program_roles)),
    ];
    ACCOUNTS "RejectEmployeeRequest" acc::RejectEmployeeRequestRequest => Checked writes OwnFacts
        [some_program(child(field!(name), "employeeRequests"))];
    ACCOUNTS "ListEmployees" acc::ListEmployeesRequest => Checked [
        some_program(business(field!(parent))),
        Require::ManageProgramIfSet(field!(program_account)),
    ];
    ACCOUNTS "GetMember" acc::GetMemberRequest => Checked [some_program(Place::Member(field!(name)))];
    ACCOUNTS "SetMemberRoles" acc::SetMemberRolesRequest => Checked writes OwnFacts [
        some_program(Place::Member(field!(name))),
        Require::ManageBusinessIf(Place::Member(field!(name)), flag!(grants.business_manager)),
        Require::ManageEachProgramRole(list!(grants.program_roles)),
        Require::ManageMember(field!(name)),
    ];
    ACCOUNTS "RemoveMember" acc::RemoveMemberRequest => Checked writes OwnFacts [
        some_program(Place::Member(field!(name))),
        Require::ManageMember(field!(name)),
    ];
    ACCOUNTS "CreateEmployeeGroup" acc::CreateEmployeeGroupRequest => Checked writes OwnFacts [
        some_program(business(field!(parent))),
        Require::ManageEachProgramRole(list!(group.roles)),
    ];
    ACCOUNTS "GetEmployeeGroup" acc::GetEmployeeGroupRequest => Checked [some_program(child(field!(name), "employeeGroups"))];
    ACCOUNTS "ListEmployeeGroups" acc::ListEmployeeGroupsRequest => Checked [some_program(business(field!(parent)))];
    // Changing an existing group touches the programs it holds now, which the
    // request does not name: they are read from accounts' group facts.
    ACCOUNTS "UpdateEmployeeGroup" acc::UpdateEmployeeGroupRequest => Checked writes OwnFacts [
        Require::ManageEachProgramRole(list!(group.roles)),
        Require::ManageEmployeeGroup(field!(group.name)),
    ];
    ACCOUNTS "DeleteEmployeeGroup" acc::DeleteEmployeeGroupRequest => Checked writes OwnFacts [Require::ManageEmployeeGroup(field!(name))];
    ACCOUNTS "AddEmployeeGroupMembers" acc::AddEmployeeGroupMembersRequest => Checked writes OwnFacts [
        Require::ManageBusinessIfCredential { group: field!(group), principals: list!(principals) },
        Require::ManageEmployeeGroup(field!(group)),
    ];
    ACCOUNTS "RemoveEmployeeGroupMembers" acc::RemoveEmployeeGroupMembersRequest => Checked writes OwnFacts [
        Require::ManageBusinessIfCredential { group: field!(group), principals: list!(principals) },
        Require::ManageEmployeeGroup(field!(group)),
    ];
    ACCOUNTS "ListAuditEvents" acc::ListAuditEventsRequest => Checked [manage(business(field!(parent)))];

    // ---- delegation
    DELEGATION "SendRelationshipRequest" del::SendRelationshipRequestRequest => Checked writes AccountsFacts
        [manage(business_as(field!(parent), "provider"))];
    DELEGATION "WithdrawRelationshipRequest" del::WithdrawRelationshipRequestRequest => Checked writes AccountsFacts
        [manage(child_as(field!(name), "sentRequests", "provider"))];
    DELEGATION "ListReceivedRequests" del::ListReceivedRequestsRequest => Checked
        [some_program(business_as(field!(parent), "client"))];
    DELEGATION "ListSentRequests" del::ListSentRequestsRequest => Checked
        [manage(business_as(field!(parent), "provider"))];
    DELEGATION "ApproveRelationshipRequest" del::ApproveRelationshipRequestRequest => Checked writes AccountsFacts [Require::Either {
        when: Condition {
            words: "`level` is PROGRAM and `program_accounts` is not empty",
            holds: |r: &R| r.level == del::RelationshipLevel::Program as i32 && !r.program_accounts.is_empty(),
        },
        then: vec![
            some_program(child_as(field!(name), "receivedRequests", "client")),
            Require::ManageEachProgram(list!(program_accounts)),
        ],
        otherwise: vec![manage(child_as(field!(name), "receivedRequests", "client"))],
    }];
    DELEGATION "RejectRelationshipRequest" del::RejectRelationshipRequestRequest => Checked writes AccountsFacts
        [Require::RejectRelationshipRequest(field!(name))];
    DELEGATION "GetRelationship" del::GetRelationshipRequest => Checked
        [some_program(child_as(field!(name), "relationships", "party (client or provider)"))];
    DELEGATION "ListRelationships" del::ListRelationshipsRequest => Checked [some_program(business(field!(parent)))];
    DELEGATION "UpdateRelationship" del::UpdateRelationshipRequest => Checked writes AccountsFacts
        [manage(child_as(field!(relationship.name), "relationships", "client"))];
    DELEGATION "EndRelationship" del::EndRelationshipRequest => Checked writes AccountsFacts
        [manage(child_as(field!(name), "relationships", "party (client or provider)"))];
    DELEGATION "CreateClientGroup" del::CreateClientGroupRequest => Checked writes AccountsFacts
        [manage(business_as(field!(parent), "provider"))];
    DELEGATION "GetClientGroup" del::GetClientGroupRequest => Checked
        [manage(child_as(field!(name), "clientGroups", "provider"))];
    DELEGATION "ListClientGroups" del::ListClientGroupsRequest => Checked
        [manage(business_as(field!(parent), "provider"))];
    DELEGATION "UpdateClientGroup" del::UpdateClientGroupRequest => Checked writes AccountsFacts
        [manage(child_as(field!(group.name), "clientGroups", "provider"))];
    DELEGATION "DeleteClientGroup" del::DeleteClientGroupRequest => Checked writes AccountsFacts
        [manage(child_as(field!(name), "clientGroups", "provider"))];
    DELEGATION "AddClientGroupClients" del::AddClientGroupClientsRequest => Checked writes AccountsFacts
        [manage(child_as(field!(group), "clientGroups", "provider"))];
    DELEGATION "RemoveClientGroupClients" del::RemoveClientGroupClientsRequest => Checked writes AccountsFacts
        [manage(child_as(field!(group), "clientGroups", "provider"))];
    DELEGATION "AssignToClient" del::AssignToClientRequest => Checked writes AccountsFacts
        [manage(business_as(field!(parent), "provider"))];
    DELEGATION "Unassign" del::UnassignRequest => Checked writes AccountsFacts
        [manage(child_as(field!(name), "assignments", "provider"))];
    DELEGATION "ListAssignments" del::ListAssignmentsRequest => Checked
        [manage(business_as(field!(parent), "provider"))];
    DELEGATION "ListAuditEvents" del::ListAuditEventsRequest => Checked [manage(business(field!(parent)))];
}

/// The caller acting on itself, on what `what` says.
fn itself<R>(what: &'static str) -> Require<R> {
    Require::Itself(what)
}

/// VIEW of the business a place names.
fn view<R>(place: Place<R>) -> Require<R> {
    Require::Act(Action::View, place)
}

/// MANAGE of the business a place names.
fn manage<R>(place: Place<R>) -> Require<R> {
    Require::Act(Action::Manage, place)
}

/// BAM of the business a place names, or PAM of one of its programs.
fn some_program<R>(place: Place<R>) -> Require<R> {
    Require::SomeProgram(place)
}

/// `businesses/{bn9}` in a field.
fn business<R>(field: Field<R>) -> Place<R> {
    Place::Business(field, "")
}

/// `businesses/{bn9}` in a field, the business playing the part `who`.
fn business_as<R>(field: Field<R>, who: &'static str) -> Place<R> {
    Place::Business(field, who)
}

/// The business of `businesses/{bn9}/{collection}/{id}` in a field.
fn child<R>(field: Field<R>, collection: &'static str) -> Place<R> {
    Place::Child {
        field,
        collection,
        who: "",
    }
}

/// The business of `businesses/{bn9}/{collection}/{id}` in a field, playing the part `who`.
fn child_as<R>(field: Field<R>, collection: &'static str, who: &'static str) -> Place<R> {
    Place::Child {
        field,
        collection,
        who,
    }
}
