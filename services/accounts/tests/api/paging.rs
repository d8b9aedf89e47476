//! R-IN-1: page tokens are opaque and bound to their list, parent, filter
//! and caller; anything else is INVALID_ARGUMENT naming `page_token`.

use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::EmployeeRequestState as S;
use tonic::Code;

use crate::helpers::*;

/// Lists `parent`'s employee requests in `state`, one a page, as `who`.
async fn requests(
    app: &TestApp,
    who: &Person,
    parent: &str,
    state: S,
    page_token: &str,
) -> Result<pb::ListEmployeeRequestsResponse, tonic::Status> {
    app.accounts()
        .list_employee_requests(app.req(
            pb::ListEmployeeRequestsRequest {
                parent: parent.to_owned(),
                state: state as i32,
                page_size: 1,
                page_token: page_token.to_owned(),
            },
            &who.token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn assert_bad_token(r: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let err = r.expect_err(what);
    assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
    assert_eq!(fields(&err), vec!["page_token".to_owned()], "{what}");
}

#[tokio::test]
async fn r_in_1_a_page_token_replayed_on_another_list_parent_filter_or_caller_or_tampered_is_invalid_argument()
 {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        let carol = app.person("Carol Singh").await;
        for who in [&bob, &carol] {
            app.accounts()
                .request_employee_access(app.req(
                    pb::RequestEmployeeAccessRequest {
                        request_id: rid(),
                        parent: format!("businesses/{ABC}"),
                        note: "Hi, I need access".to_owned(),
                    },
                    &who.token,
                ))
                .await
                .unwrap();
        }
        let abc = format!("businesses/{ABC}");
        let first = requests(&app, &alice, &abc, S::Unspecified, "")
            .await
            .unwrap();
        let token = first.next_page_token;
        assert!(!token.is_empty(), "{}", backend.name());
        // The token continues its own list for its own caller.
        let second = requests(&app, &alice, &abc, S::Unspecified, &token)
            .await
            .unwrap();
        assert_eq!(second.requests.len(), 1);
        assert_ne!(second.requests[0].name, first.requests[0].name);
        assert!(second.next_page_token.is_empty());

        // Another caller (the service itself does not authorize: only the
        // binding refuses it).
        assert_bad_token(
            requests(&app, &bob, &abc, S::Unspecified, &token).await,
            "another caller",
        );
        // Another filter.
        assert_bad_token(
            requests(&app, &alice, &abc, S::Pending, &token).await,
            "another filter",
        );
        // Another parent (refused before the business is looked up).
        assert_bad_token(
            requests(
                &app,
                &alice,
                &format!("businesses/{ITN}"),
                S::Unspecified,
                &token,
            )
            .await,
            "another parent",
        );
        // Another list whose keys have the same shape (time|id).
        assert_bad_token(
            app.accounts()
                .list_employees(app.req(
                    pb::ListEmployeesRequest {
                        parent: abc.clone(),
                        page_token: token.clone(),
                        ..Default::default()
                    },
                    &alice.token,
                ))
                .await,
            "another list",
        );
        // Tampered: every character changed in turn, and a made-up token.
        for i in 0..token.len() {
            let mut t = token.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(t).unwrap();
            assert_bad_token(
                requests(&app, &alice, &abc, S::Unspecified, &t).await,
                &format!("character {i} changed"),
            );
        }
        assert_bad_token(
            requests(&app, &alice, &abc, S::Unspecified, "cDF8MjAyNnwx").await,
            "an unsigned token",
        );
    }
}
