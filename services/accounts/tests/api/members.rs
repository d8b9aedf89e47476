//! R-AC-4 (effective roles), R-AC-5 (last BAM), R-AC-6 (employee groups),
//! R-AC-7 (no role, no membership), machine credentials as members.

use std::sync::Arc;

use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::common::v1::{ProgramRole, Role, RoleGrants};
use tonic::Code;

use crate::helpers::*;

fn pr(reference: &str, role: Role) -> ProgramRole {
    ProgramRole {
        program_account: format!("{ABC}{reference}"),
        role: role as i32,
    }
}

async fn set_roles(
    app: &TestApp,
    who: &Person,
    principal: &str,
    grants: RoleGrants,
    etag: &str,
) -> Result<pb::SetMemberRolesResponse, tonic::Status> {
    app.accounts()
        .set_member_roles(app.req(
            pb::SetMemberRolesRequest {
                request_id: rid(),
                name: format!("businesses/{ABC}/members/{principal}"),
                grants: Some(grants),
                etag: etag.to_owned(),
            },
            &who.token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn create_group(
    app: &TestApp,
    who: &Person,
    name: &str,
    roles: Vec<ProgramRole>,
    members: Vec<String>,
) -> Result<pb::EmployeeGroup, tonic::Status> {
    app.accounts()
        .create_employee_group(app.req(
            pb::CreateEmployeeGroupRequest {
                request_id: rid(),
                parent: format!("businesses/{ABC}"),
                group: Some(pb::EmployeeGroup {
                    display_name: name.to_owned(),
                    roles,
                    members,
                    ..Default::default()
                }),
            },
            &who.token,
        ))
        .await
        .map(|r| r.into_inner().group.unwrap())
}

#[tokio::test]
async fn r_ac_4_effective_role_is_the_highest_of_direct_and_group_roles() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        app.clock.advance(chrono::Duration::seconds(1));
        app.join(&alice, &bob, role("RM0001", Role::Reader)).await;
        let g = create_group(
            &app,
            &alice,
            "Corrections team",
            vec![pr("RM0001", Role::Editor), pr("RM0002", Role::Pam)],
            vec![bob.principal.clone()],
        )
        .await
        .unwrap();
        let m = app.member(&alice, &bob.principal).await.unwrap();
        assert_eq!(m.direct_roles, vec![pr("RM0001", Role::Reader)]);
        assert_eq!(
            m.effective_roles,
            vec![pr("RM0001", Role::Editor), pr("RM0002", Role::Pam)]
        );
        assert_eq!(m.employee_groups, vec![g.name.clone()]);
        let facts = app.role_facts(&bob.principal).await;
        assert_eq!(
            facts.memberships[0].roles,
            vec![pr("RM0001", Role::Editor), pr("RM0002", Role::Pam)]
        );
        // A direct role higher than the group's wins.
        set_roles(
            &app,
            &alice,
            &bob.principal,
            role("RM0001", Role::Pam),
            &m.etag,
        )
        .await
        .unwrap();
        let facts = app.role_facts(&bob.principal).await;
        assert_eq!(
            facts.memberships[0].roles,
            vec![pr("RM0001", Role::Pam), pr("RM0002", Role::Pam)]
        );
        // ListEmployees filters by effective role and program; names come from identity.
        let list = |program: &str, role: Role| {
            let app = &app;
            let alice = &alice;
            let program = program.to_owned();
            async move {
                app.accounts()
                    .list_employees(app.req(
                        pb::ListEmployeesRequest {
                            parent: format!("businesses/{ABC}"),
                            program_account: program,
                            role: role as i32,
                            ..Default::default()
                        },
                        &alice.token,
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .members
                    .into_iter()
                    .map(|m| m.display_name)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            list("", Role::Unspecified).await,
            ["Alice Martin", "Bob Tremblay"]
        );
        assert_eq!(
            list(&format!("{ABC}RM0002"), Role::Pam).await,
            ["Bob Tremblay"]
        );
        assert_eq!(
            list(&format!("{ABC}RM0002"), Role::Editor).await,
            Vec::<String>::new()
        );
        assert_eq!(list("", Role::Bam).await, ["Alice Martin"]);
        assert_eq!(list("", Role::Pam).await, ["Bob Tremblay"]);
        // The revision in the facts grows with every change to the business.
        let r1 = app.role_facts(&bob.principal).await.memberships[0].revision;
        set_roles(
            &app,
            &alice,
            &bob.principal,
            role("RM0001", Role::Editor),
            &app.member(&alice, &bob.principal).await.unwrap().etag,
        )
        .await
        .unwrap();
        assert!(app.role_facts(&bob.principal).await.memberships[0].revision > r1);
    }
}

#[tokio::test]
async fn r_ac_5_the_last_bam_cannot_be_demoted_or_removed() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let m = app.member(&alice, &alice.principal).await.unwrap();
        let err = set_roles(
            &app,
            &alice,
            &alice.principal,
            role("RM0001", Role::Pam),
            &m.etag,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(reason(&err).as_deref(), Some("LAST_BUSINESS_MANAGER"));
        let err = app
            .accounts()
            .remove_member(app.req(
                pb::RemoveMemberRequest {
                    request_id: rid(),
                    name: m.name.clone(),
                    etag: String::new(),
                },
                &alice.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(reason(&err).as_deref(), Some("LAST_BUSINESS_MANAGER"));
        // A stale etag is ABORTED.
        let err = set_roles(&app, &alice, &alice.principal, bam(), "999")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted);
        // With a second BAM, the first may step down.
        let bob = app.person("Bob Tremblay").await;
        app.join(&alice, &bob, bam()).await;
        let b = get_business(&app, &alice).await;
        assert_eq!(b.business_manager_count, 2);
        assert!(!b.single_business_manager);
        set_roles(
            &app,
            &alice,
            &alice.principal,
            role("RM0001", Role::Pam),
            &m.etag,
        )
        .await
        .unwrap();
        let b = get_business(&app, &alice).await;
        assert!(b.single_business_manager);
        let mb = app.member(&bob, &bob.principal).await.unwrap();
        let err = set_roles(&app, &bob, &bob.principal, RoleGrants::default(), &mb.etag)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(reason(&err).as_deref(), Some("LAST_BUSINESS_MANAGER"));
        // Other refusals of the same code carry no such reason.
        let stale = set_roles(&app, &alice, &alice.principal, bam(), "999")
            .await
            .unwrap_err();
        assert_eq!(reason(&stale), None);
    }
}

#[tokio::test]
async fn r_ac_5_concurrent_mutual_demotion_postgres() {
    let Some(backend) = TestBackend::postgres().await else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL not set");
        return;
    };
    let app = Arc::new(spawn_app(&backend).await);
    app.import_registry().await;
    let alice = app.person("Alice Martin").await;
    app.register_abc(&alice).await;
    let bob = app.person("Bob Tremblay").await;
    app.join(&alice, &bob, bam()).await;
    let demote = role("RM0001", Role::Reader);
    for round in 0..100 {
        let ea = app.member(&alice, &alice.principal).await.unwrap().etag;
        let eb = app.member(&alice, &bob.principal).await.unwrap().etag;
        let (a, b) = tokio::join!(
            set_roles(&app, &alice, &bob.principal, demote.clone(), &eb),
            set_roles(&app, &bob, &alice.principal, demote.clone(), &ea),
        );
        let failures: Vec<_> = [&a, &b]
            .into_iter()
            .filter_map(|r| r.as_ref().err())
            .collect();
        assert_eq!(failures.len(), 1, "round {round}: {a:?} {b:?}");
        assert_eq!(
            failures[0].code(),
            Code::FailedPrecondition,
            "round {round}"
        );
        let facts = app
            .facts()
            .get_business_facts(app.internal(pb::GetBusinessFactsRequest {
                business: ABC.to_owned(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(facts.business_managers.len(), 1, "round {round}");
        // Restore the demoted one.
        let (demoted, survivor) = if a.is_ok() {
            (&bob, &alice)
        } else {
            (&alice, &bob)
        };
        let e = app.member(survivor, &demoted.principal).await.unwrap().etag;
        set_roles(&app, survivor, &demoted.principal, bam(), &e)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn r_ac_6_employee_groups_have_unique_names_and_never_hold_bam() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let g = create_group(
            &app,
            &alice,
            "Payables",
            vec![pr("RM0001", Role::Reader)],
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(
            create_group(&app, &alice, "  PAYABLES ", vec![], vec![])
                .await
                .unwrap_err()
                .code(),
            Code::AlreadyExists
        );
        let err = create_group(
            &app,
            &alice,
            "Managers",
            vec![pr("RM0001", Role::Bam)],
            vec![],
        )
        .await
        .unwrap_err();
        assert_eq!(fields(&err), vec!["group.roles[0].role".to_owned()]);
        let err = create_group(
            &app,
            &alice,
            "Strangers",
            vec![],
            vec![app.person("Zed").await.principal],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        // Rename and change roles with the etag.
        let mut c = app.accounts();
        let updated = c
            .update_employee_group(app.req(
                pb::UpdateEmployeeGroupRequest {
                    request_id: rid(),
                    group: Some(pb::EmployeeGroup {
                        display_name: "Payables team".to_owned(),
                        roles: vec![pr("RM0002", Role::Editor)],
                        ..g.clone()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".to_owned(), "roles".to_owned()],
                    }),
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .group
            .unwrap();
        assert_eq!(updated.display_name, "Payables team");
        assert_eq!(updated.roles, vec![pr("RM0002", Role::Editor)]);
        let err = c
            .update_employee_group(app.req(
                pb::UpdateEmployeeGroupRequest {
                    request_id: rid(),
                    group: Some(g.clone()),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".to_owned()],
                    }),
                },
                &alice.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted);
        // Soft delete: the name stays taken, the group is listed only with show_deleted.
        c.delete_employee_group(app.req(
            pb::DeleteEmployeeGroupRequest {
                request_id: rid(),
                name: g.name.clone(),
                etag: updated.etag,
            },
            &alice.token,
        ))
        .await
        .unwrap();
        assert_eq!(
            create_group(&app, &alice, "payables team", vec![], vec![])
                .await
                .unwrap_err()
                .code(),
            Code::AlreadyExists
        );
        let list = |show_deleted: bool| {
            let app = &app;
            let alice = &alice;
            async move {
                app.accounts()
                    .list_employee_groups(app.req(
                        pb::ListEmployeeGroupsRequest {
                            parent: format!("businesses/{ABC}"),
                            show_deleted,
                            ..Default::default()
                        },
                        &alice.token,
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .groups
                    .len()
            }
        };
        assert_eq!(list(false).await, 0);
        assert_eq!(list(true).await, 1);
        let got = c
            .get_employee_group(app.req(pb::GetEmployeeGroupRequest { name: g.name }, &alice.token))
            .await
            .unwrap()
            .into_inner();
        assert!(got.delete_time.is_some());
    }
}

#[tokio::test]
async fn r_ac_7_a_member_left_with_no_role_stops_being_a_member() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        let carol = app.person("Carol Singh").await;
        let mb = app.join(&alice, &bob, role("RM0001", Role::Reader)).await;
        app.join(&alice, &carol, role("RM0002", Role::Editor)).await;
        let g = create_group(
            &app,
            &alice,
            "Doors",
            vec![pr("RM0002", Role::Editor)],
            vec![bob.principal.clone()],
        )
        .await
        .unwrap();
        // Bob loses his direct role but keeps the group's: still a member.
        let r = set_roles(
            &app,
            &alice,
            &bob.principal,
            RoleGrants::default(),
            &mb.etag,
        )
        .await
        .unwrap();
        assert!(!r.removed);
        assert_eq!(
            r.member.unwrap().effective_roles,
            vec![pr("RM0002", Role::Editor)]
        );
        // Deleting the group leaves him with nothing: he is no longer a member (an orphan).
        app.accounts()
            .delete_employee_group(app.req(
                pb::DeleteEmployeeGroupRequest {
                    request_id: rid(),
                    name: g.name,
                    etag: String::new(),
                },
                &alice.token,
            ))
            .await
            .unwrap();
        assert!(app.role_facts(&bob.principal).await.memberships.is_empty());
        assert_eq!(
            app.member(&alice, &bob.principal).await.unwrap_err().code(),
            Code::NotFound
        );
        // Setting no role at all removes Carol at once.
        let mc = app.member(&alice, &carol.principal).await.unwrap();
        let r = set_roles(
            &app,
            &alice,
            &carol.principal,
            RoleGrants::default(),
            &mc.etag,
        )
        .await
        .unwrap();
        assert!(r.removed);
        assert!(r.member.is_none());
        assert!(
            app.role_facts(&carol.principal)
                .await
                .memberships
                .is_empty()
        );
        let actions = app.audit_actions(&alice, ABC).await;
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "accounts.member.remove")
                .count(),
            2
        );
    }
}

#[tokio::test]
async fn r_ac_7_machine_credentials_of_the_business_hold_editor_or_reader_only() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let cred = app.credential(&alice, ABC, false).await;
        let err = set_roles(&app, &alice, &cred, role("RM0001", Role::Pam), "")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(fields(&err), vec!["grants.program_roles".to_owned()]);
        let err = set_roles(&app, &alice, &cred, bam(), "").await.unwrap_err();
        assert_eq!(fields(&err), vec!["grants.business_manager".to_owned()]);
        let other = app.credential(&alice, ITN, false).await;
        assert_eq!(
            set_roles(&app, &alice, &other, role("RM0001", Role::Editor), "")
                .await
                .unwrap_err()
                .code(),
            Code::FailedPrecondition
        );
        let revoked = app.credential(&alice, ABC, true).await;
        assert_eq!(
            set_roles(&app, &alice, &revoked, role("RM0001", Role::Editor), "")
                .await
                .unwrap_err()
                .code(),
            Code::FailedPrecondition
        );
        let unknown = format!("credential:{}", uuid::Uuid::new_v4());
        assert_eq!(
            set_roles(&app, &alice, &unknown, role("RM0001", Role::Editor), "")
                .await
                .unwrap_err()
                .code(),
            Code::FailedPrecondition
        );
        let m = set_roles(&app, &alice, &cred, role("RM0001", Role::Editor), "")
            .await
            .unwrap()
            .member
            .unwrap();
        assert_eq!(m.kind, pb::MemberKind::Credential as i32);
        assert_eq!(m.display_name, "broker system");
        let facts = app.role_facts(&cred).await;
        assert_eq!(facts.memberships[0].roles, vec![pr("RM0001", Role::Editor)]);
        // A credential never gets PAM through a group either (R-AZ-5).
        let err = create_group(
            &app,
            &alice,
            "Managers",
            vec![pr("RM0001", Role::Pam)],
            vec![cred.clone()],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let g = create_group(
            &app,
            &alice,
            "Bots",
            vec![pr("RM0002", Role::Reader)],
            vec![cred.clone()],
        )
        .await
        .unwrap();
        let err = app
            .accounts()
            .update_employee_group(app.req(
                pb::UpdateEmployeeGroupRequest {
                    request_id: rid(),
                    group: Some(pb::EmployeeGroup {
                        roles: vec![pr("RM0002", Role::Pam)],
                        ..g
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["roles".to_owned()],
                    }),
                },
                &alice.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        // A person who is not a member cannot be added by SetMemberRoles.
        let zed = app.person("Zed").await;
        assert_eq!(
            set_roles(
                &app,
                &alice,
                &zed.principal,
                role("RM0001", Role::Reader),
                ""
            )
            .await
            .unwrap_err()
            .code(),
            Code::NotFound
        );
        let mine = app
            .accounts()
            .list_my_businesses(app.req(pb::ListMyBusinessesRequest::default(), &alice.token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mine.businesses.len(), 1);
        assert!(mine.businesses[0].business_manager);
        // Identity's expiry counts: a credential is accepted until the instant
        // it expires, and refused from that instant on.
        let expire = app.clock.now() + chrono::Duration::hours(1);
        let early = app.credential_until(&alice, ABC, expire, false).await;
        let late = app.credential_until(&alice, ABC, expire, false).await;
        app.clock.advance(chrono::Duration::seconds(3599));
        let alice = app.renew(&alice).await;
        set_roles(&app, &alice, &early, role("RM0001", Role::Reader), "")
            .await
            .unwrap();
        app.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(
            set_roles(&app, &alice, &late, role("RM0001", Role::Reader), "")
                .await
                .unwrap_err()
                .code(),
            Code::FailedPrecondition
        );
    }
}

async fn get_business(app: &TestApp, who: &Person) -> pb::Business {
    app.accounts()
        .get_business(app.req(
            pb::GetBusinessRequest {
                name: format!("businesses/{ABC}"),
            },
            &who.token,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// GetRoleFacts reads every membership with its effective roles in ONE
/// statement, however many businesses, roles and groups the principal has.
#[tokio::test]
async fn r_ac_4_role_and_business_facts_are_read_in_one_statement_each() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        app.join(&alice, &bob, role("RM0001", Role::Reader)).await;
        create_group(
            &app,
            &alice,
            "G1",
            vec![pr("RM0001", Role::Editor)],
            vec![bob.principal.clone()],
        )
        .await
        .unwrap();
        create_group(
            &app,
            &alice,
            "G2",
            vec![pr("RM0002", Role::Pam)],
            vec![bob.principal.clone()],
        )
        .await
        .unwrap();
        // Bob also registers ITN, so he has two memberships.
        let mut itn = abc_registration();
        itn.program_account = format!("{ITN}RM0001");
        itn.legal_name = "ITN Logistics Inc.".to_owned();
        itn.address = registry()[1].address.clone();
        itn.answers = vec![pb::KnownFactAnswer {
            question_id: "daily_notice_total".to_owned(),
            answer: "98765.43".to_owned(),
        }];
        app.accounts()
            .register_business(app.req(itn, &bob.token))
            .await
            .unwrap();

        let mut db = ccp_platform::db::connect(&backend.settings("accounts"))
            .await
            .unwrap();
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        db.set_metric_callback(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let rows = ccp_accounts::store::role_facts(&db, &bob.principal)
            .await
            .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1, "{}", backend.name());
        let facts_rows = ccp_accounts::store::business_facts(&db, ABC).await.unwrap();
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "business facts in one more statement"
        );
        assert_eq!(facts_rows.iter().filter(|r| r.kind == "P").count(), 2);
        let businesses: std::collections::BTreeSet<_> =
            rows.iter().map(|r| r.bn9.clone()).collect();
        assert_eq!(businesses.len(), 2);
        let facts = app.role_facts(&bob.principal).await;
        assert_eq!(facts.memberships.len(), 2);
        assert_eq!(
            facts.memberships[0].roles,
            vec![pr("RM0001", Role::Editor), pr("RM0002", Role::Pam)]
        );
        assert!(facts.memberships[1].business_manager);
    }
}

async fn group_facts(app: &TestApp, name: &str) -> Result<pb::EmployeeGroupFacts, tonic::Status> {
    app.facts()
        .get_employee_group_facts(app.internal(pb::GetEmployeeGroupFactsRequest {
            name: name.to_owned(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

/// GetEmployeeGroupFacts names the group's business and the programs its
/// roles cover (what the gateway needs to let a PAM change a group of its
/// programs, R-AC-6), and whether it is deleted; NOT_FOUND under another
/// business or for an unknown id; one statement; internal token required.
#[tokio::test]
async fn r_ac_6_employee_group_facts_name_the_business_programs_and_deletion() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let g = create_group(
            &app,
            &alice,
            "Brokers desk",
            vec![pr("RM0002", Role::Editor), pr("RM0001", Role::Reader)],
            vec![],
        )
        .await
        .unwrap();
        let facts = group_facts(&app, &g.name).await.unwrap();
        assert_eq!(
            facts,
            pb::EmployeeGroupFacts {
                name: g.name.clone(),
                business: ABC.to_owned(),
                program_accounts: vec![format!("{ABC}RM0001"), format!("{ABC}RM0002")],
                deleted: false,
            },
            "{}",
            backend.name()
        );

        // A group holding no role covers no program.
        let empty = create_group(&app, &alice, "Nobody", vec![], vec![])
            .await
            .unwrap();
        let facts = group_facts(&app, &empty.name).await.unwrap();
        assert_eq!(facts.business, ABC);
        assert!(facts.program_accounts.is_empty());
        assert!(!facts.deleted);

        // Named under another business, or unknown: NOT_FOUND.
        let id = g.name.rsplit('/').next().unwrap();
        let elsewhere = format!("businesses/{ITN}/employeeGroups/{id}");
        assert_eq!(
            group_facts(&app, &elsewhere).await.unwrap_err().code(),
            Code::NotFound
        );
        let unknown = format!("businesses/{ABC}/employeeGroups/{}", uuid::Uuid::new_v4());
        assert_eq!(
            group_facts(&app, &unknown).await.unwrap_err().code(),
            Code::NotFound
        );
        // A name that is not a group's: INVALID_ARGUMENT naming `name`.
        for bad in [
            format!("businesses/{ABC}/employeeGroups/not-a-uuid"),
            format!("businesses/{ABC}/employeeRequests/{id}"),
            String::new(),
        ] {
            let err = group_facts(&app, &bad).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
            assert_eq!(fields(&err), vec!["name".to_owned()], "{bad}");
        }
        // Without an internal token: UNAUTHENTICATED.
        let err = app
            .facts()
            .get_employee_group_facts(tonic::Request::new(pb::GetEmployeeGroupFactsRequest {
                name: g.name.clone(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);

        // Deleted: flagged, and the programs it covered are still named.
        app.accounts()
            .delete_employee_group(app.req(
                pb::DeleteEmployeeGroupRequest {
                    request_id: rid(),
                    name: g.name.clone(),
                    etag: String::new(),
                },
                &alice.token,
            ))
            .await
            .unwrap();
        let facts = group_facts(&app, &g.name).await.unwrap();
        assert!(facts.deleted);
        assert_eq!(facts.program_accounts.len(), 2);

        // One statement, however many roles the group holds.
        let mut db = ccp_platform::db::connect(&backend.settings("accounts"))
            .await
            .unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        db.set_metric_callback(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let rows = ccp_accounts::store::group_facts(&db, ABC, id)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(count.load(Ordering::SeqCst), 1, "{}", backend.name());
    }
}
