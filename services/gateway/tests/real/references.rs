//! One reference vocabulary (R-IN-1): every request field that names a
//! business or a program account takes the resource name
//! (`businesses/123456782`, `businesses/123456782/programAccounts/RM0001`)
//! and the bare number (`123456782`, `123456782RM0001`) alike, at the gateway
//! (its policy table reads them) and in the services.
//!
//! The fields are found in the contracts themselves: a string field of a
//! public request (or of a message inside one) whose comment says `BN9`,
//! `BN15` or `` `businesses/{bn9}` `` names a business or a program account,
//! so a new field cannot be missed by the table below.

use std::collections::{BTreeSet, HashMap};

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{Action as PAction, ProgramRole, Role};
use ccp_proto::delegation::v1 as del;
use ccp_proto::gateway::v1 as gw;
use ccp_proto::identity::v1 as idn;
use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorSet, field_descriptor_proto::Type};
use tonic::{Code, Status};

use crate::harness::{Suite, memory_context};
use crate::world::{self, ABC, ITN, Kind, MAPLE, World, req, rm};

/// What a field names, and which one the table's request names.
#[derive(Debug, Clone, Copy)]
enum Ref {
    /// A business, by BN9.
    Business(&'static str),
    /// A program account: BN9 and program number.
    Program(&'static str, u32),
}

impl Ref {
    fn name(self) -> String {
        match self {
            Ref::Business(bn) => format!("businesses/{bn}"),
            Ref::Program(bn, n) => format!("businesses/{bn}/programAccounts/RM{n:04}"),
        }
    }

    fn bare(self) -> String {
        match self {
            Ref::Business(bn) => bn.to_owned(),
            Ref::Program(bn, n) => rm(bn, n),
        }
    }

    /// A reference that parses in neither form (a bad check digit).
    fn bad(self) -> String {
        match self {
            Ref::Business(_) => "businesses/123456789".to_owned(),
            Ref::Program(_, _) => "123456789RM0001".to_owned(),
        }
    }
}

/// One input field naming a business or a program account: the RPC, the
/// field's path, what the table's request puts there, and who calls.
struct Row {
    rpc: &'static str,
    field: &'static str,
    value: Ref,
    who: Kind,
}

const fn row(rpc: &'static str, field: &'static str, value: Ref, who: Kind) -> Row {
    Row {
        rpc,
        field,
        value,
        who,
    }
}

const B_ABC: Ref = Ref::Business(ABC);
const B_ITN: Ref = Ref::Business(ITN);
const B_MAPLE: Ref = Ref::Business(MAPLE);
const P_ABC1: Ref = Ref::Program(ABC, 1);

/// Every input field naming a business or a program account.
const ROWS: &[Row] = &[
    row(
        "Identity/CreateMachineCredential",
        "parent",
        B_ABC,
        Kind::Bam,
    ),
    row(
        "Identity/ListMachineCredentials",
        "parent",
        B_ABC,
        Kind::Bam,
    ),
    row("Identity/ListAuditEvents", "parent", B_ABC, Kind::Bam),
    row(
        "Accounts/GetRegistrationChallenge",
        "program_account",
        P_ABC1,
        Kind::Orphan,
    ),
    row(
        "Accounts/RegisterBusiness",
        "program_account",
        P_ABC1,
        Kind::Orphan,
    ),
    row("Accounts/GetBusiness", "name", B_ABC, Kind::Bam),
    row("Accounts/ListProgramAccounts", "parent", B_ABC, Kind::Bam),
    row(
        "Accounts/RequestEmployeeAccess",
        "parent",
        B_ABC,
        Kind::Orphan,
    ),
    row("Accounts/ListEmployeeRequests", "parent", B_ABC, Kind::Bam),
    row(
        "Accounts/ApproveEmployeeRequest",
        "grants.program_roles.program_account",
        P_ABC1,
        Kind::Bam,
    ),
    row("Accounts/ListEmployees", "parent", B_ABC, Kind::Bam),
    row(
        "Accounts/ListEmployees",
        "program_account",
        P_ABC1,
        Kind::Bam,
    ),
    row(
        "Accounts/SetMemberRoles",
        "grants.program_roles.program_account",
        P_ABC1,
        Kind::Bam,
    ),
    row("Accounts/CreateEmployeeGroup", "parent", B_ABC, Kind::Bam),
    row(
        "Accounts/CreateEmployeeGroup",
        "group.roles.program_account",
        P_ABC1,
        Kind::Bam,
    ),
    row("Accounts/ListEmployeeGroups", "parent", B_ABC, Kind::Bam),
    row(
        "Accounts/UpdateEmployeeGroup",
        "group.roles.program_account",
        P_ABC1,
        Kind::Bam,
    ),
    row("Accounts/ListAuditEvents", "parent", B_ABC, Kind::Bam),
    row(
        "Delegation/SendRelationshipRequest",
        "parent",
        B_ITN,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/SendRelationshipRequest",
        "client",
        B_MAPLE,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/SendRelationshipRequest",
        "program_accounts",
        Ref::Program(MAPLE, 1),
        Kind::ProviderBam,
    ),
    row(
        "Delegation/ListReceivedRequests",
        "parent",
        B_ABC,
        Kind::Bam,
    ),
    row(
        "Delegation/ListSentRequests",
        "parent",
        B_ITN,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/ApproveRelationshipRequest",
        "program_accounts",
        P_ABC1,
        Kind::Bam,
    ),
    row("Delegation/ListRelationships", "parent", B_ABC, Kind::Bam),
    row(
        "Delegation/UpdateRelationship",
        "relationship.program_accounts",
        P_ABC1,
        Kind::Bam,
    ),
    row(
        "Delegation/CreateClientGroup",
        "parent",
        B_ITN,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/CreateClientGroup",
        "group.clients",
        B_MAPLE,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/ListClientGroups",
        "parent",
        B_ITN,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/AddClientGroupClients",
        "clients",
        B_MAPLE,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/RemoveClientGroupClients",
        "clients",
        B_ABC,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/AssignToClient",
        "parent",
        B_ITN,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/AssignToClient",
        "assignment.client",
        B_ABC,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/ListAssignments",
        "parent",
        B_ITN,
        Kind::ProviderBam,
    ),
    row(
        "Delegation/ListAssignments",
        "client",
        B_ABC,
        Kind::ProviderBam,
    ),
    row("Delegation/ListAuditEvents", "parent", B_ABC, Kind::Bam),
    row("Authorization/Check", "item.resource", B_ABC, Kind::Bam),
    row("Authorization/Check", "item.resource", P_ABC1, Kind::Bam),
    row("Authorization/Check", "item.submitted_by", B_ITN, Kind::Bam),
    row(
        "Authorization/BatchCheck",
        "items.resource",
        P_ABC1,
        Kind::Bam,
    ),
    row(
        "Authorization/BatchCheck",
        "items.submitted_by",
        B_ITN,
        Kind::Bam,
    ),
    row("Authorization/Explain", "item.resource", P_ABC1, Kind::Bam),
    row(
        "Authorization/Explain",
        "item.submitted_by",
        B_ITN,
        Kind::Bam,
    ),
];

/// Fields whose comment names a business but that a request does not read,
/// with the reason.
const NOT_READ: &[(&str, &str, &str)] = &[
    (
        "Delegation/UpdateRelationship",
        "relationship.provider",
        "the parties never change; the name identifies the relationship",
    ),
    (
        "Delegation/UpdateRelationship",
        "relationship.client",
        "the parties never change; the name identifies the relationship",
    ),
    (
        "Delegation/UpdateClientGroup",
        "group.clients",
        "UpdateClientGroup changes `display_name` only",
    ),
];

/// The public services whose requests are walked (the gateway's own too).
fn services() -> Vec<&'static str> {
    let mut s = ccp_proto::PUBLIC_SERVICES.to_vec();
    s.push("ccp.gateway.v1.Authorization");
    s
}

fn names_a_reference(comment: &str) -> bool {
    comment.contains("BN9") || comment.contains("BN15") || comment.contains("`businesses/{bn9}`")
}

/// Every message by full name, with the leading comment of each field.
fn messages(set: &FileDescriptorSet) -> HashMap<String, (DescriptorProto, Vec<String>)> {
    fn collect(
        out: &mut HashMap<String, (DescriptorProto, Vec<String>)>,
        comments: &HashMap<Vec<i32>, String>,
        scope: &str,
        m: &DescriptorProto,
        path: &[i32],
    ) {
        let full = format!("{scope}.{}", m.name());
        let field_comments = (0..m.field.len())
            .map(|j| {
                let mut p = path.to_vec();
                p.extend([2, i32::try_from(j).unwrap()]);
                comments.get(&p).cloned().unwrap_or_default()
            })
            .collect();
        for (k, nested) in m.nested_type.iter().enumerate() {
            let mut p = path.to_vec();
            p.extend([3, i32::try_from(k).unwrap()]);
            collect(out, comments, &full, nested, &p);
        }
        out.insert(full, (m.clone(), field_comments));
    }
    let mut out = HashMap::new();
    for file in &set.file {
        let comments: HashMap<Vec<i32>, String> = file
            .source_code_info
            .iter()
            .flat_map(|s| &s.location)
            .map(|l| (l.path.clone(), l.leading_comments().to_owned()))
            .collect();
        for (i, m) in file.message_type.iter().enumerate() {
            let scope = format!(".{}", file.package());
            collect(
                &mut out,
                &comments,
                &scope,
                m,
                &[4, i32::try_from(i).unwrap()],
            );
        }
    }
    out
}

/// Returns "Service/Method field.path" of every string field of a public
/// request naming a business or a program account.
fn reference_fields() -> BTreeSet<String> {
    fn walk(
        messages: &HashMap<String, (DescriptorProto, Vec<String>)>,
        type_name: &str,
        prefix: &str,
        seen: &mut Vec<String>,
        out: &mut BTreeSet<String>,
    ) {
        let Some((m, comments)) = messages.get(type_name) else {
            return;
        };
        seen.push(type_name.to_owned());
        for (f, comment) in m.field.iter().zip(comments) {
            let path = format!("{prefix}{}", f.name());
            match f.r#type() {
                Type::Message
                    if f.type_name().starts_with(".ccp.")
                        && !seen.iter().any(|s| s == f.type_name()) =>
                {
                    walk(messages, f.type_name(), &format!("{path}."), seen, out);
                }
                Type::String if names_a_reference(comment) => {
                    out.insert(path);
                }
                _ => {}
            }
        }
        seen.pop();
    }
    let set = FileDescriptorSet::decode(ccp_proto::FILE_DESCRIPTOR_SET).unwrap();
    let messages = messages(&set);
    let mut out = BTreeSet::new();
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if !services().contains(&full.as_str()) {
                continue;
            }
            for method in &service.method {
                let mut fields = BTreeSet::new();
                walk(
                    &messages,
                    method.input_type(),
                    "",
                    &mut Vec::new(),
                    &mut fields,
                );
                for f in fields {
                    out.insert(format!("{}/{} {f}", service.name(), method.name()));
                }
            }
        }
    }
    out
}

#[test]
fn r_in_1_the_reference_table_has_every_field_naming_a_business_or_program_account() {
    let found = reference_fields();
    assert!(
        found.len() >= 40,
        "the contracts' comments were read: {found:?}"
    );
    let listed: BTreeSet<String> = ROWS
        .iter()
        .map(|r| format!("{} {}", r.rpc, r.field))
        .chain(
            NOT_READ
                .iter()
                .map(|(rpc, field, _)| format!("{rpc} {field}")),
        )
        .collect();
    let missing: Vec<&String> = found.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&found).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "fields naming a business or program account missing from ROWS: {missing:?}; rows naming no such field: {stale:?}"
    );
}

/// An answer, comparable across the two forms: the encoded response, or the
/// code and the fields the error names.
#[derive(PartialEq, Eq)]
enum Answer {
    Ok(Vec<u8>),
    Err(Code, Vec<String>),
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ok(bytes) => write!(f, "OK ({} bytes)", bytes.len()),
            Answer::Err(code, fields) => write!(f, "{code:?} naming {fields:?}"),
        }
    }
}

impl Answer {
    fn of<T: prost::Message>(r: Result<tonic::Response<T>, Status>) -> Self {
        match r {
            Ok(r) => Answer::Ok(r.into_inner().encode_to_vec()),
            Err(s) => {
                let mut fields: Vec<String> = ccp_platform::error::field_violations(&s)
                    .into_iter()
                    .map(|v| v.field)
                    .collect();
                fields.sort();
                Answer::Err(s.code(), fields)
            }
        }
    }

    /// Returns true when the answer refuses the field `leaf` names.
    fn refuses(&self, leaf: &str) -> bool {
        matches!(self, Answer::Err(Code::InvalidArgument, fields) if fields.iter().any(|f| f.contains(leaf)))
    }
}

fn none() -> String {
    String::new()
}

fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn roles(program_account: &str) -> Vec<ProgramRole> {
    vec![ProgramRole {
        program_account: program_account.to_owned(),
        role: Role::Reader as i32,
    }]
}

fn item(resource: &str, submitted_by: &str) -> gw::CheckItem {
    gw::CheckItem {
        action: PAction::View as i32,
        resource: resource.to_owned(),
        submitted_by: submitted_by.to_owned(),
    }
}

/// Calls `row`'s request with `v` in its field. Writes carry no request id,
/// so they change nothing: an admitted write is answered INVALID_ARGUMENT
/// naming `request_id` and every other bad field.
#[allow(clippy::too_many_lines)]
async fn call(suite: &Suite, w: &World, row: &Row, v: String) -> Answer {
    let g = suite.gw();
    let who = &w.who[&row.who];
    let (mut i, mut a, mut d, mut z) = (
        g.identity(),
        g.accounts(),
        g.delegation(),
        g.authorization(),
    );
    let abc = format!("businesses/{ABC}");
    let itn = format!("businesses/{ITN}");
    let rel = &w.itn_relationship;
    let editor = &w.who[&Kind::Editor].principal;
    let x = || v.clone();
    macro_rules! go {
        ($client:ident . $method:ident ( $msg:expr )) => {
            Answer::of($client.$method(req(who, $msg)).await)
        };
    }
    match (row.rpc, row.field) {
        ("Identity/CreateMachineCredential", _) => {
            go!(
                i.create_machine_credential(idn::CreateMachineCredentialRequest {
                    request_id: none(),
                    parent: x(),
                    display_name: "x".into(),
                    expire_time: None,
                })
            )
        }
        ("Identity/ListMachineCredentials", _) => {
            go!(
                i.list_machine_credentials(idn::ListMachineCredentialsRequest {
                    parent: x(),
                    show_inactive: true,
                    ..Default::default()
                })
            )
        }
        ("Identity/ListAuditEvents", _) => go!(i.list_audit_events(idn::ListAuditEventsRequest {
            parent: x(),
            ..Default::default()
        })),
        ("Accounts/GetRegistrationChallenge", _) => {
            // The questions are drawn at random: the code and fields are compared.
            match go!(
                a.get_registration_challenge(acc::GetRegistrationChallengeRequest {
                    program_account: x(),
                })
            ) {
                Answer::Ok(_) => Answer::Ok(Vec::new()),
                err => err,
            }
        }
        ("Accounts/RegisterBusiness", _) => {
            go!(a.register_business(acc::RegisterBusinessRequest {
                request_id: none(),
                program_account: x(),
                ..Default::default()
            }))
        }
        ("Accounts/GetBusiness", _) => go!(a.get_business(acc::GetBusinessRequest { name: x() })),
        ("Accounts/ListProgramAccounts", _) => {
            go!(a.list_program_accounts(acc::ListProgramAccountsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Accounts/RequestEmployeeAccess", _) => {
            go!(
                a.request_employee_access(acc::RequestEmployeeAccessRequest {
                    request_id: none(),
                    parent: x(),
                    note: "x".into(),
                })
            )
        }
        ("Accounts/ListEmployeeRequests", _) => {
            go!(a.list_employee_requests(acc::ListEmployeeRequestsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Accounts/ApproveEmployeeRequest", _) => {
            go!(
                a.approve_employee_request(acc::ApproveEmployeeRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/employeeRequests/{}", unknown_id()),
                    grants: Some(ccp_proto::common::v1::RoleGrants {
                        business_manager: false,
                        program_roles: roles(&v),
                    }),
                })
            )
        }
        ("Accounts/ListEmployees", "parent") => {
            go!(a.list_employees(acc::ListEmployeesRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Accounts/ListEmployees", _) => go!(a.list_employees(acc::ListEmployeesRequest {
            parent: abc.clone(),
            program_account: x(),
            ..Default::default()
        })),
        ("Accounts/SetMemberRoles", _) => go!(a.set_member_roles(acc::SetMemberRolesRequest {
            request_id: none(),
            name: format!("{abc}/members/{editor}"),
            grants: Some(ccp_proto::common::v1::RoleGrants {
                business_manager: false,
                program_roles: roles(&v),
            }),
            ..Default::default()
        })),
        ("Accounts/CreateEmployeeGroup", "parent") => {
            go!(a.create_employee_group(acc::CreateEmployeeGroupRequest {
                request_id: none(),
                parent: x(),
                group: Some(acc::EmployeeGroup {
                    display_name: "x".into(),
                    roles: roles(&rm(ABC, 1)),
                    ..Default::default()
                }),
            }))
        }
        ("Accounts/CreateEmployeeGroup", _) => {
            go!(a.create_employee_group(acc::CreateEmployeeGroupRequest {
                request_id: none(),
                parent: abc.clone(),
                group: Some(acc::EmployeeGroup {
                    display_name: "x".into(),
                    roles: roles(&v),
                    ..Default::default()
                }),
            }))
        }
        ("Accounts/ListEmployeeGroups", _) => {
            go!(a.list_employee_groups(acc::ListEmployeeGroupsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Accounts/UpdateEmployeeGroup", _) => {
            go!(a.update_employee_group(acc::UpdateEmployeeGroupRequest {
                request_id: none(),
                group: Some(acc::EmployeeGroup {
                    name: w.abc_rm1_group.clone(),
                    roles: roles(&v),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["roles".to_owned()],
                }),
            }))
        }
        ("Accounts/ListAuditEvents", _) => go!(a.list_audit_events(acc::ListAuditEventsRequest {
            parent: x(),
            ..Default::default()
        })),
        ("Delegation/SendRelationshipRequest", field) => {
            let mut m = del::SendRelationshipRequestRequest {
                request_id: none(),
                parent: itn.clone(),
                client: MAPLE.into(),
                program_accounts: vec![rm(MAPLE, 1)],
                note: "x".into(),
            };
            match field {
                "parent" => m.parent = x(),
                "client" => m.client = x(),
                _ => m.program_accounts = vec![x()],
            }
            go!(d.send_relationship_request(m))
        }
        ("Delegation/ListReceivedRequests", _) => {
            go!(d.list_received_requests(del::ListReceivedRequestsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Delegation/ListSentRequests", _) => {
            go!(d.list_sent_requests(del::ListSentRequestsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Delegation/ApproveRelationshipRequest", _) => {
            go!(
                d.approve_relationship_request(del::ApproveRelationshipRequestRequest {
                    request_id: none(),
                    name: format!("{abc}/receivedRequests/{}", w.abc_program_request),
                    level: del::RelationshipLevel::Program as i32,
                    program_accounts: vec![x()],
                    ..Default::default()
                })
            )
        }
        ("Delegation/ListRelationships", _) => {
            go!(d.list_relationships(del::ListRelationshipsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Delegation/UpdateRelationship", _) => {
            go!(d.update_relationship(del::UpdateRelationshipRequest {
                request_id: none(),
                relationship: Some(del::Relationship {
                    name: format!("{abc}/relationships/{rel}"),
                    level: del::RelationshipLevel::Program as i32,
                    program_accounts: vec![x()],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["level".to_owned(), "program_accounts".to_owned()],
                }),
            }))
        }
        ("Delegation/CreateClientGroup", field) => {
            let mut m = del::CreateClientGroupRequest {
                request_id: none(),
                parent: itn.clone(),
                group: Some(del::ClientGroup {
                    display_name: "x".into(),
                    clients: vec![MAPLE.into()],
                    ..Default::default()
                }),
            };
            match field {
                "parent" => m.parent = x(),
                _ => {
                    if let Some(g) = m.group.as_mut() {
                        g.clients = vec![x()];
                    }
                }
            }
            go!(d.create_client_group(m))
        }
        ("Delegation/ListClientGroups", _) => {
            go!(d.list_client_groups(del::ListClientGroupsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Delegation/AddClientGroupClients", _) => {
            go!(
                d.add_client_group_clients(del::AddClientGroupClientsRequest {
                    request_id: none(),
                    group: w.itn_group.clone(),
                    clients: vec![x()],
                })
            )
        }
        ("Delegation/RemoveClientGroupClients", _) => {
            go!(
                d.remove_client_group_clients(del::RemoveClientGroupClientsRequest {
                    request_id: none(),
                    group: w.itn_group.clone(),
                    clients: vec![x()],
                })
            )
        }
        ("Delegation/AssignToClient", field) => {
            let (parent, client) = if field == "parent" {
                (x(), ABC.to_owned())
            } else {
                (itn.clone(), x())
            };
            go!(d.assign_to_client(del::AssignToClientRequest {
                request_id: none(),
                parent,
                assignment: Some(del::Assignment {
                    assignee: w.who[&Kind::Unassigned].principal.clone(),
                    target: Some(del::assignment::Target::Client(client)),
                    role: Role::Reader as i32,
                    ..Default::default()
                }),
            }))
        }
        ("Delegation/ListAssignments", "parent") => {
            go!(d.list_assignments(del::ListAssignmentsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Delegation/ListAssignments", _) => {
            go!(d.list_assignments(del::ListAssignmentsRequest {
                parent: itn.clone(),
                client: x(),
                ..Default::default()
            }))
        }
        ("Delegation/ListAuditEvents", _) => {
            go!(d.list_audit_events(del::ListAuditEventsRequest {
                parent: x(),
                ..Default::default()
            }))
        }
        ("Authorization/Check", field) => {
            let it = if field == "item.resource" {
                item(&v, "")
            } else {
                item(&rm(ABC, 1), &v)
            };
            go!(z.check(gw::CheckRequest {
                item: Some(it),
                ..Default::default()
            }))
        }
        ("Authorization/BatchCheck", field) => {
            let it = if field == "items.resource" {
                item(&v, "")
            } else {
                item(&rm(ABC, 1), &v)
            };
            go!(z.batch_check(gw::BatchCheckRequest {
                items: vec![item(ABC, ""), it],
                ..Default::default()
            }))
        }
        ("Authorization/Explain", field) => {
            let it = if field == "item.resource" {
                item(&v, "")
            } else {
                item(&rm(ABC, 1), &v)
            };
            // Explain is for internal callers, about any principal.
            Answer::of(
                z.explain(suite.internal(gw::ExplainRequest {
                    principal: who.principal.clone(),
                    item: Some(it),
                }))
                .await,
            )
        }
        (rpc, field) => panic!("no request for {rpc} {field}"),
    }
}

#[tokio::test]
async fn r_in_1_every_business_or_program_account_field_takes_the_name_or_the_bare_number_alike() {
    let suite = Suite::start(memory_context(), 1).await;
    let w = world::build(&suite).await;
    let mut failures = Vec::new();
    for row in ROWS {
        let what = format!("{} {}", row.rpc, row.field);
        let leaf = row.field.rsplit('.').next().unwrap_or(row.field);
        let named = call(&suite, &w, row, row.value.name()).await;
        let bare = call(&suite, &w, row, row.value.bare()).await;
        let bad = call(&suite, &w, row, row.value.bad()).await;
        if named.refuses(leaf) {
            failures.push(format!("{what}: the resource name is refused: {named:?}"));
        }
        if bare != named {
            failures.push(format!("{what}: bare {bare:?} but named {named:?}"));
        }
        // The row reaches the field's parser: a bad reference is named.
        if !bad.refuses(leaf) {
            failures.push(format!("{what}: a bad reference is not refused: {bad:?}"));
        }
        if matches!(
            named,
            Answer::Err(Code::Internal | Code::Unknown | Code::Unavailable, _)
        ) {
            failures.push(format!("{what}: {named:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A provider-side answer names the request and the relationship under the
    // client too, so no caller assembles a name.
    let g = suite.gw();
    let sent = g
        .delegation()
        .list_sent_requests(req(
            &w.who[&Kind::ProviderBam],
            del::ListSentRequestsRequest {
                parent: ITN.to_owned(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert!(!sent.is_empty());
    for r in &sent {
        assert_eq!(r.name, r.sent_name);
        assert_eq!(
            r.received_name,
            format!("businesses/{}/receivedRequests/{}", r.client, r.id)
        );
    }
    let relationships = g
        .delegation()
        .list_relationships(req(
            &w.who[&Kind::ProviderBam],
            del::ListRelationshipsRequest {
                parent: ITN.to_owned(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .relationships;
    assert!(!relationships.is_empty());
    for r in &relationships {
        assert_eq!(r.name, r.provider_name);
        assert_eq!(
            r.client_name,
            format!("businesses/{}/relationships/{}", r.client, r.id)
        );
    }
}
