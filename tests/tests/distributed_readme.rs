//! The README's "Running distributed" block, run verbatim: the fenced block
//! after the `<!-- distributed: … -->` marker is executed by bash
//! (`set -euo pipefail`) with its own values for the variables it reads —
//! uuid-named databases on the test PostgreSQL, a fresh Redis key prefix,
//! spare loopback ports, a temporary deployment directory — and must end
//! with a test user signed in through the gateway in production mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ccp_e2e::ccp_binary;
use ccp_e2e::manifests::repo_root;
use ccp_platform::testing::spare_ports;

const MARKER: &str = "<!-- distributed:";

/// Returns the bash block that follows the marker in README.md.
fn distributed_block() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let after = readme
        .split_once(MARKER)
        .expect("README.md has the distributed marker")
        .1;
    let block = after
        .split_once("```bash\n")
        .expect("a ```bash block follows the marker")
        .1;
    block
        .split_once("\n```")
        .expect("the block is closed")
        .0
        .to_owned()
}

/// `postgres://user[:password]@host:port/db` → (host, port, user).
fn server_of(url: &str) -> (String, String, String) {
    let rest = url.split_once("://").expect("a URL").1;
    let (auth, rest) = rest.split_once('@').expect("a user in the URL");
    let user = auth.split(':').next().unwrap().to_owned();
    let hostport = rest.split(['/', '?']).next().unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    (host.to_owned(), port.to_owned(), user)
}

/// Drops the block's databases and stops what it started, even on failure.
struct Cleanup {
    admin_url: String,
    databases: Vec<String>,
    dir: std::path::PathBuf,
    shell: Option<u32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The services the block started in the background, by the ids it recorded.
        let pids = std::fs::read_to_string(self.dir.join("pids")).unwrap_or_default();
        let pids: Vec<&str> = pids.split_whitespace().collect();
        for pid in &pids {
            let _ = Command::new("kill").args(["-TERM", pid]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while pids.iter().any(|pid| {
            Command::new("kill")
                .args(["-0", pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Anything left in the block's own process group.
        if let Some(group) = self.shell {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
        let admin_url = self.admin_url.clone();
        let databases = std::mem::take(&mut self.databases);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sea_orm_migration::sea_orm::ConnectionTrait as _;
                if let Ok(admin) = sea_orm_migration::sea_orm::Database::connect(&admin_url).await {
                    for db in databases {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                    let _ = admin.close().await;
                }
            });
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_readme_distributed_block_runs_verbatim_and_signs_a_test_user_in_through_the_gateway() {
    let script = distributed_block();
    assert!(script.contains("ccp migrate"), "{script}");
    let (Some(pg), Some(redis)) = (
        ccp_platform::testing::postgres_url(),
        ccp_platform::testing::redis_url(),
    ) else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL / CCP_TEST_REDIS_URL not set");
        return;
    };
    let (host, port, user) = server_of(&pg);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let databases: Vec<String> = ["identity", "accounts", "delegation"]
        .iter()
        .map(|s| format!("ccp_test_{id}_{s}"))
        .collect();
    let dir = std::env::temp_dir().join(format!("ccp-distributed-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cleanup = Cleanup {
        admin_url: pg.clone(),
        databases: databases.clone(),
        dir: dir.clone(),
        shell: None,
    };
    let ports = spare_ports(4);
    let binary = ccp_binary().unwrap();
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(&dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CCP_") || key.starts_with("PG") {
            command.env_remove(key);
        }
    }
    command
        .env("PATH", path)
        .env("PGHOST", &host)
        .env("PGPORT", &port)
        .env("PGUSER", &user)
        .env("CCP_DB_IDENTITY", &databases[0])
        .env("CCP_DB_ACCOUNTS", &databases[1])
        .env("CCP_DB_DELEGATION", &databases[2])
        .env("REDIS_URL", &redis)
        .env(
            "CCP_REDIS__KEY_PREFIX",
            ccp_platform::testing::unique_prefix(),
        )
        .env("GATEWAY_PORT", ports[0].to_string())
        .env("IDENTITY_PORT", ports[1].to_string())
        .env("ACCOUNTS_PORT", ports[2].to_string())
        .env("DELEGATION_PORT", ports[3].to_string())
        .env("CCP_DEPLOY_DIR", dir.join("deployment"))
        .env("CCP_SESSION", dir.join("session.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: the servers it starts in the background stay
        // findable (and stoppable) after the shell exits.
        .process_group(0);
    let mut child = command.spawn().expect("start bash");
    cleanup.shell = Some(child.id());
    let deadline = Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the distributed block ran longer than 240 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let logs: String = ["identity", "accounts", "delegation", "gateway"]
        .iter()
        .map(|s| {
            let log = std::fs::read_to_string(dir.join(format!("deployment/{s}.log")))
                .unwrap_or_default();
            format!("--- {s}.log\n{log}")
        })
        .collect();
    assert!(
        output.status.success(),
        "the distributed block failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n{logs}",
        output.status
    );
    for service in ["identity", "accounts", "delegation"] {
        assert!(
            stdout.contains(&format!("{service}: applied")),
            "{service} migrated: {stdout}"
        );
    }
    assert_eq!(stdout.matches(": SERVING").count(), 4, "{stdout}");
    assert!(stdout.contains("signed in as"), "{stdout}");
    assert!(
        stdout.contains("Alice Martin"),
        "whoami shows the profile: {stdout}"
    );

    // The deployment answers a further call through the gateway with the session.
    let whoami = Command::new(&binary)
        .args(["whoami", "--json"])
        .env("CCP_GATEWAY_URL", format!("http://127.0.0.1:{}", ports[0]))
        .env("CCP_SESSION", dir.join("session.json"))
        .env("CCP_ENVIRONMENT", "test")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&whoami.stdout);
    assert!(
        whoami.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&whoami.stderr)
    );
    let session: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(session["kind"], "person", "{text}");
    assert_eq!(
        session["profileRequired"], false,
        "alice has her profile: {text}"
    );
    drop(cleanup);
}
