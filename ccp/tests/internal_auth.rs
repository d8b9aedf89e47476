//! Internal-token verification on every service: each RPC of each internal
//! facts service (and the public services behind the gateway) accepts a valid
//! internal token and refuses a missing, expired or wrongly signed one with
//! UNAUTHENTICATED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ccp::embedded::Suite;
use ccp::settings::SuiteSettings;
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, InternalTokens};
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::accounts::v1 as accounts;
use ccp_proto::delegation::v1 as delegation;
use ccp_proto::identity::v1 as identity;
use futures::future::BoxFuture;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

type Call = fn(Channel, Request<()>) -> BoxFuture<'static, Result<(), Status>>;

fn with<T>(req: Request<()>, message: T) -> Request<T> {
    let (metadata, extensions, ()) = req.into_parts();
    Request::from_parts(metadata, extensions, message)
}

macro_rules! rpc {
    ($client:ty, $method:ident, $message:expr) => {
        (|channel: Channel, req: Request<()>| -> BoxFuture<'static, Result<(), Status>> {
            Box::pin(async move {
                <$client>::new(channel)
                    .$method(with(req, $message))
                    .await
                    .map(|_| ())
            })
        }) as Call
    };
}

fn facts_calls() -> Vec<(&'static str, &'static str, Call)> {
    use accounts::account_facts_client::AccountFactsClient;
    use delegation::relationship_facts_client::RelationshipFactsClient;
    use identity::identity_facts_client::IdentityFactsClient;
    vec![
        (
            "identity",
            "GetProfiles",
            rpc!(
                IdentityFactsClient<Channel>,
                get_profiles,
                identity::GetProfilesRequest::default()
            ),
        ),
        (
            "identity",
            "GetCredential",
            rpc!(
                IdentityFactsClient<Channel>,
                get_credential,
                identity::GetCredentialRequest::default()
            ),
        ),
        (
            "identity",
            "ListRevocations",
            rpc!(
                IdentityFactsClient<Channel>,
                list_revocations,
                identity::ListRevocationsRequest::default()
            ),
        ),
        (
            "accounts",
            "GetRoleFacts",
            rpc!(
                AccountFactsClient<Channel>,
                get_role_facts,
                accounts::GetRoleFactsRequest::default()
            ),
        ),
        (
            "accounts",
            "GetBusinessFacts",
            rpc!(
                AccountFactsClient<Channel>,
                get_business_facts,
                accounts::GetBusinessFactsRequest::default()
            ),
        ),
        (
            "accounts",
            "BatchGetBusinessFacts",
            rpc!(
                AccountFactsClient<Channel>,
                batch_get_business_facts,
                accounts::BatchGetBusinessFactsRequest::default()
            ),
        ),
        (
            "accounts",
            "ImportRegistry",
            rpc!(
                AccountFactsClient<Channel>,
                import_registry,
                accounts::ImportRegistryRequest::default()
            ),
        ),
        (
            "accounts",
            "GetEmployeeGroupFacts",
            rpc!(
                AccountFactsClient<Channel>,
                get_employee_group_facts,
                accounts::GetEmployeeGroupFactsRequest::default()
            ),
        ),
        (
            "delegation",
            "GetPairFacts",
            rpc!(
                RelationshipFactsClient<Channel>,
                get_pair_facts,
                delegation::GetPairFactsRequest::default()
            ),
        ),
        (
            "delegation",
            "GetAssignmentFacts",
            rpc!(
                RelationshipFactsClient<Channel>,
                get_assignment_facts,
                delegation::GetAssignmentFactsRequest::default()
            ),
        ),
        (
            "delegation",
            "ListAssignedClients",
            rpc!(
                RelationshipFactsClient<Channel>,
                list_assigned_clients,
                delegation::ListAssignedClientsRequest::default()
            ),
        ),
        (
            "delegation",
            "ListClients",
            rpc!(
                RelationshipFactsClient<Channel>,
                list_clients,
                delegation::ListClientsRequest::default()
            ),
        ),
        (
            "delegation",
            "GetRequestFacts",
            rpc!(
                RelationshipFactsClient<Channel>,
                get_request_facts,
                delegation::GetRequestFactsRequest::default()
            ),
        ),
    ]
}

fn public_calls() -> Vec<(&'static str, &'static str, Call)> {
    use accounts::accounts_client::AccountsClient;
    use delegation::delegation_client::DelegationClient;
    use identity::identity_client::IdentityClient;
    vec![
        (
            "identity",
            "GetSigningKeys",
            rpc!(
                IdentityClient<Channel>,
                get_signing_keys,
                identity::GetSigningKeysRequest::default()
            ),
        ),
        (
            "accounts",
            "GetTermsAndConditions",
            rpc!(
                AccountsClient<Channel>,
                get_terms_and_conditions,
                accounts::GetTermsAndConditionsRequest::default()
            ),
        ),
        (
            "delegation",
            "ListRelationships",
            rpc!(
                DelegationClient<Channel>,
                list_relationships,
                delegation::ListRelationshipsRequest {
                    parent: "businesses/123456782".to_owned(),
                    ..Default::default()
                }
            ),
        ),
    ]
}

fn suite_settings(dir: &ccp_platform::testing::tempfile_dir::TempDir) -> SuiteSettings {
    let mut settings = SuiteSettings {
        data_dir: dir.path().to_owned(),
        ..SuiteSettings::default()
    };
    settings.on_spare_loopback_ports();
    settings
}

async fn start_suite() -> (Suite, ccp_platform::testing::tempfile_dir::TempDir) {
    let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let suite = Suite::start(
        suite_settings(&dir),
        ServiceContext::in_memory(Clock::system()),
    )
    .await
    .expect("suite starts");
    (suite, dir)
}

/// Signs a test user in through identity's development issuer (a real
/// session) and returns its access token.
async fn signed_in_access_token(
    suite: &Suite,
    dir: &ccp_platform::testing::tempfile_dir::TempDir,
    internal: &str,
) -> String {
    let settings = suite_settings(dir);
    let id_token =
        ccp::identity_cmd::dev_token(&settings, None, "alice", Duration::from_secs(300)).unwrap();
    let channel = Channel::from_shared(format!("http://{}", suite.endpoints().identity))
        .unwrap()
        .connect()
        .await
        .unwrap();
    identity::identity_client::IdentityClient::new(channel)
        .sign_in(with(
            token_request(Some(internal)),
            identity::SignInRequest { id_token },
        ))
        .await
        .expect("the development issuer signs alice in")
        .into_inner()
        .access_token
}

fn token_request(token: Option<&str>) -> Request<()> {
    let mut req = Request::new(());
    if let Some(token) = token {
        req.metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, token.parse().unwrap());
    }
    req
}

#[tokio::test]
async fn every_internal_facts_rpc_checks_the_internal_token() {
    let (suite, dir) = start_suite().await;
    let endpoints = suite.endpoints();
    let internal = suite.context().internal.clone();
    let valid = internal.mint("service:test");
    let access = signed_in_access_token(&suite, &dir, &valid).await;
    let expired = internal.mint_until(
        "service:test",
        chrono::Utc::now() - chrono::Duration::seconds(1),
    );
    let other_key = InternalTokens::new(&[9u8; 32], Duration::from_secs(60), Clock::system());
    let wrongly_signed = other_key.mint("service:test");

    let mut calls = facts_calls();
    calls.extend(public_calls());
    for (service, method, call) in calls {
        let addr = match service {
            "identity" => endpoints.identity,
            "accounts" => endpoints.accounts,
            _ => endpoints.delegation,
        };
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();

        // A valid internal token (with the caller's real access token, which
        // public services also need) gets past authentication.
        let mut ok_request = token_request(Some(&valid));
        ok_request
            .metadata_mut()
            .insert("authorization", format!("Bearer {access}").parse().unwrap());
        let accepted = call(channel.clone(), ok_request).await;
        if let Err(status) = &accepted {
            assert_ne!(
                status.code(),
                Code::Unauthenticated,
                "{service}.{method}: valid token refused: {status:?}"
            );
        }
        for (case, token) in [
            ("missing", None),
            ("expired", Some(expired.as_str())),
            ("wrongly signed", Some(wrongly_signed.as_str())),
            ("garbage", Some("not-a-token")),
        ] {
            let refused = call(channel.clone(), token_request(token)).await;
            let code = refused.as_ref().err().map(Status::code);
            assert_eq!(
                code,
                Some(Code::Unauthenticated),
                "{service}.{method}: {case} token: {refused:?}"
            );
        }
    }
    suite.stop().await.expect("suite stops cleanly");
}

#[tokio::test]
async fn an_access_token_is_not_an_internal_token() {
    let (suite, _dir) = start_suite().await;
    let minter = ccp_platform::auth::TokenMinter::new(Clock::system()).unwrap();
    let access = minter.person(uuid::Uuid::new_v4()).unwrap();
    let channel = Channel::from_shared(format!("http://{}", suite.endpoints().accounts))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let call: Call = rpc!(
        accounts::account_facts_client::AccountFactsClient<Channel>,
        get_role_facts,
        accounts::GetRoleFactsRequest::default()
    );
    let refused = call(channel, token_request(Some(&access))).await;
    assert_eq!(refused.err().map(|s| s.code()), Some(Code::Unauthenticated));
    suite.stop().await.expect("suite stops cleanly");
}

#[test]
fn the_internal_auth_test_lists_every_internal_facts_rpc() {
    use prost::Message as _;
    let listed: std::collections::BTreeSet<(String, String)> = facts_calls()
        .iter()
        .map(|(service, method, _)| ((*service).to_owned(), (*method).to_owned()))
        .collect();
    let set = prost_types::FileDescriptorSet::decode(ccp_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut walked = std::collections::BTreeSet::new();
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if !ccp_proto::INTERNAL_SERVICES.contains(&full.as_str()) {
                continue;
            }
            // `ccp.accounts.v1` → `accounts`.
            let short = file.package().split('.').nth(1).unwrap().to_owned();
            for method in &service.method {
                walked.insert((short.clone(), method.name().to_owned()));
            }
        }
    }
    assert!(!walked.is_empty());
    let missing: Vec<_> = walked.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "internal RPCs not covered by every_internal_facts_rpc_checks_the_internal_token: {missing:?}"
    );
}
