//! The log lines of `ccp up` when its stderr is a file (not a terminal): no
//! ANSI colour codes, every line names the service that wrote it,
//! and applying migrations is not logged at the default level.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

#[tokio::test]
async fn ccp_up_logs_plain_lines_naming_their_service() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("stderr.log");
    let mut up = Command::new(env!("CARGO_BIN_EXE_ccp"))
        .arg("up")
        .arg("--data-dir")
        .arg(root.path().join("data"))
        .env("CCP_STATE_DIR", root.path().join("state"))
        .env("CCP_GATEWAY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_IDENTITY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_ACCOUNTS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_DELEGATION__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_NOTIFICATIONS__SERVER__LISTEN", "127.0.0.1:0")
        .env_remove("CCP_TELEMETRY__LOG_FILTER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let gateway = timeout(Duration::from_secs(60), async {
        let mut gateway = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            let words: Vec<_> = line.split_whitespace().collect();
            if let ["gateway", url, ..] = words.as_slice() {
                gateway = Some((*url).to_owned());
            }
            if line.starts_with("Press Ctrl-C") {
                return gateway.expect("ccp up printed the gateway's endpoint");
            }
        }
        panic!("ccp up ended before it was ready");
    })
    .await
    .expect("ccp up was ready within 60 s");
    // A refused call writes one line (the outcome, at INFO) from inside the
    // call's span: it too must name its service.
    let channel = tonic::transport::Endpoint::from_shared(gateway)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let refused = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("an unknown service is NOT_FOUND");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let pid = up.id().expect("running");
    std::process::Command::new("kill")
        .arg("-INT")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let exit = timeout(Duration::from_secs(30), up.wait())
        .await
        .expect("stopped within 30 s")
        .unwrap();
    assert!(exit.success());

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.is_empty(), "ccp up logs its start");
    assert!(!text.contains('\u{1b}'), "no ANSI codes in a file:\n{text}");
    assert!(
        !text.to_lowercase().contains("applying migration"),
        "migrations are logged at debug only:\n{text}"
    );
    // Every line names the service that wrote it: start-up, background
    // work (revocations, relays) and readiness alike.
    let unnamed: Vec<&str> = text
        .lines()
        .filter(|line| !line.contains("service{service="))
        .collect();
    assert!(
        unnamed.is_empty(),
        "lines that name no service: {unnamed:#?}"
    );
    assert!(
        text.contains("service{service=\"gateway\"}:grpc.request{"),
        "the refused call's line names the gateway:\n{text}"
    );
    for service in ["identity", "accounts", "delegation", "gateway"] {
        assert!(
            text.contains(&format!("service{{service=\"{service}\"}}"))
                || text.contains(&format!("service{{service={service}}}")),
            "a line names {service}:\n{text}"
        );
    }
}
