//! The README's first command, `ccp up`, run as a user would: the real binary
//! starts five services (the notifier by its operator API), each answering
//! grpc.health.v1 SERVING and listing the right services by reflection, and
//! Ctrl-C stops it cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn listed_services(channel: Channel) -> BTreeSet<String> {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection answer")
        .expect("one message");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

/// Returns the health of `service`, once SERVING or after 10 s (readiness:
/// the gateway is NOT_SERVING for the moment it loads the revocations in force).
async fn health(channel: Channel, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        let status = ServingStatus::try_from(status).expect("known status");
        if status == ServingStatus::Serving || std::time::Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn expected(name: &str) -> Vec<&'static str> {
    match name {
        "gateway" => vec![
            "ccp.gateway.v1.Authorization",
            "ccp.identity.v1.Identity",
            "ccp.accounts.v1.Accounts",
            "ccp.delegation.v1.Delegation",
        ],
        "identity" => vec!["ccp.identity.v1.Identity", "ccp.identity.v1.IdentityFacts"],
        "accounts" => vec!["ccp.accounts.v1.Accounts", "ccp.accounts.v1.AccountFacts"],
        "delegation" => vec![
            "ccp.delegation.v1.Delegation",
            "ccp.delegation.v1.RelationshipFacts",
        ],
        "notifications" => vec!["ccp.notifications.v1.NotificationsAdmin"],
        other => panic!("unexpected service {other}"),
    }
}

#[tokio::test]
async fn ccp_up_serves_five_healthy_services_with_reflection_and_stops_on_ctrl_c() {
    let data_dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ccp"))
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("CCP_GATEWAY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_IDENTITY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_ACCOUNTS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_DELEGATION__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_NOTIFICATIONS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_TELEMETRY__LOG_FILTER", "warn")
        // Its state file stays in the test's directory, not the user's.
        .env("CCP_STATE_DIR", data_dir.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start ccp up");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();

    let mut endpoints = Vec::new();
    let mut metrics = None;
    timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.starts_with("Press Ctrl-C") {
                return;
            }
            if let Some(url) = line.strip_prefix("Metrics (Prometheus, every service): ") {
                metrics = Some(url.to_owned());
            }
            let mut words = line.split_whitespace();
            if let (Some(name), Some(url)) = (words.next(), words.next())
                && url.starts_with("http://127.0.0.1:")
            {
                endpoints.push((name.to_owned(), url.to_owned()));
            }
        }
        panic!("ccp up ended before it was ready");
    })
    .await
    .expect("ccp up printed its endpoints within 60 s");

    let names: Vec<&str> = endpoints.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "gateway",
            "identity",
            "accounts",
            "delegation",
            "notifications"
        ]
    );

    for (name, url) in &endpoints {
        let channel = Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        assert_eq!(
            health(channel.clone(), "").await,
            ServingStatus::Serving,
            "{name} overall"
        );
        for service in expected(name) {
            assert_eq!(
                health(channel.clone(), service).await,
                ServingStatus::Serving,
                "{name}: {service}"
            );
        }
        let listed = listed_services(channel).await;
        for service in expected(name) {
            assert!(
                listed.contains(service),
                "{name} lists {service}: {listed:?}"
            );
        }
        assert!(
            listed.contains("grpc.health.v1.Health"),
            "{name}: {listed:?}"
        );
        let internal = listed.iter().filter(|s| s.ends_with("Facts")).count();
        let expected_internal = if matches!(name.as_str(), "gateway" | "notifications") {
            0
        } else {
            1
        };
        assert_eq!(
            internal, expected_internal,
            "{name} exposes internal facts services: {listed:?}"
        );
    }

    // One metrics endpoint for the services, counting the calls above
    // by service.
    let metrics = metrics.expect("ccp up printed its metrics endpoint");
    assert!(
        metrics.starts_with("http://127.0.0.1:") && metrics.ends_with("/metrics"),
        "{metrics}"
    );
    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    for service in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("rpc_server_duration_seconds_count{")
                    && l.contains(&format!("rpc_service=\"{service}\""))
                    && !l.ends_with(" 0")),
            "{service}: {text}"
        );
    }

    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .arg("-INT")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops within 20 s")
        .unwrap();
    assert!(exit.success(), "ccp up exited with {exit}");
    assert!(
        data_dir.path().join("accounts.sqlite").exists(),
        "SQLite files live in the data directory"
    );
}

#[tokio::test]
async fn up_refuses_tls_settings_naming_them() {
    let data_dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let output = Command::new(env!("CARGO_BIN_EXE_ccp"))
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("CCP_GATEWAY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_IDENTITY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_ACCOUNTS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_DELEGATION__SERVER__LISTEN", "127.0.0.1:0")
        .env(
            "CCP_GATEWAY__SERVER__TLS_CERT",
            data_dir.path().join("c.pem"),
        )
        .env(
            "CCP_GATEWAY__SERVER__TLS_KEY",
            data_dir.path().join("k.pem"),
        )
        .env("CCP_TELEMETRY__LOG_FILTER", "warn")
        .env("CCP_STATE_DIR", data_dir.path().join("state"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = timeout(Duration::from_secs(60), output)
        .await
        .expect("ccp up ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("gateway.server.tls_cert") && stderr.contains("TLS is for `ccp serve`"),
        "{stderr}"
    );
}
