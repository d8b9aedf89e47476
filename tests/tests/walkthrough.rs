//! The README's walkthrough, run verbatim: the fenced block after the
//! `<!-- walkthrough … -->` marker is executed by bash (`set -euo pipefail`)
//! against a fresh `ccp up` started from the built binary in a directory of
//! its own, from a directory laid out like a checkout
//! (`deploy/demo/registry.json`) that finds the suite through the state file
//! `ccp up` wrote, so the documented commands cannot go stale.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ccp_e2e::ccp_binary;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const MARKER: &str = "<!-- walkthrough:";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Returns the bash block that follows the marker in README.md.
fn walkthrough_script() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let after = readme
        .split_once(MARKER)
        .expect("README.md has the walkthrough marker")
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

#[tokio::test]
async fn the_readme_walkthrough_runs_verbatim_against_a_fresh_embedded_suite() {
    let script = walkthrough_script();
    assert!(script.contains("ccp business register"), "{script}");

    let dir = std::env::temp_dir().join(format!("ccp-walkthrough-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("deploy/demo")).unwrap();
    std::fs::create_dir_all(dir.join("suite")).unwrap();
    std::fs::copy(
        repo_root().join("deploy/demo/registry.json"),
        dir.join("deploy/demo/registry.json"),
    )
    .unwrap();

    let binary = ccp_binary().unwrap();
    let mut up = Command::new(&binary)
        .args(["up", "--data-dir", ".ccp"])
        // The suite runs in a directory of its own, the walkthrough elsewhere.
        .current_dir(dir.join("suite"))
        .env("CCP_GATEWAY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_IDENTITY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_ACCOUNTS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_DELEGATION__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_TELEMETRY__LOG_FILTER", "warn")
        .env("CCP_STATE_DIR", dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let mut gateway = None;
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let words: Vec<_> = line.split_whitespace().collect();
            if let ["gateway", url, ..] = words.as_slice() {
                gateway = Some((*url).to_owned());
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
    })
    .await
    .expect("ccp up printed its endpoints within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert!(gateway.is_some(), "ccp up printed the gateway's endpoint");

    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{script}"))
            .current_dir(&dir)
            .env("PATH", path)
            // A second terminal finds the running suite (its ports, its keys)
            // through the state file `ccp up` wrote; nothing else is set.
            .env("CCP_STATE_DIR", dir.join("state"))
            .env_remove("CCP_GATEWAY_URL")
            .env_remove("CCP_DATA_DIR")
            .env("CCP_SESSION", dir.join("session.json"))
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the walkthrough finished within 180 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walkthrough failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    // What the guide promises, as the walkthrough prints it.
    assert!(
        stdout.contains("registered; you are its Business Account Manager"),
        "{stdout}"
    );
    assert!(stdout.contains("editor:RM0001 reader:RM0002"), "{stdout}");
    assert_eq!(
        stdout.matches("ALLOW (provider relationship)").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("DENY (visibility)"), "{stdout}");
    assert!(
        stdout.contains("denied: another business's submission"),
        "{stdout}"
    );
    assert!(stdout.contains("DENY (program not covered)"), "{stdout}");
    assert!(stdout.contains("denied: RM0002 is not covered"), "{stdout}");
    assert!(stdout.contains("delegation.relationship.end"), "{stdout}");
    let csv = std::fs::read_to_string(dir.join("abc-audit.csv")).unwrap();
    assert!(csv.starts_with("time,service,actor"), "{csv}");
    assert!(csv.contains("accounts.business.register"), "{csv}");
    assert!(csv.contains("Changed brokers"), "{csv}");

    if let Some(pid) = up.id() {
        let _ = std::process::Command::new("kill")
            .arg("-INT")
            .arg(pid.to_string())
            .status();
    }
    let status = tokio::time::timeout(Duration::from_secs(30), up.wait())
        .await
        .expect("ccp up stopped within 30 s")
        .unwrap();
    assert!(status.success(), "ccp up exited with {status}");
    let _ = std::fs::remove_dir_all(&dir);
}
