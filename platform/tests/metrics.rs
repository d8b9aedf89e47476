//! The metrics endpoint of one process (`metrics::serve`): a real server and
//! a real balanced client on loopback, their calls counted by method and
//! code on both sides, scraped as Prometheus text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ccp_platform::balance::{BalancedChannel, DnsResolver, UpstreamSettings};
use ccp_platform::config::ServerSettings;
use ccp_platform::server::GrpcServer;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The value of the one sample of `name` whose labels hold every `labels` pair.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{')?;
        (metric == name && labels.iter().all(|p| rest.contains(p))).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn calls_are_counted_by_method_and_code_on_both_sides() {
    let endpoint = ccp_platform::metrics::serve("127.0.0.1:0")
        .await
        .unwrap()
        .expect("metrics on");
    assert!(ccp_platform::metrics::enabled());
    let settings = ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        drain_delay_ms: 0,
        ..Default::default()
    };
    let server = GrpcServer::bind(&settings).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let channel = BalancedChannel::new(
        &url,
        Duration::from_secs(5),
        &UpstreamSettings::default(),
        Arc::new(DnsResolver),
    )
    .unwrap();
    let mut health = HealthClient::new(channel);
    let ask = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    for _ in 0..3 {
        health.check(ask("")).await.unwrap();
    }
    let unknown = health.check(ask("no.such.Service")).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let response = reqwest::get(endpoint.url()).await.unwrap();
    assert!(response.status().is_success());
    let content_type = response.headers()[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let check = [
        "rpc_system=\"grpc\"",
        "rpc_service=\"grpc.health.v1.Health\"",
        "rpc_method=\"Check\"",
    ];
    for side in ["rpc_server_duration_seconds", "rpc_client_duration_seconds"] {
        let count = format!("{side}_count");
        let ok = [&check[..], &["rpc_grpc_status_code=\"0\""]].concat();
        let not_found = [&check[..], &["rpc_grpc_status_code=\"5\""]].concat();
        assert_eq!(sample(&text, &count, &ok), Some(3.0), "{side}: {text}");
        assert_eq!(
            sample(&text, &count, &not_found),
            Some(1.0),
            "{side}: {text}"
        );
        let bucket = format!("{side}_bucket");
        let all = [&ok[..], &["le=\"+Inf\""]].concat();
        assert_eq!(sample(&text, &bucket, &all), Some(3.0), "{side}: {text}");
    }
    assert!(
        text.contains("# TYPE rpc_server_duration_seconds histogram"),
        "{text}"
    );
    let _ = stop.send(());
    run.await.unwrap().unwrap();
}
