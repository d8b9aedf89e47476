#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The table's tests: one entry per public RPC, the anonymous ones by name,
//! requests read into needs, bad names named, and `docs/policy.md` in sync.

use std::collections::BTreeSet;

use prost::Message as _;

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{ProgramRole, RoleGrants};
use ccp_proto::delegation::v1 as del;
use ccp_types::{Bn9, Bn15};

use super::*;
use crate::decide::{Action, Resource};

const ACCOUNTS_SERVICE: &str = "ccp.accounts.v1.Accounts";

fn manage(resource: impl Into<Resource>) -> Need {
    Need::Act {
        action: Action::Manage,
        resource: resource.into(),
    }
}

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

#[test]
fn r_gw_1_every_row_says_in_words_what_it_needs() {
    for e in POLICY {
        let words = (e.needs)();
        match e.rule {
            Rule::Anonymous => assert!(words.is_empty(), "{}: {words}", e.method),
            _ => assert!(!words.is_empty(), "{} says nothing", e.method),
        }
    }
    // The words name the fields the requirement reads, as violations name them.
    let approve = entry(ACCOUNTS_SERVICE, "ApproveEmployeeRequest").unwrap();
    assert_eq!(
        (approve.needs)(),
        "BAM, or PAM of a program of the business of `name`; MANAGE the business of `name` (BAM) \
         when `grants.business_manager` is set; MANAGE each program of `grants.program_roles`"
    );
}

/// The fully qualified names of the request messages that carry a `request_id` (the writes).
fn write_requests() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(ccp_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut writes = BTreeSet::new();
    for file in &set.file {
        for message in &file.message_type {
            if message.field.iter().any(|f| f.name() == "request_id") {
                writes.insert(format!("{}.{}", file.package(), message.name()));
            }
        }
    }
    writes
}

#[test]
fn r_gw_1_every_write_declares_the_facts_its_decision_depends_on() {
    let writes = write_requests();
    let mut seen = 0;
    for (service, method, input) in public_rpcs() {
        let entry = entry(&service, &method).unwrap();
        if !writes.contains(&input) {
            assert_eq!(entry.writes, None, "{service}/{method} is a read");
            continue;
        }
        seen += 1;
        let declared = entry
            .writes
            .unwrap_or_else(|| panic!("{service}/{method} writes and declares no facts"));
        // Admitted from facts: the facts are accounts', checked in the write
        // when accounts is the one writing.
        let want = match (entry.rule, service.as_str()) {
            (Rule::Checked, ACCOUNTS_SERVICE) => Writes::OwnFacts,
            (Rule::Checked, _) => Writes::AccountsFacts,
            _ => Writes::NoFacts,
        };
        assert_eq!(declared, want, "{service}/{method}");
    }
    assert!(seen >= 30, "the descriptor walk found only {seen} writes");
}

#[test]
fn r_in_1_the_gateway_refuses_an_oversized_list_before_reading_one_entry() {
    // The same limit every service applies to the lists the table reads.
    for limit in [
        ccp_types::limits::MAX_PROGRAM_ROLES,
        ccp_types::limits::MAX_PRINCIPALS,
        ccp_types::limits::MAX_PROGRAM_ACCOUNTS,
    ] {
        assert_eq!(require::MAX_LIST, limit);
    }
    // 100,000 entries, every one of them malformed: one violation naming the
    // field, not one per entry (no entry was parsed).
    let role = ProgramRole {
        program_account: "nope".into(),
        role: 2,
    };
    let huge = acc::ApproveEmployeeRequestRequest {
        name: "businesses/123456782/employeeRequests/x".into(),
        grants: Some(RoleGrants {
            business_manager: false,
            program_roles: vec![role.clone(); 100_000],
        }),
        ..Default::default()
    };
    let err = huge.needs().unwrap_err();
    assert_eq!(err.violations().len(), 1, "{err:?}");
    assert_eq!(err.violations()[0].field, "grants.program_roles");
    assert!(err.message().contains("at most 1000"), "{}", err.message());
    let members = acc::AddEmployeeGroupMembersRequest {
        group: "businesses/123456782/employeeGroups/g".into(),
        principals: vec!["nobody".into(); require::MAX_LIST + 1],
        ..Default::default()
    };
    assert_eq!(
        members.needs().unwrap_err().violations()[0].field,
        "principals"
    );
    // At the limit, the entries are read (and a bad one is named).
    let at_limit = acc::ApproveEmployeeRequestRequest {
        name: "businesses/123456782/employeeRequests/x".into(),
        grants: Some(RoleGrants {
            business_manager: false,
            program_roles: vec![role; require::MAX_LIST],
        }),
        ..Default::default()
    };
    assert_eq!(
        at_limit.needs().unwrap_err().violations()[0].field,
        "grants.program_roles[0].program_account"
    );
}
