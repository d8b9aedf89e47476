//! The suite's own PostgreSQL and Redis, on spare loopback ports, so that it
//! may kill and restart them: PostgreSQL from `initdb`/`pg_ctl` in a
//! temporary directory (as the `postgres` user when the suite runs as root,
//! as CI does), Redis from `redis-server` without persistence.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use ccp_platform::testing::{RedisServerGuard, redis_server_on_spare_port};
use tokio::process::Command;

pub use ccp_platform::testing::spare_port;

/// Returns true when this process runs as root (PostgreSQL refuses root).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Returns `name` from PATH, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Returns the directory holding `initdb` and `pg_ctl`: PATH first, else the
/// newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if let (Some(initdb), Some(_)) = (on_path("initdb"), on_path("pg_ctl")) {
        return initdb.parent().map(Path::to_path_buf);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Returns what is missing to run the suite (`initdb`/`pg_ctl`,
/// `redis-server`), empty when nothing is.
pub fn missing_binaries() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if postgres_bin_dir().is_none() {
        missing.push("initdb and pg_ctl (PostgreSQL server binaries)");
    }
    if on_path("redis-server").is_none() {
        missing.push("redis-server");
    }
    if running_as_root() && on_path("runuser").is_none() {
        missing.push("runuser (to run PostgreSQL as the postgres user)");
    }
    missing
}

/// A PostgreSQL cluster of the suite's own: trust authentication, listening
/// on 127.0.0.1 only, its socket in its own directory. Stopped (immediately)
/// and removed when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

/// Upper bound of every `initdb`/`pg_ctl` run.
const PG_TIMEOUT: Duration = Duration::from_secs(90);

impl PrivatePostgres {
    /// Creates a cluster in a temporary directory and starts it on a spare port.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = postgres_bin_dir().context(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("ccp-reliability-pg-")
            .tempdir()
            .context("create the PostgreSQL directory")?;
        let as_postgres_user = running_as_root();
        if as_postgres_user {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .await
                .context("chown the PostgreSQL directory to postgres")?;
            anyhow::ensure!(status.success(), "chown postgres: {status}");
        }
        let me = Self {
            dir,
            bin,
            port: spare_port(),
            as_postgres_user,
        };
        let data = me.data_dir();
        let output = tokio::time::timeout(
            PG_TIMEOUT,
            me.tool("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .context("initdb ran over 90 s")?
        .context("run initdb")?;
        anyhow::ensure!(
            output.status.success(),
            "initdb failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        me.start_server().await?;
        Ok(me)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Returns the log file of the server.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgresql.log")
    }

    /// Returns a command running the PostgreSQL tool `name`, as the postgres
    /// user when this process is root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Returns the URL of its `postgres` database (where databases are created).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut command = self.tool("pg_ctl");
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = tokio::time::timeout(PG_TIMEOUT, command.status())
            .await
            .with_context(|| format!("pg_ctl {} ran over 90 s", args.join(" ")))?
            .context("run pg_ctl")?;
        anyhow::ensure!(
            status.success(),
            "pg_ctl {} failed ({status}); see {}",
            args.join(" "),
            self.log_file().display()
        );
        Ok(())
    }

    /// Starts the server on its port and waits until it accepts connections.
    pub async fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.log_file().display().to_string();
        self.pg_ctl(&["-l", &log, "-w", "-t", "60", "-o", &options, "start"])
            .await
    }

    /// Stops the server at once, without a checkpoint (a crash, as far as
    /// the data is concerned: the next start replays the WAL).
    pub async fn stop_immediate(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["-m", "immediate", "-w", "-t", "60", "stop"])
            .await
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres_user {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            std::process::Command::new(program)
        };
        let _ = command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The suite's Redis: `redis-server` on a spare port without persistence,
/// so that a kill and a start leave it empty.
#[derive(Debug)]
pub struct PrivateRedis {
    server: RedisServerGuard,
}

impl PrivateRedis {
    /// Starts it and waits until it answers PING.
    pub async fn start() -> anyhow::Result<Self> {
        anyhow::ensure!(
            on_path("redis-server").is_some(),
            "redis-server not found on PATH"
        );
        Ok(Self {
            server: redis_server_on_spare_port().await,
        })
    }

    /// Returns its URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Kills it with SIGKILL; what it held is gone.
    pub async fn kill(&mut self) {
        self.server.stop().await;
    }

    /// Starts it again, empty, on the same port.
    pub async fn start_empty(&mut self) {
        self.server.start().await;
    }
}
