//! Forwarding of the public services (R-GW-1), revocation (R-ID-5) and the
//! gateway's limits, against the in-test doubles of the public services.

use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, Principal, TokenMinter};
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use tonic::Code;

use crate::helpers::*;

struct World {
    _server: UpstreamServer,
    upstream: Upstream,
    gateway: TestGateway,
    minter: TokenMinter,
    bam: Principal,
}

async fn world(
    ctx: ServiceContext,
    tweak: impl FnOnce(&mut ccp_gateway::GatewaySettings),
) -> World {
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let bam = Principal::Person(uuid::Uuid::new_v4());
    upstream.set_roles(&bam.to_string(), vec![membership(CLIENT, true, &[], 1)]);
    upstream.set_business(CLIENT, &["123456782RM0001", "123456782RM0002"]);
    let server = spawn_upstream(upstream.clone()).await;
    let minter = TokenMinter::new(ctx.clock.clone()).unwrap();
    let mut s = settings(&server);
    tweak(&mut s);
    let gateway = spawn_gateway(&ctx, s, &minter).await;
    World {
        _server: server,
        upstream,
        gateway,
        minter,
        bam,
    }
}

#[tokio::test]
async fn r_gw_1_a_forwarded_call_carries_the_callers_token_the_gateway_credential_and_the_deadline()
{
    let w = world(ServiceContext::in_memory(Clock::settable(t0())), |_| {}).await;
    let mut accounts = AccountsClient::new(w.gateway.channel().await);
    let token = w.minter.person(w.bam.id()).unwrap();
    let mut req = w.gateway.bearer(
        &token,
        acc::GetBusinessRequest {
            name: format!("businesses/{CLIENT}"),
        },
    );
    req.set_timeout(std::time::Duration::from_secs(5));
    req.metadata_mut()
        .insert("x-request-id", "req-42".parse().unwrap());
    let business = accounts.get_business(req).await.unwrap().into_inner();
    assert_eq!(business.bn9, CLIENT);
    let seen = w
        .upstream
        .state
        .lock()
        .unwrap()
        .last_forwarded
        .clone()
        .unwrap();
    assert_eq!(
        seen.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {token}")
    );
    let internal = seen.get(INTERNAL_TOKEN_HEADER).unwrap().to_str().unwrap();
    assert_eq!(
        w.gateway.ctx.internal.verify(internal).unwrap().sub,
        "service:gateway"
    );
    assert_eq!(seen.get("x-request-id").unwrap(), "req-42");
    assert!(seen.get("grpc-timeout").is_some(), "deadline forwarded");
}

#[tokio::test]
async fn r_gw_1_permission_denied_never_reveals_whether_the_target_exists() {
    let w = world(ServiceContext::in_memory(Clock::settable(t0())), |_| {}).await;
    let outsider = Principal::Person(uuid::Uuid::new_v4());
    w.upstream
        .set_roles(&outsider.to_string(), vec![membership(OTHER, true, &[], 1)]);
    let token = w.minter.person(outsider.id()).unwrap();
    let mut accounts = AccountsClient::new(w.gateway.channel().await);
    // An existing business and an unregistered one answer alike.
    let mut answers = Vec::new();
    for bn in [CLIENT, "300000007"] {
        let err = accounts
            .get_business(w.gateway.bearer(
                &token,
                acc::GetBusinessRequest {
                    name: format!("businesses/{bn}"),
                },
            ))
            .await
            .unwrap_err();
        answers.push((err.code(), err.message().to_owned()));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, Code::PermissionDenied);
    // The BAM gets through; a bad name is INVALID_ARGUMENT naming the field.
    let bam = w.minter.person(w.bam.id()).unwrap();
    let err = accounts
        .get_business(w.gateway.bearer(
            &bam,
            acc::GetBusinessRequest {
                name: "businesses/123".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(ccp_platform::error::field_violations(&err)[0].field, "name");
}

#[tokio::test]
async fn per_principal_rate_limit_and_message_size_limit_are_enforced() {
    let w = world(ServiceContext::in_memory(Clock::settable(t0())), |s| {
        s.rate_limit_per_second = 1;
        s.rate_limit_burst = 3;
        s.max_message_bytes = 2048;
    })
    .await;
    let mut identity = IdentityClient::new(w.gateway.channel().await);
    let token = w.minter.person(w.bam.id()).unwrap();
    let mut codes = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let r = identity
            .get_my_profile(w.gateway.bearer(&token, idn::GetMyProfileRequest {}))
            .await;
        codes.push(r.as_ref().err().map(|e| e.code()));
        if let Err(e) = r {
            limited.get_or_insert(e);
        }
    }
    assert!(codes.contains(&Some(Code::ResourceExhausted)), "{codes:?}");
    assert_eq!(codes[0], None);
    // The refusal says why (ErrorInfo) and when to try again (RetryInfo):
    // within the one second a call costs at 1 per second.
    let limited = limited.unwrap();
    use tonic_types::StatusExt as _;
    let info = limited.get_details_error_info().expect("error info");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("RATE_LIMITED", "ccp")
    );
    let delay = limited
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("retry info");
    assert!(
        delay > std::time::Duration::ZERO && delay <= std::time::Duration::from_secs(1),
        "{delay:?}"
    );
    // Another principal has its own budget.
    let other = w.minter.person(uuid::Uuid::new_v4()).unwrap();
    identity
        .get_my_profile(w.gateway.bearer(&other, idn::GetMyProfileRequest {}))
        .await
        .unwrap();
    let big = idn::SignInRequest {
        id_token: "x".repeat(10_000),
    };
    let err = identity.sign_in(big).await.unwrap_err();
    // gRPC's convention for a message over the limit (R-IN-1).
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
}

fn grants(bam: bool, programs: &[&str]) -> Option<ccp_proto::common::v1::RoleGrants> {
    Some(ccp_proto::common::v1::RoleGrants {
        business_manager: bam,
        program_roles: programs
            .iter()
            .map(|p| ccp_proto::common::v1::ProgramRole {
                program_account: (*p).into(),
                role: ccp_proto::common::v1::Role::Editor as i32,
            })
            .collect(),
    })
}

#[tokio::test]
async fn r_gw_1_every_resource_a_request_names_must_be_allowed() {
    let w = world(ServiceContext::in_memory(Clock::settable(t0())), |_| {}).await;
    use ccp_proto::common::v1::Role;
    let pam = Principal::Person(uuid::Uuid::new_v4());
    w.upstream.set_roles(
        &pam.to_string(),
        vec![membership(
            CLIENT,
            false,
            &[("123456782RM0001", Role::Pam as i32)],
            1,
        )],
    );
    let token = w.minter.person(pam.id()).unwrap();
    let mut accounts = AccountsClient::new(w.gateway.channel().await);
    let approve =
        |g: Option<ccp_proto::common::v1::RoleGrants>| acc::ApproveEmployeeRequestRequest {
            request_id: "r1".into(),
            name: format!("businesses/{CLIENT}/employeeRequests/abc"),
            grants: g,
        };
    // Forwarded (the double answers UNIMPLEMENTED): its own program only.
    let err = accounts
        .approve_employee_request(
            w.gateway
                .bearer(&token, approve(grants(false, &["123456782RM0001"]))),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "forwarded");
    // Two programs need MANAGE on both; BAM needs MANAGE on the business.
    for g in [
        grants(false, &["123456782RM0001", "123456782RM0002"]),
        grants(true, &["123456782RM0001"]),
    ] {
        let err = accounts
            .approve_employee_request(w.gateway.bearer(&token, approve(g)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    // Changing a BAM's roles needs MANAGE on the business: a PAM is refused.
    let err = accounts
        .set_member_roles(w.gateway.bearer(
            &token,
            acc::SetMemberRolesRequest {
                request_id: "r2".into(),
                name: format!("businesses/{CLIENT}/members/{}", w.bam),
                grants: grants(false, &["123456782RM0001"]),
                etag: "1".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // The BAM may.
    let bam = w.minter.person(w.bam.id()).unwrap();
    let err = accounts
        .set_member_roles(w.gateway.bearer(
            &bam,
            acc::SetMemberRolesRequest {
                request_id: "r3".into(),
                name: format!("businesses/{CLIENT}/members/{pam}"),
                grants: grants(false, &["123456782RM0002"]),
                etag: "1".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "forwarded");
}

#[tokio::test]
async fn r_gw_4_a_forwarded_call_carrying_a_revision_is_authorized_from_facts_that_fresh() {
    let w = world(ServiceContext::in_memory(Clock::settable(t0())), |_| {}).await;
    let mut accounts = AccountsClient::new(w.gateway.channel().await);
    let token = w.minter.person(w.bam.id()).unwrap();
    let get = |revision: Option<String>| {
        let mut r = w.gateway.bearer(
            &token,
            acc::GetBusinessRequest {
                name: format!("businesses/{CLIENT}"),
            },
        );
        if let Some(rev) = revision {
            r.metadata_mut()
                .insert("x-ccp-revision", rev.parse().unwrap());
        }
        r
    };
    accounts.get_business(get(None)).await.unwrap();
    // The BAM is removed (revision 2); the event has not arrived.
    w.upstream.set_roles(&w.bam.to_string(), vec![]);
    accounts.get_business(get(None)).await.unwrap();
    let rev = ccp_platform::revision::Revision::new("accounts", CLIENT, 2).encode();
    let err = accounts.get_business(get(Some(rev))).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = accounts
        .get_business(get(Some("garbage".into())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn r_gw_1_a_program_account_the_business_does_not_have_is_denied_and_not_found_to_its_viewers()
 {
    use ccp_proto::common::v1::{Action, Role};
    use ccp_proto::gateway::v1 as gw;
    let w = world(ServiceContext::in_memory(Clock::settable(t0())), |_| {}).await;
    let (pam, outsider) = (
        Principal::Person(uuid::Uuid::new_v4()),
        Principal::Person(uuid::Uuid::new_v4()),
    );
    w.upstream.set_roles(
        &pam.to_string(),
        vec![membership(
            CLIENT,
            false,
            &[("123456782RM0001", Role::Pam as i32)],
            1,
        )],
    );
    w.upstream
        .set_roles(&outsider.to_string(), vec![membership(OTHER, true, &[], 1)]);
    let bam = w.minter.person(w.bam.id()).unwrap();
    // Check: the BAM may VIEW every program its business has, and no other.
    let mut api = w.gateway.authorization().await;
    for (program, decision, reason) in [
        (
            "123456782RM0002",
            gw::Decision::Allow,
            gw::DenyReason::Unspecified,
        ),
        (
            "123456782RM0009",
            gw::Decision::Deny,
            gw::DenyReason::NoRole,
        ),
    ] {
        let answer = api
            .check(w.gateway.bearer(
                &bam,
                gw::CheckRequest {
                    item: Some(gw::CheckItem {
                        action: Action::View as i32,
                        resource: program.into(),
                        submitted_by: String::new(),
                    }),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.decision, decision as i32, "{program}");
        assert_eq!(answer.deny_reason, reason as i32, "{program}");
    }
    // Forwarded: granting a role on RM0009 is NOT_FOUND to those who may view
    // the business but not act on it, and PERMISSION_DENIED, as for anything
    // unseen, to others.
    let accounts = AccountsClient::new(w.gateway.channel().await);
    let grant = |program: &str| acc::SetMemberRolesRequest {
        request_id: "r9".into(),
        name: format!("businesses/{CLIENT}/members/{pam}"),
        grants: grants(false, &[program]),
        etag: "1".into(),
    };
    let code = |who: &Principal, program: &'static str| {
        let token = w.minter.person(who.id()).unwrap();
        let request = w.gateway.bearer(&token, grant(program));
        let mut accounts = accounts.clone();
        async move { accounts.set_member_roles(request).await.unwrap_err() }
    };
    assert_eq!(
        code(&w.bam, "123456782RM0002").await.code(),
        Code::Unimplemented
    );
    // The BAM is allowed on every program of its business: its call is
    // forwarded unread, and the service answers NOT_FOUND (the double: UNIMPLEMENTED).
    assert_eq!(
        code(&w.bam, "123456782RM0009").await.code(),
        Code::Unimplemented
    );
    assert_eq!(code(&pam, "123456782RM0009").await.code(), Code::NotFound);
    // The PAM may not grant RM0002 (it does not manage it): denied as before.
    assert_eq!(
        code(&pam, "123456782RM0002").await.code(),
        Code::PermissionDenied
    );
    let unseen = code(&outsider, "123456782RM0009").await;
    let seen = code(&outsider, "123456782RM0001").await;
    assert_eq!(unseen.code(), Code::PermissionDenied);
    assert_eq!(
        (unseen.code(), unseen.message()),
        (seen.code(), seen.message())
    );
}
