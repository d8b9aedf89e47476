//! A call one service makes to another fails in ways a client can act on
//! (R-GW-5): a connection refused, or closed under the call (a killed or
//! restarting upstream), is a transport failure and answers UNAVAILABLE; a
//! status the upstream answered itself keeps its meaning: UNAVAILABLE stays
//! UNAVAILABLE, anything else is a bug on one side and answers INTERNAL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ccp_platform::context::lazy_channel;
use ccp_platform::error::{Error, ErrorCode, is_transport_failure};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn check(endpoint: &str) -> tonic::Status {
    let channel = lazy_channel(endpoint, Duration::from_secs(5)).expect("endpoint");
    tokio::time::timeout(
        Duration::from_secs(10),
        HealthClient::new(channel).check(HealthCheckRequest {
            service: "ccp.test".to_owned(),
        }),
    )
    .await
    .expect("the call ends in time")
    .expect_err("the call fails")
}

#[tokio::test]
async fn r_gw_5_a_connection_closed_under_a_call_is_unavailable_not_unknown() {
    // A peer that accepts, takes the request's first bytes, and dies.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let killed = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await;
        drop(socket);
    });
    let status = check(&format!("http://{addr}")).await;
    killed.await.expect("the peer ran");
    // tonic's own answer is UNKNOWN ("transport error") or UNAVAILABLE.
    assert!(
        matches!(status.code(), Code::Unknown | Code::Unavailable),
        "{status:?}"
    );
    assert!(is_transport_failure(&status), "{status:?}");
    let err = Error::upstream("identity", status);
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert_eq!(err.message(), "identity is unavailable; retry");
}

#[tokio::test]
async fn r_gw_5_a_refused_connection_is_unavailable() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let status = check(&format!("http://127.0.0.1:{port}")).await;
    assert!(is_transport_failure(&status), "{status:?}");
    assert_eq!(
        Error::upstream("accounts", status).code(),
        ErrorCode::Unavailable
    );
}

#[tokio::test]
async fn r_gw_5_what_the_upstream_answers_itself_is_not_a_transport_failure() {
    // A real gRPC server: health answers NOT_FOUND for a service it does not know.
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("ccp.down", tonic_health::ServingStatus::NotServing)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let status = check(&format!("http://{addr}")).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(!is_transport_failure(&status), "{status:?}");
    assert_eq!(
        Error::upstream("accounts", status).code(),
        ErrorCode::Internal,
        "a request the upstream refuses is a bug of ours"
    );
    // A deliberate UNAVAILABLE stays UNAVAILABLE.
    assert_eq!(
        Error::upstream("accounts", tonic::Status::unavailable("draining")).code(),
        ErrorCode::Unavailable
    );
    assert!(!is_transport_failure(&tonic::Status::unavailable(
        "draining"
    )));
    let _ = stop.send(());
    server.await.expect("server task").expect("server");
}
