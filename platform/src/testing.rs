//! Test support: the shared Redis for integration tests, per-test key prefixes, a private
//! `redis-server` that a test may stop and restart, a private 3-master Redis Cluster, and test
//! certificates ([`pki`]).
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
    let mut guard = RedisServerGuard {
        port: spare_port(),
        child: None,
    };
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
        ping(&self.url()).await
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

/// Returns a port on 127.0.0.1 that was free a moment ago; see [`spare_ports`].
pub fn spare_port() -> u16 {
    spare_ports(1)[0]
}

/// Returns `n` distinct ports on 127.0.0.1 that were free a moment ago (all bound at once, then
/// released), for a process a test starts later on a fixed port.
///
/// They come from below the kernel's ephemeral range (`ip_local_port_range`): a port the kernel
/// hands out (`bind(…:0)`) may be taken by any outgoing connection (to PostgreSQL, to another
/// service) before the process binds it, and stays taken while that connection is pooled; a port
/// below the range is only ever taken by an explicit bind. No port is handed out twice in one
/// process.
pub fn spare_ports(n: usize) -> Vec<u16> {
    use rand::Rng as _;
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let low = 10_000.min(ephemeral_low / 2);
    let mut rng = rand::rng();
    let mut listeners = Vec::with_capacity(n);
    // Bounded: a crowded range falls back to kernel-chosen ports.
    for _ in 0..n * 200 {
        if listeners.len() == n {
            break;
        }
        let port = rng.random_range(low..ephemeral_low);
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(listener);
        }
    }
    while listeners.len() < n {
        listeners.push(TcpListener::bind("127.0.0.1:0").expect("bind a spare port"));
    }
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect();
    handed_out.extend(&ports);
    ports
}

/// A Redis Cluster of a test's own: three masters (no replicas) on spare 127.0.0.1 ports, all
/// killed when dropped.
#[derive(Debug)]
pub struct RedisClusterGuard {
    ports: Vec<u16>,
    children: Vec<Child>,
    /// The nodes' cluster configuration files; removed on drop.
    dir: tempfile_dir::TempDir,
}

/// How many masters [`redis_cluster_on_spare_ports`] starts.
const CLUSTER_MASTERS: usize = 3;

/// Starts a 3-master Redis Cluster (`redis-server --cluster-enabled yes`, joined with
/// `redis-cli --cluster create`) on spare 127.0.0.1 ports and returns once every node reports
/// `cluster_state:ok` and knows the others. Panics, failing the test loudly, when `redis-server`
/// or `redis-cli` is missing or the cluster is not up within 30 seconds.
pub async fn redis_cluster_on_spare_ports() -> RedisClusterGuard {
    let dir = tempfile_dir::TempDir::new();
    // A client port and a cluster-bus port per node: the bus port is given explicitly, since the
    // default (port + 10000) may not exist for a high spare port.
    let ports = spare_ports(2 * CLUSTER_MASTERS);
    let (ports, bus_ports) = ports.split_at(CLUSTER_MASTERS);
    let mut guard = RedisClusterGuard {
        ports: ports.to_vec(),
        children: Vec::new(),
        dir,
    };
    for (port, bus_port) in ports.iter().zip(bus_ports) {
        let conf = guard.dir.path().join(format!("nodes-{port}.conf"));
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--cluster-port", &bus_port.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
            .arg("--cluster-config-file")
            .arg(&conf)
            .arg("--dir")
            .arg(guard.dir.path())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server for the Redis Cluster test (is it on PATH?)");
        guard.children.push(child);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for port in ports {
        while !ping(&format!("redis://127.0.0.1:{port}")).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "cluster node on port {port} did not answer PING"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let create = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(ports.iter().map(|port| format!("127.0.0.1:{port}")))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let created = tokio::time::timeout_at(deadline, create)
        .await
        .expect("redis-cli --cluster create ends within 30 s")
        .expect("run redis-cli --cluster create (is redis-cli on PATH?)");
    assert!(
        created.status.success(),
        "redis-cli --cluster create failed: {}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    for port in ports {
        loop {
            let info = cluster_info(*port).await.unwrap_or_default();
            if info.contains("cluster_state:ok")
                && info.contains(&format!("cluster_known_nodes:{CLUSTER_MASTERS}"))
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "cluster node on port {port} not ready within 30 s: {info}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    guard
}

impl RedisClusterGuard {
    /// Returns the nodes' URLs, comma-separated: the `redis.url` of a configuration with
    /// `redis.cluster = true`.
    pub fn seeds(&self) -> String {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Returns the cluster as the cache and the bus take it.
    pub fn target(&self) -> crate::redis_link::RedisTarget {
        crate::redis_link::RedisTarget::parse(&self.seeds(), true).expect("loopback seed URLs")
    }

    /// Returns the nodes' client ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }
}

impl Drop for RedisClusterGuard {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
        }
    }
}

/// Returns `CLUSTER INFO` of the node on `port`, or None when it does not answer.
async fn cluster_info(port: u16) -> Option<String> {
    let mut conn = connect_briefly(&format!("redis://127.0.0.1:{port}")).await?;
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async::<String>(&mut conn)
        .await
        .ok()
}

async fn connect_briefly(url: &str) -> Option<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).ok()?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()
}

/// Returns whether the server at `url` answers PING now.
async fn ping(url: &str) -> bool {
    let Some(mut conn) = connect_briefly(url).await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok_and(|pong| pong == "PONG")
}

/// The environment variable naming the PostgreSQL server for integration tests, as a URL to a
/// database the tests may connect to in order to create their own (e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`).
pub const DATABASE_URL_ENV: &str = "CCP_TEST_DATABASE_URL";

/// Returns the PostgreSQL URL for integration tests, read from `CCP_TEST_DATABASE_URL`; None when
/// unset outside CI, a panic when unset in CI (the PostgreSQL tests must never skip there).
pub fn postgres_url() -> Option<String> {
    if let Some(url) = std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Some(url);
    }
    let in_ci = std::env::var("CI").is_ok_and(|ci| !ci.is_empty());
    assert!(
        !in_ci,
        "{DATABASE_URL_ENV} is not set but CI is: the PostgreSQL tests must run in CI \
         (set {DATABASE_URL_ENV}=postgres://user@host:port/postgres)"
    );
    None
}

/// A PostgreSQL database of a test's own (`ccp_test_<uuid>`), dropped when the guard is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

fn replace_database(url: &str, name: &str) -> String {
    // postgres://user@host:port/db?params → swap the path segment.
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host_part = path_start.map_or(base, |i| &base[..i]);
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

impl TestDatabase {
    /// Creates a fresh database on the configured server; None when no server is configured.
    /// Panics (failing the test loudly) when one is configured but unreachable.
    pub async fn create() -> Option<Self> {
        use sea_orm::ConnectionTrait as _;
        let admin_url = postgres_url()?;
        let name = format!("ccp_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{DATABASE_URL_ENV}={admin_url} is unreachable: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        let url = replace_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    /// Returns the URL of the test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns database settings for the test's database with a service schema.
    pub fn settings(&self, schema: &str) -> crate::config::DatabaseSettings {
        crate::config::DatabaseSettings {
            schema: Some(schema.to_owned()),
            ..crate::config::DatabaseSettings::postgres(&self.url)
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Dropping needs async I/O; do it on a private runtime off the test's runtime.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sea_orm::ConnectionTrait as _;
                if let Ok(admin) = sea_orm::Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// A database for one test: a SQLite file in a temporary directory, or a fresh PostgreSQL database.
#[derive(Debug)]
pub enum TestBackend {
    /// SQLite in a temporary directory (removed on drop).
    Sqlite(tempfile_dir::TempDir),
    /// A fresh PostgreSQL database (dropped on drop).
    Postgres(TestDatabase),
}

impl TestBackend {
    /// Returns a SQLite backend in a new temporary directory.
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile_dir::TempDir::new())
    }

    /// Returns a PostgreSQL backend when one is configured.
    pub async fn postgres() -> Option<Self> {
        TestDatabase::create().await.map(Self::Postgres)
    }

    /// Returns every backend available: SQLite always, PostgreSQL when configured.
    pub async fn all() -> Vec<Self> {
        let mut all = vec![Self::sqlite()];
        match Self::postgres().await {
            Some(pg) => all.push(pg),
            None => eprintln!(
                "skipped: {DATABASE_URL_ENV} not set, PostgreSQL half of the test not run"
            ),
        }
        all
    }

    /// Returns a short name for messages: `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Returns database settings for a service named `schema` (its own SQLite file, or its schema).
    pub fn settings(&self, schema: &str) -> crate::config::DatabaseSettings {
        match self {
            Self::Sqlite(dir) => crate::config::DatabaseSettings {
                schema: Some(schema.to_owned()),
                ..crate::config::DatabaseSettings::sqlite_file(
                    &dir.path().join(format!("{schema}.sqlite")),
                )
            },
            Self::Postgres(db) => db.settings(schema),
        }
    }
}

pub mod pki;

/// A temporary directory for one test, removed on drop (`tempfile` underneath).
pub mod tempfile_dir {
    use std::path::Path;

    /// A directory under the system temporary directory, removed with its contents on drop.
    #[derive(Debug)]
    pub struct TempDir(tempfile::TempDir);

    impl TempDir {
        /// Creates a new empty directory.
        pub fn new() -> Self {
            let dir = tempfile::Builder::new()
                .prefix("ccp-test-")
                .tempdir()
                .expect("create a temporary directory");
            Self(dir)
        }

        /// Returns its path.
        pub fn path(&self) -> &Path {
            self.0.path()
        }
    }

    impl Default for TempDir {
        fn default() -> Self {
            Self::new()
        }
    }
}

/// Makes every insert into `table` fail (a trigger raising an error) until
/// [`allow_inserts`]: injects a fault in the middle of a write, after the
/// statements that come before that insert. SQLite and PostgreSQL alike.
pub async fn refuse_inserts(
    db: &sea_orm::DatabaseConnection,
    table: &str,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::ConnectionTrait as _;
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        db.execute_unprepared(&format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ))
        .await?;
    } else {
        db.execute_unprepared(
            "CREATE OR REPLACE FUNCTION refuse_insert() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
        )
        .await?;
        db.execute_unprepared(&format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
             FOR EACH ROW EXECUTE FUNCTION refuse_insert()"
        ))
        .await?;
    }
    Ok(())
}

/// Undoes [`refuse_inserts`].
pub async fn allow_inserts(
    db: &sea_orm::DatabaseConnection,
    table: &str,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::ConnectionTrait as _;
    let sql = if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        format!("DROP TRIGGER refuse_{table}")
    } else {
        format!("DROP TRIGGER refuse_{table} ON {table}")
    };
    db.execute_unprepared(&sql).await.map(|_| ())
}

/// Checks a per-service binary's command line ([`crate::config::ServiceArgs`]):
/// `--help` prints its usage with `--config` and exits 0 without serving,
/// `--version` prints its name and version, an unknown argument exits 2.
pub fn check_service_binary(path: &str, name: &str) {
    let run = |arg: &str| {
        let output = std::process::Command::new(path)
            .arg(arg)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("{path} {arg}: {err}"));
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, help) = run("--help");
    assert_eq!(code, Some(0), "{name} --help: {help}");
    assert!(help.contains(&format!("Usage: {name}")), "{help}");
    assert!(help.contains("--config <FILE>"), "{help}");
    let (code, version) = run("--version");
    assert_eq!(code, Some(0), "{name} --version");
    assert!(version.starts_with(&format!("{name} ")), "{version}");
    let (code, _) = run("--no-such-flag");
    assert_eq!(code, Some(2), "{name} --no-such-flag is a usage error");
}

#[cfg(test)]
mod url_tests {
    use super::replace_database;

    #[test]
    fn replaces_the_database_segment() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h:1", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
