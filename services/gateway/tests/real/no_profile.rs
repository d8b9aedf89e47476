//! R-ID-2 through the gateway on the real services: a person signed in
//! without a profile is told to create it first. GetMyProfile answers
//! FAILED_PRECONDITION as identity.proto says, and so does every other
//! self-service call; only CreateProfile goes through, after which the new
//! session reads its profile.

use ccp_proto::accounts::v1 as acc;
use ccp_proto::identity::v1 as idn;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::harness::{Suite, memory_context};
use crate::world::{self, Who, req, rid};

fn assert_profile_required(what: &str, status: &tonic::Status) {
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{what}: {status:?}"
    );
    assert!(
        status.message().contains("create your profile first"),
        "{what}: {status:?}"
    );
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("PROFILE_REQUIRED", "ccp"),
        "{what}"
    );
}

#[tokio::test]
async fn r_id_2_get_my_profile_without_a_profile_is_failed_precondition_through_the_gateway() {
    let suite = Suite::start(memory_context(), 1).await;
    let gw = suite.gw();
    let nobody = world::sign_in(&suite, gw, &format!("no-profile-{}", rid())).await;
    assert!(nobody.session.as_ref().unwrap().profile_required);

    let err = gw
        .identity()
        .get_my_profile(req(&nobody, idn::GetMyProfileRequest {}))
        .await
        .unwrap_err();
    assert_profile_required("GetMyProfile", &err);
    let err = gw
        .accounts()
        .list_my_businesses(req(&nobody, acc::ListMyBusinessesRequest::default()))
        .await
        .unwrap_err();
    assert_profile_required("ListMyBusinesses", &err);
    let err = gw
        .identity()
        .list_audit_events(req(
            &nobody,
            idn::ListAuditEventsRequest {
                parent: "profiles/me".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_profile_required("ListAuditEvents profiles/me", &err);
    // A checked call still answers the bare denial (R-AZ-6).
    let err = gw
        .accounts()
        .get_business(req(
            &nobody,
            acc::GetBusinessRequest {
                name: format!("businesses/{}", world::ABC),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(err.message(), "permission denied");

    // Once the profile exists, the new session reads it.
    let created = gw
        .identity()
        .create_profile(req(
            &nobody,
            idn::CreateProfileRequest {
                request_id: rid(),
                profile: Some(idn::Profile {
                    legal_name: "Nadia Nobody".into(),
                    email: "nadia@example.ca".into(),
                    preferred_language: idn::Language::En as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let session = created.session.unwrap();
    let someone = Who {
        token: Some(session.access_token.clone()),
        principal: session.principal.clone(),
        session: Some(session),
    };
    let profile = gw
        .identity()
        .get_my_profile(req(&someone, idn::GetMyProfileRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.legal_name, "Nadia Nobody");
}
