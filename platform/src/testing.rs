//! Test support: the shared Redis for integration tests, per-test key prefixes, and a private
//! `redis-server` that a test may stop and restart.
//!
//! Compiled for this crate's tests and, with the `test-support` feature, for other crates' tests.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The environment variable naming the Redis server shared by integration tests.
pub const REDIS_URL_ENV: &str = "CCP_TEST_REDIS_URL";

/// Returns the URL of the Redis server for integration tests, read from `CCP_TEST_REDIS_URL`.
///
/// Returns None when it is unset so that a developer without Redis can still run the other tests
/// (the caller prints a `skipped:` line); panics instead when `CI` is set, since CI must never
/// skip the Redis tests silently.
pub fn redis_url() -> Option<String> {
    if let Some(url) = std::env::var(REDIS_URL_ENV)
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Some(url);
    }
    let in_ci = std::env::var("CI").is_ok_and(|ci| !ci.is_empty());
    assert!(
        !in_ci,
        "{REDIS_URL_ENV} is not set but CI is: the Redis tests must run in CI \
         (set {REDIS_URL_ENV}=redis://host:port)"
    );
    None
}

/// Returns a fresh key prefix (`ccp-test:<uuid>:`), so that tests sharing a server never meet.
pub fn unique_prefix() -> String {
    format!("ccp-test:{}:", uuid::Uuid::new_v4())
}

/// A `redis-server` of a test's own on a spare port, killed when dropped.
#[derive(Debug)]
pub struct RedisServerGuard {
    port: u16,
    child: Option<Child>,
}

/// Starts a private `redis-server` (no persistence) on a spare 127.0.0.1 port and returns once it
/// answers PING. Panics when it cannot be started within 5 seconds.
pub async fn redis_server_on_spare_port() -> RedisServerGuard {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a spare port");
        listener.local_addr().expect("local address").port()
    };
    let mut guard = RedisServerGuard { port, child: None };
    guard.start().await;
    guard
}

impl RedisServerGuard {
    /// Returns the server's URL (`redis://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Returns the server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and waits for it to exit; its data is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port (empty) and returns once it answers PING.
    /// Panics when it cannot be started within 5 seconds.
    pub async fn start(&mut self) {
        self.stop().await;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server (is it on PATH?)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if self.ping().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 5 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        let Ok(mut conn) = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok_and(|pong| pong == "PONG")
    }
}

impl Drop for RedisServerGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // kill_on_drop also covers this; start_kill makes it immediate and explicit.
            let _ = child.start_kill();
        }
    }
}
