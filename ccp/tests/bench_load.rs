//! The benchmark load generator against the echo baseline: both loops finish
//! within their bounds, count successes and failures, and report sane
//! latencies. No timing is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ccp::bench::echo::EchoServer;
use ccp::bench::load::{ClosedLoop, OpenLoop, closed_loop, open_loop};
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use ccp_proto::gateway::v1::{CheckItem, CheckRequest};
use tonic::transport::Channel;

fn request() -> CheckRequest {
    CheckRequest {
        principal: String::new(),
        item: Some(CheckItem {
            action: 1,
            resource: "123456782RM0001".to_owned(),
            submitted_by: String::new(),
        }),
        revision: String::new(),
    }
}

#[tokio::test]
async fn closed_loop_counts_successes_and_stops_at_its_bounds() {
    let echo = EchoServer::start().await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", echo.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let spec = ClosedLoop {
        concurrency: 4,
        warmup: Duration::from_millis(50),
        duration: Duration::from_millis(300),
        max_requests: 1_000_000,
    };
    let report = closed_loop(spec, move |_, _| {
        let mut client = AuthorizationClient::new(channel.clone());
        async move { client.check(request()).await.map(|_| ()) }
    })
    .await;
    assert!(report.requests > 0, "{report:?}");
    assert_eq!(report.errors, 0);
    assert!(
        report.p50_ms > 0.0 && report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms
    );

    let capped = closed_loop(
        ClosedLoop {
            max_requests: 10,
            ..spec
        },
        |_, _| async { Ok::<(), ()>(()) },
    )
    .await;
    assert!(capped.requests <= 10, "the count bound holds: {capped:?}");
    echo.stop().await.unwrap();
}

#[tokio::test]
async fn open_loop_measures_from_the_intended_send_time_and_counts_failures() {
    let echo = EchoServer::start().await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", echo.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let spec = OpenLoop {
        rate: 400,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        max_in_flight: 1000,
    };
    let report = open_loop(spec, move |_| {
        let mut client = AuthorizationClient::new(channel.clone());
        async move { client.check(request()).await.map(|_| ()) }
    })
    .await;
    assert!(
        (150..=210).contains(&(report.requests + report.errors)),
        "about rate × duration requests: {report:?}"
    );
    assert_eq!(report.errors, 0);

    // A target that stalls: latency from the intended time grows with the stall.
    let stalled = open_loop(OpenLoop { rate: 100, ..spec }, |seq| async move {
        if seq % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        } else {
            Err(())
        }
    })
    .await;
    assert!(stalled.errors > 0, "failures are counted: {stalled:?}");
    assert!(
        stalled.p50_ms >= 50.0,
        "a 50 ms stall shows in the latency: {stalled:?}"
    );
    echo.stop().await.unwrap();
}
