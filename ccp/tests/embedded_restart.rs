//! R-GW-4 in the embedded mode (`ccp up`): a sign-out stays in force when the
//! suite is stopped and started again on the same data directory, although
//! the in-memory bus that carried its event is gone; so does a machine
//! credential's revocation; a session not signed out and a credential not
//! revoked keep working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ccp::embedded::Suite;
use ccp::settings::SuiteSettings;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::identity::v1 as pb;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use tonic::transport::Channel;

fn settings(dir: &std::path::Path) -> SuiteSettings {
    let mut settings = SuiteSettings {
        data_dir: dir.to_owned(),
        ..SuiteSettings::default()
    };
    settings.on_spare_loopback_ports();
    settings
}

fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r.set_timeout(Duration::from_secs(10));
    r
}

async fn gateway(suite: &Suite) -> IdentityClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", suite.endpoints().gateway))
        .unwrap()
        .connect()
        .await
        .unwrap();
    IdentityClient::new(channel)
}

/// Signs `subject` in through the gateway and creates a profile; returns the access token.
async fn person(
    settings: &SuiteSettings,
    gw: &mut IdentityClient<Channel>,
    subject: &str,
) -> String {
    let id_token =
        ccp::identity_cmd::dev_token(settings, None, subject, Duration::from_secs(60)).unwrap();
    let first = gw
        .sign_in(tonic::Request::new(pb::SignInRequest { id_token }))
        .await
        .unwrap()
        .into_inner();
    let created = gw
        .create_profile(bearer(
            &first.access_token,
            pb::CreateProfileRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                profile: Some(pb::Profile {
                    legal_name: subject.to_owned(),
                    email: format!("{subject}@example.ca"),
                    preferred_language: pb::Language::En as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    created.session.unwrap().access_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_4_a_sign_out_survives_an_embedded_restart() {
    let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let first = settings(dir.path());
    let suite = Suite::start(first.clone(), ServiceContext::in_memory(Clock::system()))
        .await
        .expect("suite starts");
    let mut gw = gateway(&suite).await;
    let leaving = person(&first, &mut gw, "leaving").await;
    let staying = person(&first, &mut gw, "staying").await;
    gw.sign_out(bearer(
        &leaving,
        pb::SignOutRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
        },
    ))
    .await
    .unwrap();
    let refused = gw
        .get_my_profile(bearer(&leaving, pb::GetMyProfileRequest {}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    suite.stop().await.expect("suite stops cleanly");

    // The same data directory, a fresh process runtime (the bus is empty).
    let again = settings(dir.path());
    let suite = Suite::start(again, ServiceContext::in_memory(Clock::system()))
        .await
        .expect("suite starts again");
    let mut gw = gateway(&suite).await;
    let refused = gw
        .get_my_profile(bearer(&leaving, pb::GetMyProfileRequest {}))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unauthenticated,
        "a signed-out token after a restart: {refused:?}"
    );
    gw.get_my_profile(bearer(&staying, pb::GetMyProfileRequest {}))
        .await
        .expect("a session not signed out keeps working after a restart");
    suite.stop().await.expect("suite stops cleanly");
}

async fn accounts(suite: &Suite) -> AccountsClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", suite.endpoints().gateway))
        .unwrap()
        .connect()
        .await
        .unwrap();
    AccountsClient::new(channel)
}

/// Starts the suite on `dir` with the internal key kept there (the registry
/// import is an internal caller), as `ccp up` does.
async fn start_keyed(dir: &std::path::Path) -> (SuiteSettings, Suite) {
    let mut settings = settings(dir);
    settings.resolve_internal_key(true).unwrap();
    let context = ServiceContext::from_settings(&settings.common)
        .await
        .unwrap();
    let suite = Suite::start(settings.clone(), context)
        .await
        .expect("suite starts");
    (settings, suite)
}

/// Registers ABC (123456782, from the demo registry) with the person of
/// `token` as its first BAM.
async fn register_abc(settings: &SuiteSettings, suite: &Suite, token: &str) {
    let registry =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/registry.json");
    ccp::registry_cmd::import_file(
        settings.clone(),
        &registry,
        Some(format!("http://{}", suite.endpoints().accounts)),
    )
    .await
    .expect("registry imports");
    let record = ccp::registry_cmd::read_records(&registry)
        .unwrap()
        .into_iter()
        .find(|r| r.bn9 == "123456782")
        .unwrap();
    accounts(suite)
        .await
        .register_business(bearer(
            token,
            acc::RegisterBusinessRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                program_account: "123456782RM0001".to_owned(),
                legal_name: record.legal_name.clone(),
                address: record.address.clone(),
                answers: record
                    .known_facts
                    .iter()
                    .map(|f| acc::KnownFactAnswer {
                        question_id: f.question.as_ref().unwrap().id.clone(),
                        answer: f.answer.clone(),
                    })
                    .collect(),
                accepted_terms_version: ccp_accounts::config::DEFAULT_TERMS_VERSION.to_owned(),
            },
        ))
        .await
        .expect("ABC registers");
}

/// Creates a machine credential of ABC with Editor on its RM0001; returns a
/// token issued to it and the credential's resource name.
async fn credential(suite: &Suite, bam: &str) -> (String, String) {
    let mut gw = gateway(suite).await;
    let created = gw
        .create_machine_credential(bearer(
            bam,
            pb::CreateMachineCredentialRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                parent: "businesses/123456782".to_owned(),
                display_name: "broker system".to_owned(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400 * 30,
                    nanos: 0,
                }),
            },
        ))
        .await
        .expect("credential created")
        .into_inner();
    let credential = created.credential.unwrap();
    accounts(suite)
        .await
        .set_member_roles(bearer(
            bam,
            acc::SetMemberRolesRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                name: format!("businesses/123456782/members/{}", credential.principal),
                grants: Some(ccp_proto::common::v1::RoleGrants {
                    business_manager: false,
                    program_roles: vec![ccp_proto::common::v1::ProgramRole {
                        program_account: "123456782RM0001".to_owned(),
                        role: ccp_proto::common::v1::Role::Editor as i32,
                    }],
                }),
                etag: String::new(),
            },
        ))
        .await
        .expect("credential made Editor of RM0001");
    let token = gw
        .issue_machine_token(tonic::Request::new(pb::IssueMachineTokenRequest {
            client_id: credential.client_id.clone(),
            client_secret: created.client_secret,
        }))
        .await
        .expect("token issued")
        .into_inner();
    (token.access_token, credential.name)
}

/// Reads ABC with `token`.
async fn read_abc(suite: &Suite, token: &str) -> Result<(), tonic::Status> {
    read_abc_after(suite, token, None).await
}

/// Reads ABC with `token`; with `revision`, the call carries it, so the
/// gateway catches up with that change first (read your writes, R-GW-4).
async fn read_abc_after(
    suite: &Suite,
    token: &str,
    revision: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut request = bearer(
        token,
        acc::GetBusinessRequest {
            name: "businesses/123456782".to_owned(),
        },
    );
    if let Some(revision) = revision {
        request.metadata_mut().insert(
            ccp_platform::auth::REVISION_HEADER,
            revision.parse().unwrap(),
        );
    }
    accounts(suite)
        .await
        .get_business(request)
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_4_a_machine_credential_revocation_survives_an_embedded_restart() {
    let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let (first, suite) = start_keyed(dir.path()).await;
    let mut gw = gateway(&suite).await;
    let bam = person(&first, &mut gw, "bam").await;
    register_abc(&first, &suite, &bam).await;
    let (revoked, name) = credential(&suite, &bam).await;
    let (kept, _) = credential(&suite, &bam).await;
    read_abc(&suite, &revoked)
        .await
        .expect("the credential reads its business before the revocation");
    let revocation = gw
        .revoke_machine_credential(bearer(
            &bam,
            pb::RevokeMachineCredentialRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                name,
                reason: "key leaked".to_owned(),
            },
        ))
        .await
        .expect("credential revoked")
        .into_inner()
        .revision;
    // Carrying the revocation's revision, the very next call is refused
    // (without it, the gateway may take until the event arrives).
    let refused = read_abc_after(&suite, &revoked, Some(&revocation))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    suite.stop().await.expect("suite stops cleanly");

    // The same data directory, a fresh process runtime (the bus is empty).
    let (_, suite) = start_keyed(dir.path()).await;
    let refused = read_abc(&suite, &revoked).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unauthenticated,
        "a revoked credential's token after a restart: {refused:?}"
    );
    read_abc(&suite, &kept)
        .await
        .expect("a credential not revoked keeps working after a restart");
    suite.stop().await.expect("suite stops cleanly");
}
