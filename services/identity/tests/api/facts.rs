//! IdentityFacts: batched profile look-ups and credential facts, internal token only.

use ccp_proto::identity::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn r_id_5_get_profiles_is_batched_and_lists_missing_ids() {
    for backend in backends().await {
        let app = spawn_app(&backend).await;
        let a = app.person("Tess").await;
        let b = app.person("Uma").await;
        let no_profile = app.sign_in("vic").await;
        let id = |s: &pb::Session| s.principal.trim_start_matches("person:").to_owned();
        let unknown = uuid::Uuid::new_v4().to_string();
        let mut facts = app.facts.clone();
        let r = facts
            .get_profiles(app.req(
                pb::GetProfilesRequest {
                    profile_ids: vec![id(&a), id(&b), id(&no_profile), unknown.clone(), id(&a)],
                },
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        let mut names: Vec<_> = r.profiles.iter().map(|p| p.legal_name.clone()).collect();
        names.sort();
        assert_eq!(names, ["Tess", "Uma"], "{}", backend.name());
        let mut missing = r.missing.clone();
        missing.sort();
        let mut expected = vec![id(&no_profile), unknown];
        expected.sort();
        assert_eq!(missing, expected);
        let tess = r.profiles.iter().find(|p| p.legal_name == "Tess").unwrap();
        assert_eq!(tess.principal, a.principal);
        assert_eq!(tess.email, "tess@example.ca");

        let err = facts
            .get_profiles(app.req(
                pb::GetProfilesRequest {
                    profile_ids: vec!["nope".into()],
                },
                None,
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["profile_ids[0]"]);
        let many = (0..1001)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let err = facts
            .get_profiles(app.req(pb::GetProfilesRequest { profile_ids: many }, None))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let thousand: Vec<String> = (0..1000)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let r = facts
            .get_profiles(app.req(
                pb::GetProfilesRequest {
                    profile_ids: thousand,
                },
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.missing.len(), 1000);

        // Without an internal token: unauthenticated.
        let err = facts
            .get_profiles(tonic::Request::new(pb::GetProfilesRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        // An unknown credential does not exist.
        let c = facts
            .get_credential(app.req(
                pb::GetCredentialRequest {
                    credential_id: uuid::Uuid::new_v4().to_string(),
                },
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!c.exists);
    }
}
