//! End-to-end tests of CCP: the guide's stories across every service and the
//! gateway, in the embedded mode (one process) and distributed (a process per
//! service, PostgreSQL with one database per service, Redis, several gateway
//! replicas) — started by the tests from the built `ccp` binary.
//!
//! This crate owns the harness that starts either deployment; the stories are
//! its integration tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use ccp_platform::testing::{TestDatabase, postgres_url, redis_url, unique_prefix};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Returns the path of the `ccp` binary the tests run: `CCP_BIN` when set,
/// else the `ccp` of this workspace in this test binary's target directory
/// and profile: the one there when no source is newer (`cargo test
/// --workspace` builds it), else built once per test process with `cargo
/// build -p ccp`, so `cargo test -p ccp-e2e` needs no build beforehand and
/// never runs a stale binary.
pub fn ccp_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CCP_BIN") {
        return Ok(PathBuf::from(path));
    }
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build_ccp().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// The longest a build of `ccp` may take (a cold build on a 2-core machine).
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// Returns the newest modification time of the sources `ccp` is built
/// from (bounded walk), to tell whether a binary is up to date.
fn newest_source(root: &std::path::Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut pending: Vec<PathBuf> = ["ccp", "platform", "services", "types", "proto"]
        .iter()
        .map(|dir| root.join(dir))
        .collect();
    pending.push(root.join("Cargo.lock"));
    let mut visited = 0;
    while let Some(path) = pending.pop() {
        visited += 1;
        if visited > 50_000 {
            // Too many files to tell: treat the sources as new.
            return std::time::SystemTime::now();
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "tests")
            {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(modified);
        }
    }
    newest
}

fn build_ccp() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // A test binary is `<target>/<profile>/deps/x-…`; a workspace binary `<target>/<profile>/x`.
    let mut profile_dir = exe.parent().context("binary has no parent directory")?;
    if profile_dir.ends_with("deps") {
        profile_dir = profile_dir.parent().context("deps has no parent")?;
    }
    let target_dir = profile_dir
        .parent()
        .context("the profile directory has no parent")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => anyhow::bail!("cannot tell the profile of {}", exe.display()),
    };
    let name = if cfg!(windows) { "ccp.exe" } else { "ccp" };
    let path = profile_dir.join(name);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // `cargo test --workspace` has built it already: use it when no source is newer.
    if let Ok(built) = std::fs::metadata(&path).and_then(|m| m.modified())
        && built >= newest_source(&root)
    {
        return Ok(path);
    }
    let manifest = root.join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = std::process::Command::new(cargo)
        .args(["build", "-p", "ccp", "--bin", "ccp", "--profile", profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null())
        .spawn()
        .context("start `cargo build -p ccp`")?;
    let deadline = std::time::Instant::now() + BUILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            anyhow::bail!("`cargo build -p ccp` did not finish within {BUILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !status.success() {
        anyhow::bail!("`cargo build -p ccp` failed ({status}); set CCP_BIN to a built ccp instead");
    }
    anyhow::ensure!(
        path.is_file(),
        "{} not found after the build",
        path.display()
    );
    Ok(path)
}

/// One `ccp serve <service>` process.
#[derive(Debug)]
pub struct ServiceProcess {
    /// The service name.
    pub service: &'static str,
    /// Where it listens (`0.0.0.0:0` for a process that says only that it is consuming).
    pub addr: SocketAddr,
    /// `https` when it serves TLS, else `http`.
    pub scheme: &'static str,
    /// Its Prometheus endpoint (`http://…/metrics`), when metrics are on.
    pub metrics: Option<String>,
    child: Child,
}

impl ServiceProcess {
    /// Starts `ccp serve <service>` with `env` and waits (bounded) until it prints its address
    /// (or, for a service that serves no API, that it is consuming).
    pub async fn start(service: &'static str, env: &[(String, String)]) -> anyhow::Result<Self> {
        Self::start_with_stderr(service, env, Stdio::inherit()).await
    }

    /// Starts `ccp serve <service>` like [`ServiceProcess::start`], its log
    /// lines (stderr) going to `stderr` (a file, or null).
    pub async fn start_with_stderr(
        service: &'static str,
        env: &[(String, String)],
        stderr: Stdio,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(ccp_binary()?)
            .arg("serve")
            .arg(service)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start ccp serve {service}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut metrics = None;
        let (scheme, addr) = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                // Printed before the gRPC address.
                if let Some(url) = line.split(" metrics on ").nth(1) {
                    metrics = Some(url.trim().to_owned());
                }
                for scheme in ["http", "https"] {
                    if let Some(url) = line.split(&format!("listening on {scheme}://")).nth(1) {
                        return Ok::<_, anyhow::Error>((scheme, url.trim().parse::<SocketAddr>()?));
                    }
                }
                if line.starts_with(&format!("{service} consuming ")) {
                    return Ok(("http", SocketAddr::from(([0, 0, 0, 0], 0))));
                }
            }
            anyhow::bail!("ccp serve {service} exited before listening")
        })
        .await
        .with_context(|| format!("ccp serve {service} did not start within 60 s"))??;
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            service,
            addr,
            scheme,
            metrics,
            child,
        })
    }

    /// Returns the endpoint URL.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Returns the process id (None once it has been waited for).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no drain, as a crash would) and waits
    /// (bounded) until it is gone.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .with_context(|| format!("{} did not die within 10 s of SIGKILL", self.service))??;
        Ok(())
    }

    /// Stops the process with SIGTERM and waits (bounded) for it to drain.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await??;
        anyhow::ensure!(status.success(), "{} exited with {status}", self.service);
        Ok(())
    }
}

/// The distributed deployment: replicas of identity, accounts and delegation
/// on one PostgreSQL database per service, gateway replicas, and one
/// notifications process (e-mail as `.eml` files in [`Distributed::mail_dir`]),
/// sharing one Redis; every caller balances over the replicas of its upstreams
/// (each endpoint setting lists them). Every process (and every `ccp` command
/// given [`Distributed::env`]) follows one shared clock file
/// ([`Distributed::clock_file`], `clock.mode = "file"`), so a test moves them
/// all by writing it.
#[derive(Debug)]
pub struct Distributed {
    /// The identity process.
    pub identity: ServiceProcess,
    /// The accounts process.
    pub accounts: ServiceProcess,
    /// The delegation process.
    pub delegation: ServiceProcess,
    /// The gateway replicas.
    pub gateways: Vec<ServiceProcess>,
    /// The notifications process (one; replicas would share the streams through their leases).
    pub notifications: ServiceProcess,
    /// The further replicas of identity, accounts and delegation (the first
    /// of each is named above).
    pub replicas: Vec<ServiceProcess>,
    /// The internal key every process shares (base64).
    pub internal_key: String,
    /// The environment the processes were started with.
    pub env: Vec<(String, String)>,
    dir: ccp_platform::testing::tempfile_dir::TempDir,
    _databases: Vec<TestDatabase>,
}

/// How often the distributed deployment's processes re-read the shared clock file.
pub const CLOCK_POLL_MS: u64 = 50;

/// How often both worlds' delegation sweeps (expiries and the 30/7/1-day reminders).
pub const SWEEP_INTERVAL_MS: u64 = 200;

impl Distributed {
    /// Starts the distributed deployment with `replicas` processes of every
    /// service (gateways included), or returns None when PostgreSQL or Redis is not configured for tests
    /// (`CCP_TEST_DATABASE_URL`, `CCP_TEST_REDIS_URL`; both set in CI).
    pub async fn start(
        replicas: usize,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Option<Self>> {
        Self::start_logging(replicas, extra_env, None).await
    }

    /// Starts the deployment like [`Distributed::start`]; with `log_dir`,
    /// each process's log lines (stderr) go to `<log_dir>/<service>-<n>.log`
    /// (n counts the processes started, from 0) instead of the test's stderr.
    pub async fn start_logging(
        replicas: usize,
        extra_env: &[(&str, &str)],
        log_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Self>> {
        let (Some(_), Some(redis)) = (postgres_url(), redis_url()) else {
            return Ok(None);
        };
        let mut databases = Vec::new();
        for _ in 0..4 {
            databases.push(
                TestDatabase::create()
                    .await
                    .context("PostgreSQL configured but unavailable")?,
            );
        }
        let internal_key = ccp_platform::auth::InternalTokens::generate_key();
        let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
        let clock_file = dir.path().join("clock");
        ccp_platform::clock::write_offset(&clock_file, chrono::Duration::zero())?;
        let mut env: Vec<(String, String)> = vec![
            ("CCP_ENVIRONMENT".into(), "test".into()),
            ("CCP_CLOCK__MODE".into(), "file".into()),
            ("CCP_CLOCK__FILE".into(), clock_file.display().to_string()),
            ("CCP_CLOCK__POLL_MS".into(), CLOCK_POLL_MS.to_string()),
            (
                "CCP_DELEGATION__SWEEP_INTERVAL_MS".into(),
                SWEEP_INTERVAL_MS.to_string(),
            ),
            (
                "CCP_NOTIFICATIONS__MAIL_DIR".into(),
                dir.path().join("mail").display().to_string(),
            ),
            ("CCP_INTERNAL_AUTH__KEY".into(), internal_key.clone()),
            ("CCP_REDIS__URL".into(), redis),
            ("CCP_REDIS__KEY_PREFIX".into(), unique_prefix()),
            ("CCP_TELEMETRY__LOG_FILTER".into(), "warn".into()),
            (
                "CCP_IDENTITY__KEY_ENCRYPTION_KEY".into(),
                ccp_platform::auth::InternalTokens::generate_key(),
            ),
        ];
        for (service, db) in ["identity", "accounts", "delegation", "notifications"]
            .iter()
            .zip(&databases)
        {
            let up = service.to_uppercase();
            env.push((format!("CCP_{up}__DATABASE__URL"), db.url().to_owned()));
            // Spare ports: worlds run side by side (notifications serves its operator API).
            env.push((format!("CCP_{up}__SERVER__LISTEN"), "127.0.0.1:0".into()));
        }
        env.push(("CCP_GATEWAY__SERVER__LISTEN".into(), "127.0.0.1:0".into()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );

        // One after another: the first replica of a service migrates its
        // database; each endpoint setting lists every replica.
        let mut further = Vec::new();
        let started = std::cell::Cell::new(0_usize);
        let spawn = async |service: &'static str, env: &[(String, String)]| {
            let stderr = match log_dir {
                Some(dir) => {
                    let n = started.replace(started.get() + 1);
                    Stdio::from(std::fs::File::create(
                        dir.join(format!("{service}-{n}.log")),
                    )?)
                }
                None => Stdio::inherit(),
            };
            ServiceProcess::start_with_stderr(service, env, stderr).await
        };
        let mut start = async |service: &'static str, env: &[(String, String)]| {
            let first = spawn(service, env).await?;
            let mut urls = vec![first.url()];
            for _ in 1..replicas.max(1) {
                let replica = spawn(service, env).await?;
                urls.push(replica.url());
                further.push(replica);
            }
            anyhow::Ok((first, urls.join(",")))
        };
        let (identity, identity_urls) = start("identity", &env).await?;
        env.push((
            "CCP_ACCOUNTS__IDENTITY_ENDPOINT".into(),
            identity_urls.clone(),
        ));
        env.push((
            "CCP_DELEGATION__IDENTITY_ENDPOINT".into(),
            identity_urls.clone(),
        ));
        env.push((
            "CCP_NOTIFICATIONS__IDENTITY_FACTS_ENDPOINT".into(),
            identity_urls.clone(),
        ));
        env.push(("CCP_GATEWAY__IDENTITY_ENDPOINT".into(), identity_urls));
        let (accounts, accounts_urls) = start("accounts", &env).await?;
        env.push((
            "CCP_DELEGATION__ACCOUNTS_ENDPOINT".into(),
            accounts_urls.clone(),
        ));
        env.push((
            "CCP_NOTIFICATIONS__ACCOUNTS_FACTS_ENDPOINT".into(),
            accounts_urls.clone(),
        ));
        env.push(("CCP_GATEWAY__ACCOUNTS_ENDPOINT".into(), accounts_urls));
        let (delegation, delegation_urls) = start("delegation", &env).await?;
        env.push(("CCP_GATEWAY__DELEGATION_ENDPOINT".into(), delegation_urls));
        // One notifier: it consumes each stream from its stored position, from
        // the beginning the first time, so it misses nothing published before.
        let notifications = spawn("notifications", &env).await?;
        let mut gateways = Vec::new();
        for _ in 0..replicas {
            gateways.push(spawn("gateway", &env).await?);
        }
        Ok(Some(Self {
            identity,
            accounts,
            delegation,
            gateways,
            notifications,
            replicas: further,
            internal_key,
            env,
            dir,
            _databases: databases,
        }))
    }

    /// Returns the directory the notifications process writes its `.eml` files into.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Returns the clock file every process follows (the offset from the
    /// system clock; [`ccp_platform::clock::write_offset`] moves them all).
    pub fn clock_file(&self) -> PathBuf {
        self.dir.path().join("clock")
    }

    /// Stops every process gracefully, gateways first, the notifier next.
    pub async fn stop(self) -> anyhow::Result<()> {
        for gateway in self.gateways {
            gateway.stop().await?;
        }
        self.notifications.stop().await?;
        for replica in self.replicas.into_iter().rev() {
            replica.stop().await?;
        }
        self.delegation.stop().await?;
        self.accounts.stop().await?;
        self.identity.stop().await
    }
}

pub mod mail;
pub mod manifests;
pub mod stories;

/// How a [`World`] runs the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The embedded suite inside the test process, on a settable clock.
    Embedded,
    /// Two replicas of every service (`ccp serve` processes; one notifier)
    /// on PostgreSQL and Redis, on the system clock moved by the offset in
    /// a clock file they all follow.
    Distributed,
}

/// What one `ccp` command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout parsed as JSON (Null when empty; a string when not JSON).
    pub json: serde_json::Value,
    /// stdout as printed.
    pub stdout: String,
    /// stderr as printed.
    pub stderr: String,
}

enum Running {
    Embedded(Box<ccp::embedded::Suite>),
    Distributed(Box<Distributed>),
}

/// The upper bound of one `ccp` command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A running suite the stories act on with the real `ccp` binary, one session
/// file per user.
pub struct World {
    mode: Mode,
    running: Option<Running>,
    dir: ccp_platform::testing::tempfile_dir::TempDir,
    gateways: Vec<String>,
    accounts: String,
    env: Vec<(String, String)>,
    clock: ccp_platform::clock::Clock,
    /// The distributed world's clock offset (what its clock file holds).
    offset: std::sync::Mutex<chrono::Duration>,
    users: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("mode", &self.mode)
            .field("gateways", &self.gateways)
            .finish_non_exhaustive()
    }
}

impl World {
    /// Starts the embedded suite in this process: every server on
    /// 127.0.0.1:0, a temporary data directory, a settable clock starting
    /// now (whole seconds), the test environment, a known internal key and
    /// development-issuer key (given to the CLI too).
    pub async fn embedded() -> anyhow::Result<Self> {
        use ccp_platform::config::{ClockMode, Environment};
        let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
        let data_dir = dir.path().join("data");
        let internal_key = ccp_platform::auth::InternalTokens::generate_key();
        let dev_key = ccp_platform::auth::InternalTokens::generate_key();
        let start = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0)
            .context("now is representable")?;
        let mut settings = ccp::settings::SuiteSettings {
            data_dir: data_dir.clone(),
            ..Default::default()
        };
        settings.common.environment = Environment::Test;
        settings.common.internal_auth.key = internal_key.clone().into();
        settings.common.clock.mode = ClockMode::Settable;
        settings.common.clock.start = Some(start.to_rfc3339());
        settings.common.telemetry.log_filter = "warn".to_owned();
        settings.identity.dev_issuer.enabled = Some(true);
        settings.identity.dev_issuer.key = dev_key.clone().into();
        settings.delegation.sweep_interval_ms = SWEEP_INTERVAL_MS;
        settings.on_spare_loopback_ports();
        let context =
            ccp_platform::context::ServiceContext::from_settings(&settings.common).await?;
        let clock = context.clock.clone();
        anyhow::ensure!(
            clock.is_settable(),
            "the embedded world needs a settable clock"
        );
        let suite = ccp::embedded::Suite::start(settings, context).await?;
        let endpoints = suite.endpoints();
        let env = vec![
            ("CCP_ENVIRONMENT".to_owned(), "test".to_owned()),
            ("CCP_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("CCP_INTERNAL_AUTH__KEY".to_owned(), internal_key),
            (
                "CCP_IDENTITY__DEV_ISSUER__ENABLED".to_owned(),
                "true".to_owned(),
            ),
            ("CCP_IDENTITY__DEV_ISSUER__KEY".to_owned(), dev_key),
            ("CCP_CLOCK__MODE".to_owned(), "settable".to_owned()),
            ("CCP_TELEMETRY__LOG_FILTER".to_owned(), "warn".to_owned()),
        ];
        Ok(Self {
            mode: Mode::Embedded,
            running: Some(Running::Embedded(Box::new(suite))),
            dir,
            gateways: vec![format!("http://{}", endpoints.gateway)],
            accounts: format!("http://{}", endpoints.accounts),
            env,
            clock,
            offset: std::sync::Mutex::new(chrono::Duration::zero()),
            users: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Starts the distributed deployment (identity, accounts, delegation on
    /// PostgreSQL, two gateway replicas on Redis) with the development issuer
    /// on; None when PostgreSQL or Redis is not configured for tests (a panic
    /// instead when `CI` is set, see `ccp_platform::testing`).
    pub async fn distributed() -> anyhow::Result<Option<Self>> {
        Self::distributed_with(2, &[], None).await
    }

    /// Starts the distributed deployment as [`World::distributed`] does, with
    /// `replicas` processes of every service, `extra_env` (TLS settings, say)
    /// for every process and `ccp` command, and their log lines in `log_dir`
    /// when given (see [`Distributed::start_logging`]).
    pub async fn distributed_with(
        replicas: usize,
        extra_env: &[(&str, &str)],
        log_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Self>> {
        let dev_key = ccp_platform::auth::InternalTokens::generate_key();
        let mut env = vec![
            ("CCP_IDENTITY__DEV_ISSUER__ENABLED", "true"),
            ("CCP_IDENTITY__DEV_ISSUER__KEY", dev_key.as_str()),
        ];
        env.extend_from_slice(extra_env);
        let Some(deployment) = Distributed::start_logging(replicas, &env, log_dir).await? else {
            return Ok(None);
        };
        let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
        let gateways = deployment
            .gateways
            .iter()
            .map(ServiceProcess::url)
            .collect();
        let accounts = deployment.accounts.url();
        let mut env = deployment.env.clone();
        env.retain(|(k, _)| k != "CCP_TELEMETRY__LOG_FILTER");
        env.push(("CCP_TELEMETRY__LOG_FILTER".to_owned(), "warn".to_owned()));
        env.push((
            "CCP_DATA_DIR".to_owned(),
            dir.path().join("data").display().to_string(),
        ));
        Ok(Some(Self {
            mode: Mode::Distributed,
            running: Some(Running::Distributed(Box::new(deployment))),
            dir,
            gateways,
            accounts,
            env,
            clock: ccp_platform::clock::Clock::system(),
            offset: std::sync::Mutex::new(chrono::Duration::zero()),
            users: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// Returns how the suite runs.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Returns the embedded suite's data directory (None for the distributed one).
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        (self.mode == Mode::Embedded).then(|| self.dir.path().join("data"))
    }

    /// Returns the suite's current instant: the embedded settable clock, or
    /// the system clock moved by the distributed world's clock offset.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match self.mode {
            Mode::Embedded => self.clock.now(),
            Mode::Distributed => chrono::Utc::now() + *self.lock_offset(),
        }
    }

    fn lock_offset(&self) -> std::sync::MutexGuard<'_, chrono::Duration> {
        self.offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the suite's clock forward by `by` (back when negative): the
    /// embedded settable clock at once; in the distributed world the offset
    /// in the clock file every process follows, which each process reads
    /// within [`CLOCK_POLL_MS`] (waiting for an effect is the caller's job,
    /// bounded).
    pub fn advance(&self, by: chrono::Duration) -> anyhow::Result<()> {
        match &self.running {
            Some(Running::Embedded(_)) => {
                anyhow::ensure!(self.clock.advance(by), "the embedded clock is settable");
            }
            Some(Running::Distributed(deployment)) => {
                let mut offset = self.lock_offset();
                let moved = *offset + by;
                ccp_platform::clock::write_offset(&deployment.clock_file(), moved)
                    .context("write the shared clock file")?;
                *offset = moved;
            }
            None => anyhow::bail!("the world has stopped"),
        }
        Ok(())
    }

    /// Moves the suite's clock to at least `instant` (see [`World::advance`];
    /// the distributed world's clock keeps running from there).
    pub fn advance_to(&self, instant: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
        self.advance(instant - self.now())
    }

    /// Returns the directory the notifier writes its `.eml` files into.
    pub fn mail_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.running {
            Some(Running::Embedded(_)) => Ok(self.dir.path().join("data").join("mail")),
            Some(Running::Distributed(deployment)) => Ok(deployment.mail_dir()),
            None => anyhow::bail!("the world has stopped"),
        }
    }

    /// Returns every message the notifier wrote to `address` (case
    /// insensitive), parsed, in file-name order.
    pub fn mail_for(&self, address: &str) -> anyhow::Result<Vec<mail::Mail>> {
        let address = address.to_lowercase();
        Ok(mail::read_dir(&self.mail_dir()?)?
            .into_iter()
            .filter(|m| m.recipients.contains(&address))
            .collect())
    }

    /// Returns every message the notifier wrote, parsed, in file-name order.
    pub fn all_mail(&self) -> anyhow::Result<Vec<mail::Mail>> {
        mail::read_dir(&self.mail_dir()?)
    }

    /// Returns the gateway URL `user` talks to: users are spread over the
    /// gateway replicas in the order they first act.
    pub fn gateway_of(&self, user: &str) -> String {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = match users.iter().position(|u| u == user) {
            Some(i) => i,
            None => {
                users.push(user.to_owned());
                users.len() - 1
            }
        };
        self.gateways[index % self.gateways.len()].clone()
    }

    /// Returns every gateway replica's URL.
    pub fn gateways(&self) -> &[String] {
        &self.gateways
    }

    /// Returns the accounts service's URL (internal callers: registry import).
    pub fn accounts_url(&self) -> &str {
        &self.accounts
    }

    /// Returns the file holding `user`'s session.
    pub fn session_file(&self, user: &str) -> PathBuf {
        self.dir
            .path()
            .join("sessions")
            .join(format!("{user}.json"))
    }

    /// Returns the environment a `ccp` command runs with (the settable
    /// clock's current instant in the embedded world).
    pub fn cli_env(&self) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        if self.mode == Mode::Embedded {
            env.push((
                "CCP_CLOCK__START".to_owned(),
                self.clock
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ));
        }
        env
    }

    /// Runs `ccp <args> --gateway <user's gateway> --session
    /// <dir>/<user>.json --json` with the world's environment, bounded by [`COMMAND_TIMEOUT`].
    pub async fn ccp(&self, user: &str, args: &[&str]) -> anyhow::Result<Outcome> {
        let gateway = self.gateway_of(user);
        let session = self.session_file(user);
        if let Some(parent) = session.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // The flags follow the command (client flags are accepted after the
        // subcommand, as the README shows).
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend([
            "--gateway".into(),
            gateway,
            "--session".into(),
            session.display().to_string(),
            "--json".into(),
        ]);
        self.run(&all).await
    }

    /// Runs `ccp <args>` with the world's environment only (no session,
    /// gateway or `--json` flags added), bounded by [`COMMAND_TIMEOUT`].
    pub async fn run(&self, args: &[String]) -> anyhow::Result<Outcome> {
        self.run_with(args, self.cli_env()).await
    }

    /// Runs `ccp <args>` as [`World::run`] does, without the world's
    /// variables whose names start with `prefix` (`CCP_UPSTREAM__TLS_`).
    pub async fn run_without(&self, args: &[String], prefix: &str) -> anyhow::Result<Outcome> {
        let mut env = self.cli_env();
        env.retain(|(k, _)| !k.starts_with(prefix));
        self.run_with(args, env).await
    }

    async fn run_with(
        &self,
        args: &[String],
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Outcome> {
        let child = Command::new(ccp_binary()?)
            .args(args)
            .env_remove("CCP_GATEWAY_URL")
            .env_remove("CCP_SESSION")
            .env_remove("CCP_CA_FILE")
            .envs(env)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start ccp")?;
        let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| {
                format!("ccp {} ran longer than {COMMAND_TIMEOUT:?}", args.join(" "))
            })??;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let trimmed = stdout.trim();
        let json = if trimmed.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(trimmed)
                .unwrap_or_else(|_| serde_json::Value::String(trimmed.to_owned()))
        };
        Ok(Outcome {
            code: output.status.code().unwrap_or(-1),
            json,
            stdout,
            stderr,
        })
    }

    /// Runs a `ccp` command as `user` and panics unless it exits 0; returns
    /// its JSON output.
    pub async fn ok(&self, user: &str, args: &[&str]) -> serde_json::Value {
        let out = match self.ccp(user, args).await {
            Ok(out) => out,
            Err(err) => panic!("{user}: ccp {}: {err:#}", args.join(" ")),
        };
        assert_eq!(
            out.code,
            0,
            "{user}: ccp {} exited {}\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.code,
            out.stdout,
            out.stderr
        );
        out.json
    }

    /// Runs a `ccp` command as `user` and panics unless it exits `code`;
    /// returns its JSON output.
    pub async fn fails(&self, code: i32, user: &str, args: &[&str]) -> serde_json::Value {
        let out = match self.ccp(user, args).await {
            Ok(out) => out,
            Err(err) => panic!("{user}: ccp {}: {err:#}", args.join(" ")),
        };
        assert_eq!(
            out.code,
            code,
            "{user}: ccp {} exited {} (expected {code})\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.code,
            out.stdout,
            out.stderr
        );
        out.json
    }

    /// Signs `user` in with the development issuer (`ccp login --dev`);
    /// returns the session JSON (`principal`, `profile`, `profileRequired`).
    pub async fn login(&self, user: &str) -> serde_json::Value {
        self.ok(user, &["login", "--dev", user]).await
    }

    /// Loads the guide's demo into the suite (`ccp demo load`).
    pub async fn demo_load(&self) -> anyhow::Result<Outcome> {
        let args: Vec<String> = vec![
            "demo".into(),
            "load".into(),
            "--gateway".into(),
            self.gateways[0].clone(),
            "--accounts".into(),
            self.accounts.clone(),
        ];
        let out = self.run(&args).await?;
        anyhow::ensure!(
            out.code == 0,
            "ccp demo load exited {}\nstdout: {}\nstderr: {}",
            out.code,
            out.stdout,
            out.stderr
        );
        Ok(out)
    }

    /// Returns every `ccp serve` process of a distributed world (none for
    /// the embedded one).
    pub fn processes(&self) -> Vec<&ServiceProcess> {
        let Some(Running::Distributed(deployment)) = &self.running else {
            return Vec::new();
        };
        let mut all = vec![
            &deployment.identity,
            &deployment.accounts,
            &deployment.delegation,
        ];
        all.extend(deployment.replicas.iter());
        all.extend(deployment.gateways.iter());
        all
    }

    /// Stops the suite gracefully.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        match self.running.take() {
            Some(Running::Embedded(suite)) => (*suite).stop().await,
            Some(Running::Distributed(deployment)) => (*deployment).stop().await,
            None => Ok(()),
        }
    }
}
