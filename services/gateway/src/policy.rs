//! The policy table (R-GW-1): every RPC of the three public services, in one
//! place, mapped to what it needs — anonymous by name, self-service (R-AZ-0),
//! or the action(s) on the resource(s) read from the request message. Several
//! needs must all be allowed. An RPC missing here is denied (the table is
//! the only source of [`Policy`] impls, and a test walks the descriptor set so
//! that a new RPC cannot be served without an entry).
//!
//! `docs/policy.md` (at the repository root) is rendered from [`POLICY`] by a test.

use ccp_platform::auth::Principal;
use ccp_platform::error::{Error, FieldViolation};
use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{ProgramRole, RoleGrants};
use ccp_proto::delegation::v1 as del;
use ccp_proto::identity::v1 as idn;

use ccp_types::{Bn9, Bn15};

use crate::decide::{Action, Resource};

/// How an RPC is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No access token needed (the RPCs that establish authentication, and the T&C).
    Anonymous,
    /// A signed-in person acting on itself (R-AZ-0); needs a profile.
    SelfService,
    /// A signed-in person without a profile yet may call it (CreateProfile only, R-ID-2).
    ProfileCreation,
    /// Every [`Need`] read from the request must be allowed by `decide`.
    Checked,
}

impl Rule {
    /// Returns the rule as the rendered table writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::SelfService => "self (R-AZ-0)",
            Self::ProfileCreation => "self, profile not required (R-ID-2)",
            Self::Checked => "checked",
        }
    }
}

/// One thing a request needs to be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// An action on a business or program account, decided by [`crate::decide::decide`].
    Act {
        /// The action.
        action: Action,
        /// The resource.
        resource: Resource,
    },
    /// Managing some of a business's people or requests: a BAM of it, or a
    /// PAM of at least one of its programs (the service narrows to that scope).
    ManageSomeProgram(Bn9),
    /// Changing or removing a member: MANAGE of every program it holds a role
    /// on, and of the business when it is a BAM or a machine credential
    /// (read from the member's current role facts).
    ManageMember {
        /// The business.
        business: Bn9,
        /// The member.
        member: Principal,
    },
    /// Rejecting a received relationship request (R-DE-2): MANAGE of the
    /// client (BAM), or, when the request names program accounts, MANAGE of
    /// every one of them (PAM); read from the request's facts. An unknown
    /// request is denied (unless the caller is the client's BAM).
    RejectRelationshipRequest {
        /// The client, from the request's name.
        client: Bn9,
        /// The request's resource name.
        name: String,
    },
    /// Changing an existing employee group (R-AC-6): MANAGE of the business
    /// (BAM), or MANAGE of every program the group covers now (PAM), read
    /// from accounts' group facts. A group that is unknown, covers no
    /// program or is not the business's is denied (unless the caller is its BAM).
    ManageEmployeeGroup {
        /// The business, from the group's name.
        business: Bn9,
        /// The group's resource name.
        name: String,
    },
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy)]
pub struct PolicyEntry {
    /// The fully qualified service, e.g. `ccp.accounts.v1.Accounts`.
    pub service: &'static str,
    /// The RPC's name, e.g. `GetBusiness`.
    pub method: &'static str,
    /// How it is admitted.
    pub rule: Rule,
    /// What it needs, in words (rendered into `docs/policy.md`).
    pub needs: &'static str,
    /// The Rust type of its request message.
    pub request_type: fn() -> &'static str,
}

/// A request message whose RPC has a policy entry.
pub trait Policy {
    /// The entry's service.
    const SERVICE: &'static str;
    /// The entry's RPC name.
    const METHOD: &'static str;
    /// How it is admitted.
    const RULE: Rule;
    /// Returns what the request needs (Checked rules), or INVALID_ARGUMENT
    /// naming a field that does not name a resource.
    fn needs(&self) -> Result<Vec<Need>, Error>;
}

const IDENTITY: &str = "ccp.identity.v1.Identity";
const ACCOUNTS: &str = "ccp.accounts.v1.Accounts";
const DELEGATION: &str = "ccp.delegation.v1.Delegation";

macro_rules! policy_table {
    ( $( $service:ident $method:literal $req:ty => $rule:ident, $doc:literal, |$r:ident| $body:expr ; )* ) => {
        /// The policy table: one row per public RPC.
        pub static POLICY: &[PolicyEntry] = &[
            $( PolicyEntry {
                service: $service,
                method: $method,
                rule: Rule::$rule,
                needs: $doc,
                request_type: std::any::type_name::<$req>,
            }, )*
        ];

        $(
            impl Policy for $req {
                const SERVICE: &'static str = $service;
                const METHOD: &'static str = $method;
                const RULE: Rule = Rule::$rule;
                fn needs(&self) -> Result<Vec<Need>, Error> {
                    #[allow(unused_variables)]
                    fn read($r: &$req) -> Result<Vec<Need>, FieldViolation> {
                        $body
                    }
                    read(self).map_err(|v| Error::invalid(vec![v]))
                }
            }
        )*
    };
}

policy_table! {
    // ---- identity
    IDENTITY "SignIn" idn::SignInRequest => Anonymous, "", |r| none();
    IDENTITY "RefreshSession" idn::RefreshSessionRequest => Anonymous, "", |r| none();
    IDENTITY "SignOut" idn::SignOutRequest => SelfService, "the caller's own session", |r| none();
    IDENTITY "GetSigningKeys" idn::GetSigningKeysRequest => Anonymous, "", |r| none();
    IDENTITY "CreateProfile" idn::CreateProfileRequest => ProfileCreation, "the caller's own profile", |r| none();
    IDENTITY "GetMyProfile" idn::GetMyProfileRequest => SelfService, "the caller's own profile", |r| none();
    IDENTITY "UpdateMyProfile" idn::UpdateMyProfileRequest => SelfService, "the caller's own profile", |r| none();
    IDENTITY "CreateMachineCredential" idn::CreateMachineCredentialRequest => Checked,
        "MANAGE `parent` (BAM)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
    IDENTITY "ListMachineCredentials" idn::ListMachineCredentialsRequest => Checked,
        "MANAGE `parent` (BAM)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
    IDENTITY "RevokeMachineCredential" idn::RevokeMachineCredentialRequest => Checked,
        "MANAGE the business of `name` (BAM)",
        |r| Ok(vec![manage(child(&r.name, "name", "machineCredentials")?)]);
    IDENTITY "IssueMachineToken" idn::IssueMachineTokenRequest => Anonymous, "", |r| none();
    IDENTITY "ListAuditEvents" idn::ListAuditEventsRequest => Checked,
        "`profiles/me`: the caller itself; `businesses/{bn9}`: MANAGE it (BAM)",
        |r| if r.parent == "profiles/me" { Ok(vec![]) } else { Ok(vec![manage(business(&r.parent, "parent")?)]) };

    // ---- accounts
    ACCOUNTS "GetTermsAndConditions" acc::GetTermsAndConditionsRequest => Anonymous, "", |r| none();
    ACCOUNTS "GetRegistrationChallenge" acc::GetRegistrationChallengeRequest => SelfService,
        "registering a business", |r| none();
    ACCOUNTS "RegisterBusiness" acc::RegisterBusinessRequest => SelfService, "registering a business", |r| none();
    ACCOUNTS "GetBusiness" acc::GetBusinessRequest => Checked,
        "VIEW `name` (any member; an active provider)", |r| Ok(vec![view(business(&r.name, "name")?)]);
    ACCOUNTS "ListProgramAccounts" acc::ListProgramAccountsRequest => Checked,
        "VIEW `parent`", |r| Ok(vec![view(business(&r.parent, "parent")?)]);
    ACCOUNTS "ListMyBusinesses" acc::ListMyBusinessesRequest => SelfService, "the caller's own businesses", |r| none();
    ACCOUNTS "RequestEmployeeAccess" acc::RequestEmployeeAccessRequest => SelfService,
        "the caller's own request", |r| none();
    ACCOUNTS "WithdrawEmployeeRequest" acc::WithdrawEmployeeRequestRequest => SelfService,
        "the caller's own request (accounts checks the requester)", |r| none();
    ACCOUNTS "ListEmployeeRequests" acc::ListEmployeeRequestsRequest => Checked,
        "BAM, or PAM of a program of `parent`", |r| Ok(vec![some_program(business(&r.parent, "parent")?)]);
    ACCOUNTS "ListMyEmployeeRequests" acc::ListMyEmployeeRequestsRequest => SelfService,
        "the caller's own requests", |r| none();
    ACCOUNTS "ApproveEmployeeRequest" acc::ApproveEmployeeRequestRequest => Checked,
        "BAM or PAM of `name`'s business; MANAGE the business when granting BAM; MANAGE each program granted",
        |r| grants(child(&r.name, "name", "employeeRequests")?, r.grants.as_ref(), "grants");
    ACCOUNTS "RejectEmployeeRequest" acc::RejectEmployeeRequestRequest => Checked,
        "BAM, or PAM of a program of `name`'s business",
        |r| Ok(vec![some_program(child(&r.name, "name", "employeeRequests")?)]);
    ACCOUNTS "ListEmployees" acc::ListEmployeesRequest => Checked,
        "BAM, or PAM of a program of `parent`; MANAGE `program_account` when set",
        |r| {
            let bn = business(&r.parent, "parent")?;
            let mut needs = vec![some_program(bn)];
            if !r.program_account.is_empty() {
                needs.push(manage(Resource::Program(bn15(&r.program_account, "program_account")?)));
            }
            Ok(needs)
        };
    ACCOUNTS "GetMember" acc::GetMemberRequest => Checked,
        "BAM, or PAM of a program of `name`'s business",
        |r| Ok(vec![some_program(member(&r.name, "name")?.0)]);
    ACCOUNTS "SetMemberRoles" acc::SetMemberRolesRequest => Checked,
        "MANAGE every program the member holds now and every program granted; MANAGE the business for BAM, credentials",
        |r| {
            let (bn, who) = member(&r.name, "name")?;
            let mut needs = grants(bn.clone(), r.grants.as_ref(), "grants")?;
            needs.push(Need::ManageMember { business: bn, member: who });
            Ok(needs)
        };
    ACCOUNTS "RemoveMember" acc::RemoveMemberRequest => Checked,
        "MANAGE every program the member holds; MANAGE the business for a BAM or a credential",
        |r| {
            let (bn, who) = member(&r.name, "name")?;
            Ok(vec![some_program(bn.clone()), Need::ManageMember { business: bn, member: who }])
        };
    ACCOUNTS "CreateEmployeeGroup" acc::CreateEmployeeGroupRequest => Checked,
        "BAM, or PAM of a program of `parent`; MANAGE each program of `group.roles`",
        |r| {
            let bn = business(&r.parent, "parent")?;
            let mut needs = vec![some_program(bn)];
            if let Some(group) = &r.group {
                needs.extend(program_roles(&group.roles, "group.roles")?);
            }
            Ok(needs)
        };
    ACCOUNTS "GetEmployeeGroup" acc::GetEmployeeGroupRequest => Checked,
        "BAM, or PAM of a program of `name`'s business",
        |r| Ok(vec![some_program(child(&r.name, "name", "employeeGroups")?)]);
    ACCOUNTS "ListEmployeeGroups" acc::ListEmployeeGroupsRequest => Checked,
        "BAM, or PAM of a program of `parent`", |r| Ok(vec![some_program(business(&r.parent, "parent")?)]);
    // Changing an existing group touches the programs it holds now, which the
    // request does not name: they are read from accounts' group facts.
    ACCOUNTS "UpdateEmployeeGroup" acc::UpdateEmployeeGroupRequest => Checked,
        "MANAGE each program of `group.roles`; and MANAGE the business of `group.name` (BAM) or every program the group covers now (read from accounts' group facts: PAM); an unknown group or one covering no program: BAM only",
        |r| {
            let name = r.group.as_ref().map_or("", |g| g.name.as_str());
            let business = child(name, "group.name", "employeeGroups")?;
            let mut needs = program_roles(r.group.as_ref().map_or(&[][..], |g| &g.roles), "group.roles")?;
            needs.push(Need::ManageEmployeeGroup { business, name: name.to_owned() });
            Ok(needs)
        };
    ACCOUNTS "DeleteEmployeeGroup" acc::DeleteEmployeeGroupRequest => Checked,
        "MANAGE the business of `name` (BAM) or every program the group covers (read from accounts' group facts: PAM); an unknown group or one covering no program: BAM only",
        |r| Ok(vec![Need::ManageEmployeeGroup {
            business: child(&r.name, "name", "employeeGroups")?,
            name: r.name.clone(),
        }]);
    ACCOUNTS "AddEmployeeGroupMembers" acc::AddEmployeeGroupMembersRequest => Checked,
        "MANAGE the business of `group` (BAM) or every program the group covers (read from accounts' group facts: PAM); an unknown group or one covering no program: BAM only; MANAGE the business when a principal is a machine credential",
        |r| group_members(&r.group, &r.principals);
    ACCOUNTS "RemoveEmployeeGroupMembers" acc::RemoveEmployeeGroupMembersRequest => Checked,
        "MANAGE the business of `group` (BAM) or every program the group covers (read from accounts' group facts: PAM); an unknown group or one covering no program: BAM only; MANAGE the business when a principal is a machine credential",
        |r| group_members(&r.group, &r.principals);
    ACCOUNTS "ListAuditEvents" acc::ListAuditEventsRequest => Checked,
        "MANAGE `parent` (BAM: audit export)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);

    // ---- delegation
    DELEGATION "SendRelationshipRequest" del::SendRelationshipRequestRequest => Checked,
        "MANAGE `parent`, the provider (BAM)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
    DELEGATION "WithdrawRelationshipRequest" del::WithdrawRelationshipRequestRequest => Checked,
        "MANAGE the provider of `name` (`sentRequests`)", |r| Ok(vec![manage(child(&r.name, "name", "sentRequests")?)]);
    DELEGATION "ListReceivedRequests" del::ListReceivedRequestsRequest => Checked,
        "BAM, or PAM of a program of `parent` (the client)", |r| Ok(vec![some_program(business(&r.parent, "parent")?)]);
    DELEGATION "ListSentRequests" del::ListSentRequestsRequest => Checked,
        "MANAGE `parent`, the provider (BAM)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
    DELEGATION "ApproveRelationshipRequest" del::ApproveRelationshipRequestRequest => Checked,
        "business level: MANAGE the client of `name` (BAM); program level: BAM or PAM of the client and MANAGE each program",
        |r| {
            let client = child(&r.name, "name", "receivedRequests")?;
            if r.level == del::RelationshipLevel::Program as i32 && !r.program_accounts.is_empty() {
                let mut needs = vec![some_program(client)];
                for (i, p) in r.program_accounts.iter().enumerate() {
                    needs.push(manage(Resource::Program(bn15(p, &format!("program_accounts[{i}]"))?)));
                }
                Ok(needs)
            } else {
                Ok(vec![manage(client)])
            }
        };
    DELEGATION "RejectRelationshipRequest" del::RejectRelationshipRequestRequest => Checked,
        "MANAGE the client of `name` (BAM); or, when the request (read from delegation's request facts) names program accounts, MANAGE every one of them (PAM); an unknown request: BAM only",
        |r| Ok(vec![Need::RejectRelationshipRequest {
            client: child(&r.name, "name", "receivedRequests")?,
            name: r.name.clone(),
        }]);
    DELEGATION "GetRelationship" del::GetRelationshipRequest => Checked,
        "BAM, or PAM of a program of `name`'s business (the side named)",
        |r| Ok(vec![some_program(child(&r.name, "name", "relationships")?)]);
    DELEGATION "ListRelationships" del::ListRelationshipsRequest => Checked,
        "BAM, or PAM of a program of `parent`", |r| Ok(vec![some_program(business(&r.parent, "parent")?)]);
    DELEGATION "UpdateRelationship" del::UpdateRelationshipRequest => Checked,
        "MANAGE the business of `relationship.name` (the client's BAM)",
        |r| Ok(vec![manage(child(r.relationship.as_ref().map_or("", |x| x.name.as_str()), "relationship.name", "relationships")?)]);
    DELEGATION "EndRelationship" del::EndRelationshipRequest => Checked,
        "MANAGE the business of `name` (either side's BAM)", |r| Ok(vec![manage(child(&r.name, "name", "relationships")?)]);
    DELEGATION "CreateClientGroup" del::CreateClientGroupRequest => Checked,
        "MANAGE `parent`, the provider (BAM)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
    DELEGATION "GetClientGroup" del::GetClientGroupRequest => Checked,
        "MANAGE the provider of `name` (BAM)", |r| Ok(vec![manage(child(&r.name, "name", "clientGroups")?)]);
    DELEGATION "ListClientGroups" del::ListClientGroupsRequest => Checked,
        "MANAGE `parent`, the provider (BAM)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
    DELEGATION "UpdateClientGroup" del::UpdateClientGroupRequest => Checked,
        "MANAGE the provider of `group.name` (BAM)",
        |r| Ok(vec![manage(child(r.group.as_ref().map_or("", |g| g.name.as_str()), "group.name", "clientGroups")?)]);
    DELEGATION "DeleteClientGroup" del::DeleteClientGroupRequest => Checked,
        "MANAGE the provider of `name` (BAM)", |r| Ok(vec![manage(child(&r.name, "name", "clientGroups")?)]);
    DELEGATION "AddClientGroupClients" del::AddClientGroupClientsRequest => Checked,
        "MANAGE the provider of `group` (BAM)", |r| Ok(vec![manage(child(&r.group, "group", "clientGroups")?)]);
    DELEGATION "RemoveClientGroupClients" del::RemoveClientGroupClientsRequest => Checked,
        "MANAGE the provider of `group` (BAM)", |r| Ok(vec![manage(child(&r.group, "group", "clientGroups")?)]);
    DELEGATION "AssignToClient" del::AssignToClientRequest => Checked,
        "MANAGE `parent`, the provider (BAM)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
    DELEGATION "Unassign" del::UnassignRequest => Checked,
        "MANAGE the provider of `name` (BAM)", |r| Ok(vec![manage(child(&r.name, "name", "assignments")?)]);
    DELEGATION "ListAssignments" del::ListAssignmentsRequest => Checked,
        "MANAGE `parent`, the provider (BAM)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
    DELEGATION "ListAuditEvents" del::ListAuditEventsRequest => Checked,
        "MANAGE `parent` (BAM: audit export)", |r| Ok(vec![manage(business(&r.parent, "parent")?)]);
}

/// Returns the entry of `service`/`method`, or None (then the call is denied).
pub fn entry(service: &str, method: &str) -> Option<&'static PolicyEntry> {
    POLICY
        .iter()
        .find(|e| e.service == service && e.method == method)
}

fn none() -> Result<Vec<Need>, FieldViolation> {
    Ok(Vec::new())
}

fn view(resource: impl Into<Resource>) -> Need {
    Need::Act {
        action: Action::View,
        resource: resource.into(),
    }
}

fn manage(resource: impl Into<Resource>) -> Need {
    Need::Act {
        action: Action::Manage,
        resource: resource.into(),
    }
}

fn some_program(bn: Bn9) -> Need {
    Need::ManageSomeProgram(bn)
}

impl From<Bn9> for Resource {
    fn from(bn: Bn9) -> Self {
        Self::Business(bn)
    }
}

fn bad(field: &str, why: &str) -> FieldViolation {
    FieldViolation::new(field, why)
}

fn bn9(text: &str, field: &str) -> Result<Bn9, FieldViolation> {
    Bn9::try_new(text).ok_or_else(|| bad(field, "must be a valid 9-digit business number"))
}

fn bn15(text: &str, field: &str) -> Result<Bn15, FieldViolation> {
    Bn15::try_new(text).ok_or_else(|| {
        bad(
            field,
            "must be a program account number such as 123456782RM0001",
        )
    })
}

/// Parses `businesses/{bn9}`.
pub fn business(name: &str, field: &str) -> Result<Bn9, FieldViolation> {
    match name.strip_prefix("businesses/") {
        Some(rest) if !rest.contains('/') => bn9(rest, field),
        _ => Err(bad(field, "must be businesses/{bn9}")),
    }
}

/// Parses `businesses/{bn9}/{collection}/{id}` and returns the BN9.
fn child(name: &str, field: &str, collection: &str) -> Result<Bn9, FieldViolation> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["businesses", bn, c, id] if *c == collection && !id.is_empty() => bn9(bn, field),
        _ => Err(bad(
            field,
            &format!("must be businesses/{{bn9}}/{collection}/{{id}}"),
        )),
    }
}

/// Parses `businesses/{bn9}/members/{principal}`.
fn member(name: &str, field: &str) -> Result<(Bn9, Principal), FieldViolation> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["businesses", bn, "members", who] => {
            let who = who.parse().map_err(|_| {
                bad(
                    field,
                    "must name a member person:<uuid> or credential:<uuid>",
                )
            })?;
            Ok((bn9(bn, field)?, who))
        }
        _ => Err(bad(field, "must be businesses/{bn9}/members/{principal}")),
    }
}

/// MANAGE of each program named in `roles`.
fn program_roles(roles: &[ProgramRole], field: &str) -> Result<Vec<Need>, FieldViolation> {
    roles
        .iter()
        .enumerate()
        .map(|(i, role)| {
            let p = bn15(
                &role.program_account,
                &format!("{field}[{i}].program_account"),
            )?;
            Ok(manage(Resource::Program(p)))
        })
        .collect()
}

/// Adding principals to or removing them from the employee group `group`:
/// MANAGE of the business when one is a machine credential (a credential acts
/// with the roles its BAM gives it, R-ID-4), then the group's own need.
fn group_members(group: &str, principals: &[String]) -> Result<Vec<Need>, FieldViolation> {
    let business = child(group, "group", "employeeGroups")?;
    let mut needs = Vec::new();
    for (i, p) in principals.iter().enumerate() {
        let p: Principal = p
            .parse()
            .map_err(|_| bad(&format!("principals[{i}]"), "is not a principal"))?;
        if !p.is_person() {
            needs.push(manage(business.clone()));
            break;
        }
    }
    needs.push(Need::ManageEmployeeGroup {
        business,
        name: group.to_owned(),
    });
    Ok(needs)
}

/// Granting roles in `bn`: BAM or a PAM of it, MANAGE of the business for
/// BAM, MANAGE of each program granted.
fn grants(bn: Bn9, grants: Option<&RoleGrants>, field: &str) -> Result<Vec<Need>, FieldViolation> {
    let mut needs = vec![some_program(bn.clone())];
    if let Some(grants) = grants {
        if grants.business_manager {
            needs.push(manage(bn));
        }
        needs.extend(program_roles(
            &grants.program_roles,
            &format!("{field}.program_roles"),
        )?);
    }
    Ok(needs)
}

/// Renders the table as Markdown (`docs/policy.md`).
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Gateway policy table\n\n\
         Generated from `services/gateway/src/policy.rs` by the test \
         `policy::tests::docs_policy_md_is_up_to_date`; do not edit by hand.\n\n\
         Every public RPC is admitted by one rule. `anonymous`: no token needed. \
         `self`: a signed-in person with a profile acting on itself (R-AZ-0); \
         a session without a profile may only call CreateProfile (R-ID-2). \
         `checked`: every need listed must be allowed by the decision function \
         (R-AZ-1..6) from role and relationship facts; several needs must all \
         hold. Anything else is denied. A denied call answers a bare \
         PERMISSION_DENIED.\n\n\
         | service | RPC | rule | needs |\n|---|---|---|---|\n",
    );
    for e in POLICY {
        let service = e.service.rsplit('.').next().unwrap_or(e.service);
        out.push_str(&format!(
            "| {service} | {} | {} | {} |\n",
            e.method,
            e.rule.as_str(),
            e.needs.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use prost::Message as _;

    use super::*;

    fn public_rpcs() -> BTreeSet<(String, String, String)> {
        let set = prost_types::FileDescriptorSet::decode(ccp_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut rpcs = BTreeSet::new();
        for file in &set.file {
            for service in &file.service {
                let full = format!("{}.{}", file.package(), service.name());
                if ccp_proto::PUBLIC_SERVICES.contains(&full.as_str()) {
                    for method in &service.method {
                        rpcs.insert((
                            full.clone(),
                            method.name().to_owned(),
                            method.input_type().trim_start_matches('.').to_owned(),
                        ));
                    }
                }
            }
        }
        rpcs
    }

    #[test]
    fn r_gw_1_every_public_rpc_has_exactly_one_policy_entry() {
        let rpcs = public_rpcs();
        assert!(
            rpcs.len() > 50,
            "descriptor walk found only {} rpcs",
            rpcs.len()
        );
        let mut missing = Vec::new();
        for (service, method, input) in &rpcs {
            let entries: Vec<_> = POLICY
                .iter()
                .filter(|e| e.service == service && e.method == method)
                .collect();
            match entries.as_slice() {
                [e] => {
                    let rust = (e.request_type)()
                        .trim_start_matches("ccp_proto::")
                        .replace("::", ".");
                    assert_eq!(
                        format!("ccp.{rust}"),
                        *input,
                        "{service}/{method} request type"
                    );
                }
                [] => missing.push(format!("{service}/{method}")),
                _ => panic!("{service}/{method} has {} entries", entries.len()),
            }
        }
        assert!(
            missing.is_empty(),
            "RPCs without a policy entry: {missing:?}"
        );
        for e in POLICY {
            assert!(
                rpcs.iter().any(|(s, m, _)| s == e.service && m == e.method),
                "policy entry {}/{} names no RPC",
                e.service,
                e.method
            );
        }
    }

    #[test]
    fn r_gw_1_only_the_authentication_rpcs_and_the_terms_are_anonymous() {
        let anonymous: BTreeSet<&str> = POLICY
            .iter()
            .filter(|e| e.rule == Rule::Anonymous)
            .map(|e| e.method)
            .collect();
        let expected: BTreeSet<&str> = [
            "SignIn",
            "RefreshSession",
            "IssueMachineToken",
            "GetSigningKeys",
            "GetTermsAndConditions",
        ]
        .into_iter()
        .collect();
        assert_eq!(anonymous, expected);
        let profile_less: Vec<&str> = POLICY
            .iter()
            .filter(|e| e.rule == Rule::ProfileCreation)
            .map(|e| e.method)
            .collect();
        assert_eq!(profile_less, ["CreateProfile"]);
    }

    #[test]
    fn r_gw_1_approving_grants_on_two_programs_needs_manage_on_both() {
        let req = acc::ApproveEmployeeRequestRequest {
            name: "businesses/123456782/employeeRequests/x".into(),
            grants: Some(RoleGrants {
                business_manager: true,
                program_roles: vec![
                    ProgramRole {
                        program_account: "123456782RM0001".into(),
                        role: 2,
                    },
                    ProgramRole {
                        program_account: "123456782RM0002".into(),
                        role: 1,
                    },
                ],
            }),
            ..Default::default()
        };
        let needs = req.needs().unwrap();
        let bn = Bn9::try_new("123456782").unwrap();
        assert!(needs.contains(&Need::ManageSomeProgram(bn.clone())));
        assert!(needs.contains(&manage(bn)));
        for p in ["123456782RM0001", "123456782RM0002"] {
            assert!(needs.contains(&manage(Resource::Program(Bn15::try_new(p).unwrap()))));
        }
    }

    #[test]
    fn r_gw_1_a_delegation_name_gives_the_acting_side() {
        let req = del::WithdrawRelationshipRequestRequest {
            name: "businesses/100000009/sentRequests/abc".into(),
            ..Default::default()
        };
        assert_eq!(
            req.needs().unwrap(),
            vec![manage(Bn9::try_new("100000009").unwrap())]
        );
        let wrong_side = del::WithdrawRelationshipRequestRequest {
            name: "businesses/100000009/receivedRequests/abc".into(),
            ..Default::default()
        };
        let err = wrong_side.needs().unwrap_err();
        assert_eq!(err.violations()[0].field, "name");
    }

    #[test]
    fn r_ac_6_changing_a_group_needs_the_groups_programs_and_those_of_the_new_roles() {
        let bn = Bn9::try_new("123456782").unwrap();
        let name = "businesses/123456782/employeeGroups/g".to_owned();
        let group = Need::ManageEmployeeGroup {
            business: bn.clone(),
            name: name.clone(),
        };
        let update = acc::UpdateEmployeeGroupRequest {
            group: Some(acc::EmployeeGroup {
                name: name.clone(),
                roles: vec![ProgramRole {
                    program_account: "123456782RM0002".into(),
                    role: 1,
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            update.needs().unwrap(),
            vec![
                manage(Resource::Program(Bn15::try_new("123456782RM0002").unwrap())),
                group.clone()
            ]
        );
        let delete = acc::DeleteEmployeeGroupRequest {
            name: name.clone(),
            ..Default::default()
        };
        assert_eq!(delete.needs().unwrap(), vec![group.clone()]);
        let person = format!("person:{}", uuid::Uuid::new_v4());
        let add = acc::AddEmployeeGroupMembersRequest {
            group: name.clone(),
            principals: vec![person.clone()],
            ..Default::default()
        };
        assert_eq!(add.needs().unwrap(), vec![group.clone()]);
        // A machine credential's roles are the BAM's to give (R-ID-4).
        let remove = acc::RemoveEmployeeGroupMembersRequest {
            group: name,
            principals: vec![person, format!("credential:{}", uuid::Uuid::new_v4())],
            ..Default::default()
        };
        assert_eq!(remove.needs().unwrap(), vec![manage(bn), group]);
        let bad = acc::AddEmployeeGroupMembersRequest {
            group: "businesses/123456782/employeeGroups/g".into(),
            principals: vec!["nobody".into()],
            ..Default::default()
        };
        assert_eq!(
            bad.needs().unwrap_err().violations()[0].field,
            "principals[0]"
        );
    }

    #[test]
    fn r_in_1_a_bad_resource_name_names_the_field() {
        let req = acc::GetBusinessRequest {
            name: "businesses/123456789".into(),
        };
        assert_eq!(req.needs().unwrap_err().violations()[0].field, "name");
        let req = acc::ApproveEmployeeRequestRequest {
            name: "businesses/123456782/employeeRequests/x".into(),
            grants: Some(RoleGrants {
                business_manager: false,
                program_roles: vec![ProgramRole {
                    program_account: "nope".into(),
                    role: 2,
                }],
            }),
            ..Default::default()
        };
        assert_eq!(
            req.needs().unwrap_err().violations()[0].field,
            "grants.program_roles[0].program_account"
        );
    }

    #[test]
    fn docs_policy_md_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md");
        let rendered = render_markdown();
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != rendered {
            if std::env::var_os("CCP_UPDATE_DOCS").is_some() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, rendered).unwrap();
            } else {
                panic!(
                    "{} is stale: run `CCP_UPDATE_DOCS=1 cargo test -p ccp-gateway docs_policy_md` and commit it",
                    path.display()
                );
            }
        }
    }
}
