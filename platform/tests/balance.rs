//! Upstream channels balance over every replica, and a replica that dies is
//! dropped: after the calls that were on it, calls go to the others; it is
//! taken back when it answers again. Real gRPC servers on loopback, each in a
//! runtime of its own so that killing one closes its listener and its
//! connections as a killed process would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ccp_platform::balance::{BalancedChannel, Resolver, UpstreamSettings};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A health server in a runtime of its own, counting the calls it serves.
struct Server {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start() -> Self {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn start_on(listener: std::net::TcpListener) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (health, service) = tonic_health::server::health_reporter();
            health
                .set_service_status("", tonic_health::ServingStatus::Serving)
                .await;
            tonic::transport::Server::builder()
                .layer(tower::ServiceBuilder::new().map_request(
                    move |r: http::Request<tonic::body::Body>| {
                        counted.fetch_add(1, Ordering::Relaxed);
                        r
                    },
                ))
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        });
        Self {
            addr,
            calls,
            runtime: Some(runtime),
        }
    }

    /// Kills the server: its runtime's tasks (listener and connections) are dropped.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Resolves every name to the addresses the test set.
#[derive(Debug)]
struct Fixed(std::sync::Mutex<Vec<SocketAddr>>);

#[async_trait::async_trait]
impl Resolver for Fixed {
    async fn resolve(&self, _host: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(self.0.lock().unwrap().clone())
    }
}

async fn check(channel: &BalancedChannel) -> Result<(), tonic::Status> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

fn settings() -> UpstreamSettings {
    UpstreamSettings {
        connections: 2,
        resolve_interval_ms: 200,
        probe_interval_ms: 50,
        ..UpstreamSettings::default()
    }
}

#[tokio::test]
async fn calls_are_spread_over_a_list_and_a_killed_replica_is_dropped_then_taken_back() {
    let mut servers: Vec<Server> = (0..3).map(|_| Server::start()).collect();
    let spec = servers
        .iter()
        .map(|s| format!("http://{}", s.addr))
        .collect::<Vec<_>>()
        .join(",");
    let channel = BalancedChannel::new(
        &spec,
        Duration::from_secs(5),
        &settings(),
        Arc::new(ccp_platform::balance::DnsResolver),
    )
    .unwrap();
    for _ in 0..300 {
        check(&channel).await.unwrap();
    }
    for s in &servers {
        let n = s.calls.load(Ordering::Relaxed);
        assert!(
            n >= 60,
            "each replica serves at least 20% of 300 calls: {n}"
        );
    }

    // Kill one: at most the first call that meets its dead connection fails
    // (UNAVAILABLE or UNKNOWN, a transport failure); every later call succeeds.
    let dead = servers[1].addr;
    servers[1].kill();
    let mut failures = Vec::new();
    for _ in 0..300 {
        if let Err(status) = check(&channel).await {
            failures.push(status);
        }
    }
    assert!(failures.len() <= 1, "{failures:?}");
    for status in &failures {
        assert!(
            ccp_platform::error::is_transport_failure(status),
            "{status:?}"
        );
    }
    assert!(
        channel.replicas().contains(&(dead, false)),
        "{:?}",
        channel.replicas()
    );

    // Started again on the same port, it is probed and taken back.
    let listener = std::net::TcpListener::bind(dead).unwrap();
    servers[1] = Server::start_on(listener);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !channel.replicas().contains(&(dead, true)) {
        assert!(Instant::now() < deadline, "the replica is taken back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..30 {
        check(&channel).await.unwrap();
    }
    assert!(servers[1].calls.load(Ordering::Relaxed) >= 6);
}

#[tokio::test]
async fn one_name_balances_over_every_address_it_resolves_to_and_follows_changes() {
    let servers: Vec<Server> = (0..3).map(|_| Server::start()).collect();
    let resolver = Arc::new(Fixed(std::sync::Mutex::new(vec![servers[0].addr])));
    // The port is each address's own: the resolver stands in for DNS A records.
    let channel = BalancedChannel::new(
        "http://upstream.test:1",
        Duration::from_secs(5),
        &settings(),
        resolver.clone(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while channel.replicas().len() != 1 {
        assert!(Instant::now() < deadline, "the name is resolved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    *resolver.0.lock().unwrap() = servers.iter().map(|s| s.addr).collect();
    while channel.replicas().len() != 3 {
        assert!(Instant::now() < deadline, "the name is resolved again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..300 {
        check(&channel).await.unwrap();
    }
    for s in &servers {
        let n = s.calls.load(Ordering::Relaxed);
        assert!(
            n >= 60,
            "each replica serves at least 20% of the calls: {n}"
        );
    }
}

#[test]
fn upstream_settings_are_read_from_the_configuration() {
    let common: ccp_platform::context::CommonSettings =
        serde_json::from_str(r#"{"upstream": {"connections": 4}}"#).unwrap();
    assert_eq!(common.upstream.connections, 4);
    assert_eq!(common.upstream.probe_interval_ms, 250);
}
