//! TLS on a service's listener and its callers' balanced channels: health
//! answered over https with the configured CA, a wrong CA refused with a
//! cause that says so, client certificates required when a client CA is set,
//! and a renewed certificate served without a restart. Certificates are made
//! in the test (rcgen); loopback only, port 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ccp_platform::balance::{BalancedChannel, DnsResolver, UpstreamSettings};
use ccp_platform::config::ServerSettings;
use ccp_platform::error::cause_chain;
use ccp_platform::server::GrpcServer;
use ccp_platform::testing::pki::TestPki;
use tokio::sync::oneshot;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

struct Running {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    run: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.run)
            .await
            .expect("stops")
            .unwrap()
            .unwrap();
    }
}

async fn start(settings: ServerSettings) -> Running {
    let server = GrpcServer::bind(&settings).await.expect("bind");
    let url = format!("{}://{}", server.scheme(), server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    Running {
        url,
        stop: Some(stop),
        run,
    }
}

fn tls_server(pki: &TestPki, client_ca: bool) -> ServerSettings {
    let (cert, key) = pki.issue("server", &["localhost", "127.0.0.1"]);
    ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        tls_cert: cert.display().to_string(),
        tls_key: key.display().to_string(),
        tls_client_ca: if client_ca {
            pki.ca().display().to_string()
        } else {
            String::new()
        },
        ..ServerSettings::default()
    }
}

/// Asks health at `url` through a balanced channel built with `upstream`.
async fn health(url: &str, upstream: &UpstreamSettings) -> Result<i32, tonic::Status> {
    let channel =
        BalancedChannel::new(url, Duration::from_secs(5), upstream, Arc::new(DnsResolver))
            .expect("channel");
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(answer.into_inner().status)
}

fn trusting(pki: &TestPki) -> UpstreamSettings {
    UpstreamSettings {
        tls_ca: pki.ca().display().to_string(),
        ..UpstreamSettings::default()
    }
}

fn with_identity(mut upstream: UpstreamSettings, pki: &TestPki) -> UpstreamSettings {
    let (cert, key) = pki.issue("client", &["accounts"]);
    upstream.tls_cert = cert.display().to_string();
    upstream.tls_key = key.display().to_string();
    upstream
}

fn why(status: &tonic::Status) -> String {
    format!("{}: {}", status.message(), cause_chain(status))
}

#[tokio::test]
async fn health_is_answered_over_https_and_a_wrong_ca_is_refused_with_its_cause() {
    let pki = TestPki::new("ccp test CA");
    let server = start(tls_server(&pki, false)).await;
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    let status = health(&server.url, &trusting(&pki)).await.expect("health");
    assert_eq!(status, ServingStatus::Serving as i32);

    let other = TestPki::new("another CA");
    let refused = health(&server.url, &trusting(&other))
        .await
        .expect_err("a server signed by another CA is refused");
    let cause = why(&refused);
    assert!(
        cause.contains("invalid peer certificate") && cause.contains("UnknownIssuer"),
        "{cause}"
    );

    // Plain HTTP/2 gets no answer from a TLS listener.
    let plain = server.url.replace("https://", "http://");
    assert!(health(&plain, &UpstreamSettings::default()).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_client_ca_requires_a_client_certificate_it_signed() {
    let pki = TestPki::new("ccp test CA");
    let server = start(tls_server(&pki, true)).await;

    let anonymous = health(&server.url, &trusting(&pki)).await;
    assert!(anonymous.is_err(), "{anonymous:?}");

    let stranger = TestPki::new("another CA");
    let foreign = health(&server.url, &with_identity(trusting(&pki), &stranger)).await;
    assert!(foreign.is_err(), "{foreign:?}");

    let status = health(&server.url, &with_identity(trusting(&pki), &pki))
        .await
        .expect("a client certificate the CA signed is admitted");
    assert_eq!(status, ServingStatus::Serving as i32);
    server.stop().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let old = TestPki::new("old CA");
    let settings = tls_server(&old, false);
    let server = start(settings.clone()).await;
    let renewed = TestPki::new("renewed CA");
    assert!(health(&server.url, &trusting(&renewed)).await.is_err());

    // The files are replaced by a certificate of the renewed CA: the next
    // handshake serves it.
    renewed.issue_at(
        &["localhost", "127.0.0.1"],
        settings.tls_cert.as_ref(),
        settings.tls_key.as_ref(),
    );
    let status = health(&server.url, &trusting(&renewed))
        .await
        .expect("the renewed certificate is served");
    assert_eq!(status, ServingStatus::Serving as i32);
    assert!(health(&server.url, &trusting(&old)).await.is_err());

    // A broken file keeps the certificate served.
    std::fs::write(&settings.tls_cert, "not a certificate").unwrap();
    let status = health(&server.url, &trusting(&renewed))
        .await
        .expect("a broken file keeps the previous certificate");
    assert_eq!(status, ServingStatus::Serving as i32);
    server.stop().await;
}

#[tokio::test]
async fn tls_settings_are_checked_at_start() {
    let pki = TestPki::new("ccp test CA");
    let mut settings = tls_server(&pki, false);
    settings.tls_key = String::new();
    let err = settings.validate_at("identity.server").unwrap_err();
    assert_eq!(err.key, "identity.server.tls_key", "{err}");

    let mut missing = tls_server(&pki, false);
    missing.tls_cert = pki.dir().join("absent.crt").display().to_string();
    let err = GrpcServer::bind(&missing).await.unwrap_err();
    assert!(format!("{err:#}").contains("absent.crt"), "{err:#}");

    let upstream = UpstreamSettings {
        tls_cert: "client.crt".to_owned(),
        ..UpstreamSettings::default()
    };
    let err = upstream.validate_at("upstream").unwrap_err();
    assert_eq!(err.key, "upstream.tls_key", "{err}");

    let no_ca = UpstreamSettings {
        tls_ca: pki.dir().join("absent.pem").display().to_string(),
        ..UpstreamSettings::default()
    };
    let err = BalancedChannel::new(
        "https://127.0.0.1:1",
        Duration::from_secs(1),
        &no_ca,
        Arc::new(DnsResolver),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("absent.pem"), "{err:#}");
}
