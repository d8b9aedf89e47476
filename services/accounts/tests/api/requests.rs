//! R-AC-3: employee access requests.

use std::time::Duration;

use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::EmployeeRequestState as S;
use ccp_proto::common::v1::Role;
use tonic::Code;

use crate::helpers::*;

async fn ask(app: &TestApp, who: &Person) -> Result<pb::EmployeeRequest, tonic::Status> {
    app.accounts()
        .request_employee_access(app.req(
            pb::RequestEmployeeAccessRequest {
                request_id: rid(),
                parent: format!("businesses/{ABC}"),
                note: "Hi, I need access to view the monthly payables".to_owned(),
            },
            &who.token,
        ))
        .await
        .map(|r| r.into_inner().request.unwrap())
}

#[tokio::test]
async fn r_ac_3_one_pending_request_per_person_and_business_listed_with_names() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        let carol = app.person("Carol Singh").await;
        let r = ask(&app, &bob).await.unwrap();
        assert_eq!(r.state, S::Pending as i32);
        assert_eq!(r.business_legal_name, "ABC Windows & Doors Inc.");
        assert_eq!(
            r.expire_time.unwrap().seconds - r.create_time.unwrap().seconds,
            30 * 86_400
        );
        assert_eq!(
            ask(&app, &bob).await.unwrap_err().code(),
            Code::AlreadyExists
        );
        ask(&app, &carol).await.unwrap();
        // The note is 1–500 characters.
        let err = app
            .accounts()
            .request_employee_access(app.req(
                pb::RequestEmployeeAccessRequest {
                    request_id: rid(),
                    parent: format!("businesses/{ABC}"),
                    note: "x".repeat(501),
                },
                &carol.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), vec!["note".to_owned()]);
        // Unregistered business: NOT_FOUND.
        let err = app
            .accounts()
            .request_employee_access(app.req(
                pb::RequestEmployeeAccessRequest {
                    request_id: rid(),
                    parent: format!("businesses/{ITN}"),
                    note: "hi".to_owned(),
                },
                &carol.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        // Listed with names and e-mails from identity's real profiles, one
        // GetProfiles call per page (counted by identity's own handler spans).
        let (profiles, _counting) = SpanCounter::install("get_profiles", "ccp_identity");
        let page = app
            .accounts()
            .list_employee_requests(app.req(
                pb::ListEmployeeRequestsRequest {
                    parent: format!("businesses/{ABC}"),
                    page_size: 1,
                    ..Default::default()
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.requests.len(), 1);
        assert_eq!(page.requests[0].requester_name, "Bob Tremblay");
        assert_eq!(page.requests[0].requester_email, "bob.tremblay@example.com");
        assert!(!page.next_page_token.is_empty());
        let page2 = app
            .accounts()
            .list_employee_requests(app.req(
                pb::ListEmployeeRequestsRequest {
                    parent: format!("businesses/{ABC}"),
                    page_size: 1,
                    page_token: page.next_page_token,
                    ..Default::default()
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page2.requests[0].requester_name, "Carol Singh");
        assert!(page2.next_page_token.is_empty());
        assert_eq!(
            profiles.calls(),
            [1, 1],
            "one GetProfiles call per page, naming that page's requester"
        );
        // The requester withdraws; then may ask again.
        app.accounts()
            .withdraw_employee_request(app.req(
                pb::WithdrawEmployeeRequestRequest {
                    request_id: rid(),
                    name: r.name.clone(),
                },
                &bob.token,
            ))
            .await
            .unwrap();
        let err = app
            .accounts()
            .withdraw_employee_request(app.req(
                pb::WithdrawEmployeeRequestRequest {
                    request_id: rid(),
                    name: r.name,
                },
                &bob.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        ask(&app, &bob).await.unwrap();
        let mine = app
            .accounts()
            .list_my_employee_requests(
                app.req(pb::ListMyEmployeeRequestsRequest::default(), &bob.token),
            )
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            mine.requests.iter().map(|r| r.state).collect::<Vec<_>>(),
            [S::Pending as i32, S::Withdrawn as i32]
        );
    }
}

#[tokio::test]
async fn r_ac_3_approve_grants_roles_and_reject_records_the_reason() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        let carol = app.person("Carol Singh").await;
        let rb = ask(&app, &bob).await.unwrap();
        let rc = ask(&app, &carol).await.unwrap();
        let mut c = app.accounts();
        // No role, a program not the business's, BAM per program: refused.
        for (grants, field) in [
            (Some(ccp_proto::common::v1::RoleGrants::default()), "grants"),
            (None, "grants"),
            (
                Some(ccp_proto::common::v1::RoleGrants {
                    business_manager: false,
                    program_roles: vec![ccp_proto::common::v1::ProgramRole {
                        program_account: format!("{ITN}RM0001"),
                        role: Role::Reader as i32,
                    }],
                }),
                "grants.program_roles[0].program_account",
            ),
            (
                Some(role("RM0001", Role::Bam)),
                "grants.program_roles[0].role",
            ),
        ] {
            let err = c
                .approve_employee_request(app.req(
                    pb::ApproveEmployeeRequestRequest {
                        request_id: rid(),
                        name: rb.name.clone(),
                        grants,
                    },
                    &alice.token,
                ))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);
            assert_eq!(fields(&err), vec![field.to_owned()]);
        }
        // A program of the registry not linked (RM0009) is refused too.
        let err = c
            .approve_employee_request(app.req(
                pb::ApproveEmployeeRequestRequest {
                    request_id: rid(),
                    name: rb.name.clone(),
                    grants: Some(role("RM0009", Role::Reader)),
                },
                &alice.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let approved = c
            .approve_employee_request(app.req(
                pb::ApproveEmployeeRequestRequest {
                    request_id: rid(),
                    name: rb.name.clone(),
                    grants: Some(role("RM0001", Role::Editor)),
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(approved.request.as_ref().unwrap().state, S::Approved as i32);
        assert_eq!(approved.request.unwrap().decided_by, alice.principal);
        let m = approved.member.unwrap();
        assert_eq!(m.display_name, "Bob Tremblay");
        assert_eq!(m.effective_roles[0].role, Role::Editor as i32);
        let facts = app.role_facts(&bob.principal).await;
        assert_eq!(
            facts.memberships[0].roles[0].program_account,
            format!("{ABC}RM0001")
        );
        // Approving again: FAILED_PRECONDITION. A member cannot ask again.
        let err = c
            .approve_employee_request(app.req(
                pb::ApproveEmployeeRequestRequest {
                    request_id: rid(),
                    name: rb.name,
                    grants: Some(role("RM0001", Role::Reader)),
                },
                &alice.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(
            ask(&app, &bob).await.unwrap_err().code(),
            Code::AlreadyExists
        );
        // Reject with a reason.
        let err = c
            .reject_employee_request(app.req(
                pb::RejectEmployeeRequestRequest {
                    request_id: rid(),
                    name: rc.name.clone(),
                    reason: String::new(),
                },
                &alice.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), vec!["reason".to_owned()]);
        let rejected = c
            .reject_employee_request(app.req(
                pb::RejectEmployeeRequestRequest {
                    request_id: rid(),
                    name: rc.name.clone(),
                    reason: "Not an employee".to_owned(),
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        assert_eq!(rejected.state, S::Rejected as i32);
        assert_eq!(rejected.reject_reason, "Not an employee");
        assert!(
            app.role_facts(&carol.principal)
                .await
                .memberships
                .is_empty()
        );
        // A request under another business's name is NOT_FOUND.
        let other = rc.name.replace(ABC, ITN);
        let err = c
            .reject_employee_request(app.req(
                pb::RejectEmployeeRequestRequest {
                    request_id: rid(),
                    name: other,
                    reason: "x".to_owned(),
                },
                &alice.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
}

#[tokio::test]
async fn r_ac_3_a_request_expires_at_approval_time_after_30_days() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await; // the sweep runs hourly here
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        let r = ask(&app, &bob).await.unwrap();
        app.clock
            .advance(chrono::Duration::seconds(30 * 86_400 - 1));
        let carol = app.person("Carol Singh").await;
        let rc = ask(&app, &carol).await.unwrap();
        app.clock.advance(chrono::Duration::seconds(1));
        let alice = app.renew(&alice).await;
        let bob = app.renew(&bob).await;
        let err = app
            .accounts()
            .approve_employee_request(app.req(
                pb::ApproveEmployeeRequestRequest {
                    request_id: rid(),
                    name: r.name.clone(),
                    grants: Some(role("RM0001", Role::Reader)),
                },
                &alice.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let mine = app
            .accounts()
            .list_my_employee_requests(
                app.req(pb::ListMyEmployeeRequestsRequest::default(), &bob.token),
            )
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mine.requests[0].state, S::Expired as i32);
        assert!(app.role_facts(&bob.principal).await.memberships.is_empty());
        // Carol's request is one second younger: still approvable.
        app.accounts()
            .approve_employee_request(app.req(
                pb::ApproveEmployeeRequestRequest {
                    request_id: rid(),
                    name: rc.name,
                    grants: Some(role("RM0002", Role::Reader)),
                },
                &alice.token,
            ))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn r_ac_3_the_periodic_sweep_expires_pending_requests() {
    for backend in TestBackend::all().await {
        let app = spawn_app_with(&backend, Options { sweep_secs: 1 }).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        ask(&app, &bob).await.unwrap();
        app.clock.advance(chrono::Duration::seconds(30 * 86_400));
        let alice = app.renew(&alice).await;
        let bob = app.renew(&bob).await;
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let mine = app
                    .accounts()
                    .list_my_employee_requests(app.req(
                        pb::ListMyEmployeeRequestsRequest {
                            state: S::Expired as i32,
                            ..Default::default()
                        },
                        &bob.token,
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                if mine.requests.len() == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("the sweep expired the request");
        assert!(
            app.audit_actions(&alice, ABC)
                .await
                .contains(&"accounts.employee_request.expire".to_owned())
        );
    }
}

#[tokio::test]
async fn r_in_1_a_note_with_a_nul_is_refused_alike_on_both_backends_and_writes_nothing() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        for note in ["nul\u{0}inside", "bell\u{7}"] {
            let err = app
                .accounts()
                .request_employee_access(app.req(
                    pb::RequestEmployeeAccessRequest {
                        request_id: rid(),
                        parent: format!("businesses/{ABC}"),
                        note: note.to_owned(),
                    },
                    &bob.token,
                ))
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "{}: {err:?}",
                backend.name()
            );
            assert_eq!(fields(&err), vec!["note".to_owned()], "{}", backend.name());
        }
        // Nothing was written: the one pending request per person is still free,
        // and a note may span lines.
        let r = app
            .accounts()
            .request_employee_access(app.req(
                pb::RequestEmployeeAccessRequest {
                    request_id: rid(),
                    parent: format!("businesses/{ABC}"),
                    note: "Customs clerk\nWindows division".to_owned(),
                },
                &bob.token,
            ))
            .await
            .unwrap()
            .into_inner();
        let r = r.request.expect("the request");
        assert_eq!(r.state, S::Pending as i32, "{}", backend.name());
    }
}
