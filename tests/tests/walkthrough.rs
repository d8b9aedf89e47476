//! The README's walkthrough, run verbatim: the fenced block after the
//! `<!-- walkthrough … -->` marker is executed by bash (`set -euo pipefail`)
//! against a fresh `ccp up` started from the built binary in a directory of
//! its own, from a directory laid out like a checkout
//! (`deploy/demo/registry.json`) that finds the suite through the state file
//! `ccp up` wrote, so the documented commands cannot go stale. The
//! walkthrough's people are the demo's (one cast), and the README's rule —
//! the walkthrough is for a fresh `ccp up`, not `ccp up --demo` — is checked
//! by running it on the demo too.

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

/// A running `ccp up` (with `--demo` or not) in `<dir>/suite`, its state
/// file in `<dir>/state`.
struct Up {
    child: tokio::process::Child,
}

impl Up {
    async fn start(dir: &Path, demo: bool) -> Self {
        std::fs::create_dir_all(dir.join("suite")).unwrap();
        let mut args = vec!["up", "--data-dir", ".ccp"];
        if demo {
            args.push("--demo");
        }
        let mut child = Command::new(ccp_binary().unwrap())
            .args(&args)
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
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut gateway = None;
        tokio::time::timeout(Duration::from_secs(120), async {
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
        .expect("ccp up printed its endpoints within 120 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        assert!(gateway.is_some(), "ccp up printed the gateway's endpoint");
        Self { child }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-INT")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("ccp up stopped within 30 s")
            .unwrap();
        assert!(status.success(), "ccp up exited with {status}");
    }
}

/// Returns a directory laid out like a checkout (`deploy/demo/registry.json`).
fn checkout_like() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ccp-walkthrough-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("deploy/demo")).unwrap();
    std::fs::copy(
        repo_root().join("deploy/demo/registry.json"),
        dir.join("deploy/demo/registry.json"),
    )
    .unwrap();
    dir
}

/// Runs the walkthrough as a second terminal would: in `dir`, `ccp` on the
/// PATH, finding the running suite (its ports, its keys) through the state
/// file `ccp up` wrote; nothing else is set.
async fn run_walkthrough(dir: &Path, script: &str) -> std::process::Output {
    let binary = ccp_binary().unwrap();
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    tokio::time::timeout(
        Duration::from_secs(180),
        Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{script}"))
            .current_dir(dir)
            .env("PATH", path)
            .env("CCP_STATE_DIR", dir.join("state"))
            .env_remove("CCP_GATEWAY_URL")
            .env_remove("CCP_DATA_DIR")
            .env("CCP_SESSION", dir.join("session.json"))
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the walkthrough finished within 180 s")
    .unwrap()
}

#[tokio::test]
async fn the_readme_walkthrough_runs_verbatim_against_a_fresh_embedded_suite() {
    let script = walkthrough_script();
    assert!(script.contains("ccp business register"), "{script}");
    let dir = checkout_like();
    let up = Up::start(&dir, false).await;
    let output = run_walkthrough(&dir, &script).await;
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

    up.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_walkthrough_and_the_demo_share_one_cast() {
    let script = walkthrough_script();
    let mut user = None;
    let mut checked = 0;
    for line in script.lines() {
        if let Some(rest) = line.strip_prefix("ccp login --dev ") {
            user = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("ccp profile create ") {
            let words = shell_words(rest);
            let user = user.clone().expect("a profile is created after a login");
            let actor = ccp::demo::CAST
                .iter()
                .find(|a| a.user == user)
                .unwrap_or_else(|| panic!("{user} of the walkthrough is not in the demo's cast"));
            assert_eq!(words[1], actor.legal_name, "{user}'s legal name");
            assert_eq!(words[3], actor.email, "{user}'s e-mail");
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "alice, erin, ivan and ida");
}

/// Splits `--legal-name "Ida Marchetti" --email x` into its four words.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (word, tail) = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.split_once('"').unwrap()
        } else {
            rest.split_once(' ').unwrap_or((rest, ""))
        };
        words.push(word.to_owned());
        rest = tail.trim_start();
    }
    words
}

#[tokio::test]
async fn the_walkthrough_is_for_a_fresh_suite_and_stops_at_its_first_profile_on_the_demo() {
    // The README's rule: run the walkthrough on plain `ccp up`; on `ccp up
    // --demo` the cast is already signed up and it stops where it says.
    let dir = checkout_like();
    let up = Up::start(&dir, true).await;
    let output = run_walkthrough(&dir, &walkthrough_script()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stdout}\n{stderr}");
    assert!(stderr.contains("ALREADY_EXISTS"), "{stderr}");
    assert!(stdout.contains("signed in as"), "{stdout}");
    assert!(
        !stdout.contains("registered; you are its Business Account Manager"),
        "{stdout}"
    );
    up.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
