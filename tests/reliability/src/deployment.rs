//! One fresh distributed deployment per scenario: identity, accounts and
//! delegation as `ccp serve` processes on their own new databases of the
//! suite's PostgreSQL, one gateway on the suite's Redis under a new key
//! prefix. Every process listens on a fixed spare port, so that a process
//! killed with SIGKILL comes back where its callers look for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use ccp::bench::distributed::BenchDatabases;
use ccp_e2e::ServiceProcess;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::client::Kill;
use ccp_platform::testing::spare_ports;

/// The processes of a deployment, in start order.
pub const PROCESSES: [&str; 4] = ["identity", "accounts", "delegation", "gateway"];

/// A running deployment.
#[derive(Debug)]
pub struct Deployment {
    env: Vec<(String, String)>,
    ports: BTreeMap<&'static str, u16>,
    running: Mutex<BTreeMap<&'static str, ServiceProcess>>,
    log_dir: PathBuf,
    databases: Option<BenchDatabases>,
    /// The internal key every process shares (base64).
    pub internal_key: String,
    /// The development issuer's key (base64): the suite signs its users in with it.
    pub dev_key: String,
}

/// How many times a process start is tried (its port may linger a moment).
const START_ATTEMPTS: usize = 3;

impl Deployment {
    /// Creates the databases and starts every process; logs go to
    /// `<log_dir>/<process>.log`.
    pub async fn start(
        postgres_admin_url: &str,
        redis_url: &str,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let databases =
            BenchDatabases::create(postgres_admin_url, &["identity", "accounts", "delegation"])
                .await?;
        let internal_key = ccp_platform::auth::InternalTokens::generate_key();
        let dev_key = ccp_platform::auth::InternalTokens::generate_key();
        let ports: BTreeMap<&'static str, u16> = PROCESSES
            .into_iter()
            .zip(spare_ports(PROCESSES.len()))
            .collect();
        let url = |p: &str| format!("http://127.0.0.1:{}", ports[p]);
        let mut env: Vec<(String, String)> = vec![
            ("CCP_ENVIRONMENT".into(), "test".into()),
            ("CCP_INTERNAL_AUTH__KEY".into(), internal_key.clone()),
            ("CCP_REDIS__URL".into(), redis_url.to_owned()),
            (
                "CCP_REDIS__KEY_PREFIX".into(),
                format!("ccp-reliability:{}:", uuid::Uuid::new_v4().simple()),
            ),
            ("CCP_TELEMETRY__LOG_FILTER".into(), "warn".into()),
            // Plain log files.
            ("NO_COLOR".into(), "1".into()),
            (
                "CCP_IDENTITY__KEY_ENCRYPTION_KEY".into(),
                ccp_platform::auth::InternalTokens::generate_key(),
            ),
            ("CCP_IDENTITY__DEV_ISSUER__ENABLED".into(), "true".into()),
            ("CCP_IDENTITY__DEV_ISSUER__KEY".into(), dev_key.clone()),
            // The suite measures faults, not the per-principal limiter.
            ("CCP_GATEWAY__RATE_LIMIT_PER_SECOND".into(), "0".into()),
            ("CCP_ACCOUNTS__IDENTITY_ENDPOINT".into(), url("identity")),
            ("CCP_DELEGATION__IDENTITY_ENDPOINT".into(), url("identity")),
            ("CCP_DELEGATION__ACCOUNTS_ENDPOINT".into(), url("accounts")),
            ("CCP_GATEWAY__IDENTITY_ENDPOINT".into(), url("identity")),
            ("CCP_GATEWAY__ACCOUNTS_ENDPOINT".into(), url("accounts")),
            ("CCP_GATEWAY__DELEGATION_ENDPOINT".into(), url("delegation")),
        ];
        for service in ["identity", "accounts", "delegation"] {
            let up = service.to_uppercase();
            env.push((format!("CCP_{up}__DATABASE__URL"), databases.url(service)?));
        }
        for process in PROCESSES {
            env.push((
                format!("CCP_{}__SERVER__LISTEN", process.to_uppercase()),
                format!("127.0.0.1:{}", ports[process]),
            ));
        }
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("create {}", log_dir.display()))?;
        let me = Self {
            env,
            ports,
            running: Mutex::new(BTreeMap::new()),
            log_dir: log_dir.to_owned(),
            databases: Some(databases),
            internal_key,
            dev_key,
        };
        for process in PROCESSES {
            me.restart(process).await?;
        }
        Ok(me)
    }

    /// Returns the URL of `process`.
    pub fn url(&self, process: &str) -> anyhow::Result<String> {
        let port = self
            .ports
            .get(process)
            .with_context(|| format!("no process {process}"))?;
        Ok(format!("http://127.0.0.1:{port}"))
    }

    /// Starts `process` (again) on its port, stopping nothing: the caller
    /// killed it first.
    pub async fn restart(&self, process: &'static str) -> anyhow::Result<()> {
        let mut last = None;
        for attempt in 0..START_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_dir.join(format!("{process}.log")))
                .context("open the process log")?;
            match ServiceProcess::start_with_stderr(process, &self.env, Stdio::from(log)).await {
                Ok(started) => {
                    self.running.lock().await.insert(process, started);
                    return Ok(());
                }
                Err(err) => last = Some(err),
            }
        }
        let said = self.last_log_line(process);
        Err(last.unwrap_or_else(|| anyhow::anyhow!("{process} never started"))).with_context(|| {
            format!(
                "start {process} (log in {}; its last line: {})",
                self.log_dir.display(),
                said.as_deref().unwrap_or("nothing")
            )
        })
    }

    /// Kills `process` with SIGKILL and waits until it is gone; returns when
    /// the signal was sent and when the process was gone.
    pub async fn kill(&self, process: &str) -> anyhow::Result<Kill> {
        let victim = self
            .running
            .lock()
            .await
            .remove(process)
            .with_context(|| format!("{process} is not running"))?;
        let sent = Instant::now();
        victim.kill().await?;
        Ok(Kill {
            process: process.to_owned(),
            sent,
            gone: Instant::now(),
        })
    }

    /// Returns true when `process` runs (was started and not killed).
    pub async fn is_running(&self, process: &str) -> bool {
        self.running.lock().await.contains_key(process)
    }

    /// Returns the last line `process` logged (for a note on why it stopped).
    pub fn last_log_line(&self, process: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.log_dir.join(format!("{process}.log"))).ok()?;
        text.lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .map(str::to_owned)
    }

    /// Stops every process gracefully (gateway first) and drops the databases.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        let mut running = std::mem::take(&mut *self.running.lock().await);
        for process in PROCESSES.iter().rev() {
            if let Some(p) = running.remove(process)
                && let Err(err) = p.stop().await
            {
                first_error.get_or_insert(err);
            }
        }
        if let Some(databases) = self.databases.take()
            && let Err(err) = databases.drop_all().await
        {
            first_error.get_or_insert(err);
        }
        first_error.map_or(Ok(()), Err)
    }
}
