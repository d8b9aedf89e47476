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

/// Returns the path of the built `ccp` binary: `CCP_BIN` when set, else the
/// `ccp` next to this test binary's `deps/` directory (cargo builds it for
/// `cargo test --workspace`).
pub fn ccp_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CCP_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("test binary has no parent directory")?;
    let candidate = dir.join(if cfg!(windows) { "ccp.exe" } else { "ccp" });
    anyhow::ensure!(
        candidate.exists(),
        "{} not found: build it with `cargo build -p ccp` or set CCP_BIN",
        candidate.display()
    );
    Ok(candidate)
}

/// One `ccp serve <service>` process.
#[derive(Debug)]
pub struct ServiceProcess {
    /// The service name.
    pub service: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

impl ServiceProcess {
    /// Starts `ccp serve <service>` with `env` and waits (bounded) until it prints its address.
    pub async fn start(service: &'static str, env: &[(String, String)]) -> anyhow::Result<Self> {
        let mut child = Command::new(ccp_binary()?)
            .arg("serve")
            .arg(service)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start ccp serve {service}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.split("listening on http://").nth(1) {
                    return Ok::<_, anyhow::Error>(url.trim().parse::<SocketAddr>()?);
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
            child,
        })
    }

    /// Returns the endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

/// The distributed deployment: identity, accounts and delegation processes on
/// their own PostgreSQL databases, and gateway replicas sharing one Redis.
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
    /// The internal key every process shares (base64).
    pub internal_key: String,
    /// The environment the processes were started with.
    pub env: Vec<(String, String)>,
    _databases: Vec<TestDatabase>,
}

impl Distributed {
    /// Starts the distributed deployment with `gateway_replicas` gateways, or
    /// returns None when PostgreSQL or Redis is not configured for tests
    /// (`CCP_TEST_DATABASE_URL`, `CCP_TEST_REDIS_URL`; both set in CI).
    pub async fn start(
        gateway_replicas: usize,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Option<Self>> {
        let (Some(_), Some(redis)) = (postgres_url(), redis_url()) else {
            return Ok(None);
        };
        let mut databases = Vec::new();
        for _ in 0..3 {
            databases.push(
                TestDatabase::create()
                    .await
                    .context("PostgreSQL configured but unavailable")?,
            );
        }
        let internal_key = ccp_platform::auth::InternalTokens::generate_key();
        let mut env: Vec<(String, String)> = vec![
            ("CCP_ENVIRONMENT".into(), "test".into()),
            ("CCP_INTERNAL_AUTH__KEY".into(), internal_key.clone()),
            ("CCP_REDIS__URL".into(), redis),
            ("CCP_REDIS__KEY_PREFIX".into(), unique_prefix()),
            ("CCP_TELEMETRY__LOG_FILTER".into(), "warn".into()),
            (
                "CCP_IDENTITY__KEY_ENCRYPTION_KEY".into(),
                ccp_platform::auth::InternalTokens::generate_key(),
            ),
        ];
        for (service, db) in ["identity", "accounts", "delegation"]
            .iter()
            .zip(&databases)
        {
            let up = service.to_uppercase();
            env.push((format!("CCP_{up}__DATABASE__URL"), db.url().to_owned()));
            env.push((format!("CCP_{up}__SERVER__LISTEN"), "127.0.0.1:0".into()));
        }
        env.push(("CCP_GATEWAY__SERVER__LISTEN".into(), "127.0.0.1:0".into()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );

        let identity = ServiceProcess::start("identity", &env).await?;
        env.push(("CCP_ACCOUNTS__IDENTITY_ENDPOINT".into(), identity.url()));
        env.push(("CCP_DELEGATION__IDENTITY_ENDPOINT".into(), identity.url()));
        env.push(("CCP_GATEWAY__IDENTITY_ENDPOINT".into(), identity.url()));
        let accounts = ServiceProcess::start("accounts", &env).await?;
        env.push(("CCP_DELEGATION__ACCOUNTS_ENDPOINT".into(), accounts.url()));
        env.push(("CCP_GATEWAY__ACCOUNTS_ENDPOINT".into(), accounts.url()));
        let delegation = ServiceProcess::start("delegation", &env).await?;
        env.push(("CCP_GATEWAY__DELEGATION_ENDPOINT".into(), delegation.url()));
        let mut gateways = Vec::new();
        for _ in 0..gateway_replicas {
            gateways.push(ServiceProcess::start("gateway", &env).await?);
        }
        Ok(Some(Self {
            identity,
            accounts,
            delegation,
            gateways,
            internal_key,
            env,
            _databases: databases,
        }))
    }

    /// Stops every process gracefully, gateways first.
    pub async fn stop(self) -> anyhow::Result<()> {
        for gateway in self.gateways {
            gateway.stop().await?;
        }
        self.delegation.stop().await?;
        self.accounts.stop().await?;
        self.identity.stop().await
    }
}
