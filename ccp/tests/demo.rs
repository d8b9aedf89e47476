//! `ccp up --demo`, run as a user would: the real binary starts the suite,
//! loads the guide's cast through the gateway and prints it; the cast is then
//! checked through the gateway (ABC registered with two BAMs, a PAM on
//! RM0002, two pending employee requests with their notes, ITN's relationship
//! request, sent before ABC registered, among ABC's received requests), and a
//! second `ccp up --demo` on the same data directory works and finds the same
//! people.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ccp::demo::{ABC, ERIN_NOTE, FRANK_NOTE, ITN};
use ccp::settings::SuiteSettings;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::Role;
use ccp_proto::delegation::v1 as del;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tonic::transport::Channel;

/// A running `ccp up --demo`: the process, its gateway and what it printed.
struct Up {
    child: Child,
    gateway: String,
    printed: Vec<String>,
}

async fn up_demo(data_dir: &Path) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ccp"))
        .arg("up")
        .arg("--demo")
        .arg("--data-dir")
        .arg(data_dir)
        .env("CCP_GATEWAY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_IDENTITY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_ACCOUNTS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_DELEGATION__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_NOTIFICATIONS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_TELEMETRY__LOG_FILTER", "warn")
        // Its state file stays in the test's directory, not the user's.
        .env("CCP_STATE_DIR", data_dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start ccp up --demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    let mut gateway = None;
    timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.starts_with("Press Ctrl-C") {
                return;
            }
            let mut words = line.split_whitespace();
            if let (Some("gateway"), Some(url)) = (words.next(), words.next())
                && url.starts_with("http://127.0.0.1:")
            {
                gateway = Some(url.to_owned());
            }
            printed.push(line);
        }
        panic!("ccp up --demo ended before it was ready: {printed:#?}");
    })
    .await
    .expect("ccp up --demo was ready within 120 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Up {
        child,
        gateway: gateway.expect("the gateway's endpoint is printed"),
        printed,
    }
}

async fn stop(mut up: Up) {
    let pid = up.child.id().expect("running");
    let status = std::process::Command::new("kill")
        .arg("-INT")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = timeout(Duration::from_secs(20), up.child.wait())
        .await
        .expect("stops within 20 s")
        .unwrap();
    assert!(exit.success(), "ccp up --demo exited with {exit}");
}

fn req<T>(token: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r.set_timeout(Duration::from_secs(10));
    r
}

/// Signs `user` in through the gateway with a development-issuer token
/// minted from the data directory's key; returns (principal, access token).
async fn sign_in(channel: &Channel, data_dir: &Path, user: &str) -> (String, String) {
    let settings = SuiteSettings {
        data_dir: data_dir.to_owned(),
        ..SuiteSettings::default()
    };
    let id_token =
        ccp::identity_cmd::dev_token(&settings, None, user, Duration::from_secs(300)).unwrap();
    let session = IdentityClient::new(channel.clone())
        .sign_in(idn::SignInRequest { id_token })
        .await
        .unwrap()
        .into_inner();
    assert!(!session.profile_required, "{user} has a profile");
    (session.principal, session.access_token)
}

async fn assert_cast(gateway: &str, data_dir: &Path) {
    let channel = Channel::from_shared(gateway.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (_, alice) = sign_in(&channel, data_dir, "alice").await;
    let mut accounts = AccountsClient::new(channel.clone());

    let business = accounts
        .get_business(req(
            &alice,
            acc::GetBusinessRequest {
                name: format!("businesses/{ABC}"),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(business.legal_name, "ABC Windows & Doors Inc.");
    assert_eq!(business.business_manager_count, 2, "alice and bob are BAMs");
    assert!(!business.single_business_manager);
    let programs: Vec<&str> = business
        .program_accounts
        .iter()
        .map(|p| p.bn15.as_str())
        .collect();
    assert_eq!(programs, ["123456782RM0001", "123456782RM0002"]);

    let (paula_principal, _) = sign_in(&channel, data_dir, "paula").await;
    let pams = accounts
        .list_employees(req(
            &alice,
            acc::ListEmployeesRequest {
                parent: format!("businesses/{ABC}"),
                program_account: format!("{ABC}RM0002"),
                role: Role::Pam as i32,
                page_size: 50,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(pams.len(), 1, "{pams:?}");
    assert_eq!(pams[0].principal, paula_principal);
    assert!(!pams[0].business_manager);
    assert!(
        pams[0]
            .effective_roles
            .iter()
            .all(|r| r.program_account == format!("{ABC}RM0002"))
    );

    let pending = accounts
        .list_employee_requests(req(
            &alice,
            acc::ListEmployeeRequestsRequest {
                parent: format!("businesses/{ABC}"),
                state: acc::EmployeeRequestState::Pending as i32,
                page_size: 50,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .requests;
    let notes: Vec<(&str, &str)> = pending
        .iter()
        .map(|r| (r.requester_name.as_str(), r.note.as_str()))
        .collect();
    assert_eq!(
        notes,
        [("Erin Roy", ERIN_NOTE), ("Frank Gagnon", FRANK_NOTE)],
        "two pending employee requests with their notes"
    );

    let received = DelegationClient::new(channel.clone())
        .list_received_requests(req(
            &alice,
            del::ListReceivedRequestsRequest {
                parent: format!("businesses/{ABC}"),
                state: del::RelationshipRequestState::Pending as i32,
                page_size: 50,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert_eq!(received.len(), 1, "{received:?}");
    let itn = &received[0];
    assert_eq!(itn.provider, ITN);
    let sent = itn.create_time.unwrap().seconds;
    let registered = business.register_time.unwrap().seconds;
    assert!(
        sent <= registered,
        "ITN's request was sent before ABC registered"
    );

    // ITN's broker employee holds Editor on ITN's RM0001.
    let (_, ida) = sign_in(&channel, data_dir, "ida").await;
    let mine = accounts
        .list_my_businesses(req(
            &ida,
            acc::ListMyBusinessesRequest {
                page_size: 50,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .businesses;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].business, format!("businesses/{ITN}"));
    assert_eq!(mine[0].effective_roles.len(), 1);
    assert_eq!(mine[0].effective_roles[0].role, Role::Editor as i32);
}

#[tokio::test]
async fn ccp_up_demo_loads_the_guide_cast_and_a_second_run_on_the_same_data_dir_works() {
    let data_dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let first = up_demo(data_dir.path()).await;
    for user in ["alice", "bob", "paula", "erin", "frank", "ivan", "ida"] {
        assert!(
            first
                .printed
                .iter()
                .any(|l| l.contains(&format!("ccp login --dev {user} "))),
            "the cast shows how to sign in as {user}: {:#?}",
            first.printed
        );
    }
    assert_cast(&first.gateway, data_dir.path()).await;
    let principals = |printed: &[String]| -> Vec<String> {
        printed
            .iter()
            .filter_map(|l| l.split("# ").nth(1).map(str::to_owned))
            .collect()
    };
    let before = principals(&first.printed);
    assert_eq!(before.len(), 7, "{:#?}", first.printed);
    stop(first).await;

    let second = up_demo(data_dir.path()).await;
    assert_eq!(
        principals(&second.printed),
        before,
        "the same people after a second run"
    );
    assert_cast(&second.gateway, data_dir.path()).await;
    stop(second).await;
}
