//! `ccp dev-token` and `ccp keys rotate` against an embedded suite: the
//! command and the service agree on the development issuer's key and on the
//! signing keys in the identity database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ccp::embedded::Suite;
use ccp::settings::SuiteSettings;
use ccp_platform::auth::INTERNAL_TOKEN_HEADER;
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

fn req<T>(suite: &Suite, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert(
        INTERNAL_TOKEN_HEADER,
        suite
            .context()
            .internal
            .mint("service:test")
            .parse()
            .unwrap(),
    );
    r
}

#[tokio::test]
async fn r_id_1_ccp_dev_token_signs_in_to_the_embedded_suite_and_keys_rotate() {
    let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let settings = settings(dir.path());
    let suite = Suite::start(settings.clone(), ServiceContext::in_memory(Clock::system()))
        .await
        .expect("suite starts");
    assert!(dir.path().join("dev-issuer.key").exists());
    assert!(dir.path().join("identity-kek.key").exists());
    let channel = Channel::from_shared(format!("http://{}", suite.endpoints().identity))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut identity = IdentityClient::new(channel);

    let token =
        ccp::identity_cmd::dev_token(&settings, None, "alice", Duration::from_secs(60)).unwrap();
    let session = identity
        .sign_in(req(&suite, pb::SignInRequest { id_token: token }))
        .await
        .unwrap()
        .into_inner();
    assert!(session.profile_required);
    let before = jsonwebtoken::decode_header(&session.access_token)
        .unwrap()
        .kid
        .unwrap();

    let rotation = ccp::identity_cmd::rotate_keys(&settings).await.unwrap();
    assert_eq!(rotation.retired.map(|r| r.0), Some(before.clone()));
    let keys = identity
        .get_signing_keys(req(&suite, pb::GetSigningKeysRequest {}))
        .await
        .unwrap()
        .into_inner();
    let kids: Vec<_> = keys.keys.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(kids, [before, rotation.new_kid.clone()]);

    let token =
        ccp::identity_cmd::dev_token(&settings, None, "alice", Duration::from_secs(60)).unwrap();
    let again = identity
        .sign_in(req(&suite, pb::SignInRequest { id_token: token }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.principal, session.principal);
    let kid = jsonwebtoken::decode_header(&again.access_token)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(kid, rotation.new_kid);
    suite.stop().await.expect("suite stops cleanly");
}

#[tokio::test]
async fn r_id_1_dev_token_is_refused_when_the_development_issuer_is_off() {
    let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let mut settings = settings(dir.path());
    settings.identity.dev_issuer.enabled = Some(false);
    assert!(
        ccp::identity_cmd::dev_token(&settings, None, "alice", Duration::from_secs(60)).is_err()
    );
    // And the embedded suite then trusts no development token.
    let suite = Suite::start(settings.clone(), ServiceContext::in_memory(Clock::system()))
        .await
        .expect("suite starts");
    let mut on = settings.clone();
    on.identity.dev_issuer.enabled = None;
    // `ccp dev-token` never makes a key: one a suite does not trust is put by hand.
    std::fs::write(
        dir.path().join("dev-issuer.key"),
        ccp_platform::auth::InternalTokens::generate_key(),
    )
    .unwrap();
    let token = ccp::identity_cmd::dev_token(&on, None, "alice", Duration::from_secs(60)).unwrap();
    let channel = Channel::from_shared(format!("http://{}", suite.endpoints().identity))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let refused = IdentityClient::new(channel)
        .sign_in(req(&suite, pb::SignInRequest { id_token: token }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    suite.stop().await.expect("suite stops cleanly");
}
