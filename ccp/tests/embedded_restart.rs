//! R-GW-4 in the embedded mode (`ccp up`): a sign-out stays in force when the
//! suite is stopped and started again on the same data directory, although
//! the in-memory bus that carried its event is gone; a session not signed out
//! keeps working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ccp::embedded::Suite;
use ccp::settings::SuiteSettings;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
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
