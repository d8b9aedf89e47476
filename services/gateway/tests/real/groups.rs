//! R-AC-6 through the gateway on the real services: a PAM changes the
//! employee groups of its own programs (update, delete, members), read from
//! accounts' group facts; a group reaching beyond its programs, covering
//! none, or unknown stays the BAM's, and a denial never says whether the
//! group exists.

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::Role;
use tonic::Code;

use crate::harness::{Suite, memory_context};
use crate::world::{self, ABC, Who, grants, req, rid, rm};

fn roles(programs: &[(u32, Role)]) -> Vec<ccp_proto::common::v1::ProgramRole> {
    let programs: Vec<(String, Role)> = programs.iter().map(|(n, r)| (rm(ABC, *n), *r)).collect();
    let refs: Vec<(&str, Role)> = programs.iter().map(|(p, r)| (p.as_str(), *r)).collect();
    grants(false, &refs).program_roles
}

/// Reads employee group `name` through the gateway as `who`.
pub(crate) async fn get(suite: &Suite, who: &Who, name: &str) -> acc::EmployeeGroup {
    suite
        .gw()
        .accounts()
        .get_employee_group(req(
            who,
            acc::GetEmployeeGroupRequest {
                name: name.to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn update(
    suite: &Suite,
    who: &Who,
    name: &str,
    new_roles: Vec<ccp_proto::common::v1::ProgramRole>,
    etag: String,
) -> Result<acc::EmployeeGroup, tonic::Status> {
    suite
        .gw()
        .accounts()
        .update_employee_group(req(
            who,
            acc::UpdateEmployeeGroupRequest {
                request_id: rid(),
                group: Some(acc::EmployeeGroup {
                    name: name.to_owned(),
                    roles: new_roles,
                    etag,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["roles".to_owned()],
                }),
            },
        ))
        .await
        .map(|r| r.into_inner().group.unwrap())
}

async fn members(
    suite: &Suite,
    who: &Who,
    name: &str,
    principal: &str,
    add: bool,
) -> Result<(), tonic::Status> {
    let mut a = suite.gw().accounts();
    let (group, principals) = (name.to_owned(), vec![principal.to_owned()]);
    if add {
        a.add_employee_group_members(req(
            who,
            acc::AddEmployeeGroupMembersRequest {
                request_id: rid(),
                group,
                principals,
            },
        ))
        .await
        .map(|_| ())
    } else {
        a.remove_employee_group_members(req(
            who,
            acc::RemoveEmployeeGroupMembersRequest {
                request_id: rid(),
                group,
                principals,
            },
        ))
        .await
        .map(|_| ())
    }
}

async fn delete(suite: &Suite, who: &Who, name: &str) -> Result<(), tonic::Status> {
    suite
        .gw()
        .accounts()
        .delete_employee_group(req(
            who,
            acc::DeleteEmployeeGroupRequest {
                request_id: rid(),
                name: name.to_owned(),
                etag: String::new(),
            },
        ))
        .await
        .map(|_| ())
}

fn assert_denied(result: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
    assert_eq!(err.message(), "permission denied", "{what}: bare");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ac_6_a_pam_changes_the_employee_groups_of_its_programs_only() {
    let suite = Suite::start(memory_context(), 1).await;
    let g = suite.gw();
    let bam = world::person(&suite, g, "Alice Bam").await;
    world::register(g, &bam, ABC).await;
    let pam = world::person(&suite, g, "Paul Pam").await;
    let pam_other = world::person(&suite, g, "Petra Pam").await;
    let editor = world::person(&suite, g, "Eddie Editor").await;
    for (who, program, role) in [
        (&pam, 1, Role::Pam),
        (&pam_other, 2, Role::Pam),
        (&editor, 1, Role::Editor),
    ] {
        world::hire(
            g,
            &bam,
            who,
            ABC,
            grants(false, &[(&rm(ABC, program), role)]),
        )
        .await;
    }

    // The PAM of RM0001 makes a group for RM0001 (CreateEmployeeGroup, as before).
    let group = g
        .accounts()
        .create_employee_group(req(
            &pam,
            acc::CreateEmployeeGroupRequest {
                request_id: rid(),
                parent: format!("businesses/{ABC}"),
                group: Some(acc::EmployeeGroup {
                    display_name: "RM0001 desk".to_owned(),
                    roles: roles(&[(1, Role::Reader)]),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    let name = group.name.clone();

    // It adds a member and changes the group's roles on RM0001.
    members(&suite, &pam, &name, &editor.principal, true)
        .await
        .unwrap();
    let etag = get(&suite, &pam, &name).await.etag;
    assert_ne!(etag, group.etag, "adding a member changes the etag");
    let changed = update(&suite, &pam, &name, roles(&[(1, Role::Editor)]), etag)
        .await
        .unwrap();
    assert_eq!(changed.roles, roles(&[(1, Role::Editor)]));
    assert_eq!(changed.members, vec![editor.principal.clone()]);

    // The PAM of RM0002 may do none of it to a group covering RM0001.
    let etag = get(&suite, &bam, &name).await.etag;
    assert_denied(
        update(
            &suite,
            &pam_other,
            &name,
            roles(&[(2, Role::Reader)]),
            etag.clone(),
        )
        .await,
        "PAM of RM0002 updates the RM0001 group",
    );
    assert_denied(
        members(&suite, &pam_other, &name, &editor.principal, false).await,
        "PAM of RM0002 removes a member",
    );
    assert_denied(
        delete(&suite, &pam_other, &name).await,
        "PAM of RM0002 deletes",
    );
    // Nor may the PAM of RM0001 move the group onto RM0002.
    assert_denied(
        update(
            &suite,
            &pam,
            &name,
            roles(&[(2, Role::Reader)]),
            etag.clone(),
        )
        .await,
        "PAM of RM0001 moves the group to RM0002",
    );
    // An Editor manages nothing.
    assert_denied(delete(&suite, &editor, &name).await, "an Editor deletes");

    // Once the BAM extends the group to RM0002, the PAM of RM0001 alone may
    // no longer change it (the facts are read at each call, not cached).
    update(
        &suite,
        &bam,
        &name,
        roles(&[(1, Role::Editor), (2, Role::Reader)]),
        etag,
    )
    .await
    .unwrap();
    assert_denied(
        members(&suite, &pam, &name, &editor.principal, false).await,
        "PAM of RM0001 on a group also covering RM0002",
    );
    assert_denied(
        delete(&suite, &pam, &name).await,
        "PAM of RM0001 deletes a group also covering RM0002",
    );
    let etag = get(&suite, &bam, &name).await.etag;
    update(&suite, &bam, &name, roles(&[(1, Role::Editor)]), etag)
        .await
        .unwrap();

    // Back on RM0001 only: the PAM removes the member and deletes the group.
    members(&suite, &pam, &name, &editor.principal, false)
        .await
        .unwrap();
    delete(&suite, &pam, &name).await.unwrap();
    // A deleted group of its programs: accounts answers (NOT_FOUND).
    let err = delete(&suite, &pam, &name).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // A group covering no program stays the BAM's.
    let empty = g
        .accounts()
        .create_employee_group(req(
            &bam,
            acc::CreateEmployeeGroupRequest {
                request_id: rid(),
                parent: format!("businesses/{ABC}"),
                group: Some(acc::EmployeeGroup {
                    display_name: "Nobody yet".to_owned(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert_denied(
        delete(&suite, &pam, &empty.name).await,
        "PAM deletes a group covering no program",
    );

    // An unknown group: a bare PERMISSION_DENIED for the PAM (its existence
    // is not revealed), NOT_FOUND from accounts for the BAM.
    let unknown = format!("businesses/{ABC}/employeeGroups/{}", uuid::Uuid::new_v4());
    assert_denied(delete(&suite, &pam, &unknown).await, "unknown group");
    let malformed = format!("businesses/{ABC}/employeeGroups/not-a-uuid");
    assert_denied(delete(&suite, &pam, &malformed).await, "malformed id");
    let err = delete(&suite, &bam, &unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    delete(&suite, &bam, &empty.name).await.unwrap();

    // The same for a relationship request a PAM rejects: a malformed id is a
    // denial, not an outage of delegation (R-DE-2's facts read the same way).
    let err = g
        .delegation()
        .reject_relationship_request(req(
            &pam,
            ccp_proto::delegation::v1::RejectRelationshipRequestRequest {
                request_id: rid(),
                name: format!("businesses/{ABC}/receivedRequests/not-a-uuid"),
                reason: "no".to_owned(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
}
