//! A newcomer's second terminal: `ccp up` records where its data directory
//! and endpoints are in the per-user state file (`CCP_STATE_DIR` here), and
//! `ccp login --dev` and `ccp dev-token` run from any other directory use the
//! running suite's development issuer key from there — never a key of their
//! own. With no suite running they fail, saying so and how to fix it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

/// Runs `ccp <args>` in `cwd` with the state directory `state` and nothing
/// else that would locate a suite; returns (exit code, stdout, stderr).
async fn ccp(cwd: &Path, state: &Path, args: &[&str]) -> (i32, String, String) {
    let output = timeout(
        Duration::from_secs(60),
        Command::new(env!("CARGO_BIN_EXE_ccp"))
            .args(args)
            .current_dir(cwd)
            .env("CCP_STATE_DIR", state)
            .env("CCP_SESSION", cwd.join("session.json"))
            .env_remove("CCP_DATA_DIR")
            .env_remove("CCP_GATEWAY_URL")
            .env_remove("CCP_IDENTITY__DEV_ISSUER__KEY")
            .env_remove("CCP_IDENTITY__DATA_DIR")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("ccp finished within 60 s")
    .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that the command failed for want of a suite and said how to fix it.
fn assert_no_suite(what: &str, (code, out, err): &(i32, String, String)) {
    assert_ne!(*code, 0, "{what} succeeded without a suite: {out}");
    assert!(err.contains("no running suite found"), "{what}: {err}");
    assert!(err.contains("ccp up"), "{what}: {err}");
    assert!(err.contains("--data-dir"), "{what}: {err}");
}

/// Returns every file under `dir` whose name is `dev-issuer.key`.
fn issuer_keys(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == "dev-issuer.key") {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn login_dev_and_dev_token_find_the_running_suite_from_another_directory() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("suite-data");
    let state = root.path().join("state");
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();

    // No suite yet: both commands fail, say so and how, and make no key.
    assert_no_suite(
        "dev-token",
        &ccp(&elsewhere, &state, &["dev-token", "alice"]).await,
    );
    assert_no_suite(
        "login --dev",
        &ccp(&elsewhere, &state, &["login", "--dev", "alice"]).await,
    );
    let (code, _, err) = ccp(
        &elsewhere,
        &state,
        &["dev-token", "alice", "--data-dir", "not-a-suite"],
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("no development issuer key"), "{err}");
    assert!(issuer_keys(root.path()).is_empty(), "a client made a key");

    let mut up = Command::new(env!("CARGO_BIN_EXE_ccp"))
        .arg("up")
        .arg("--data-dir")
        .arg(&data)
        .current_dir(root.path())
        .env("CCP_STATE_DIR", &state)
        .env("CCP_GATEWAY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_IDENTITY__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_ACCOUNTS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_DELEGATION__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_NOTIFICATIONS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CCP_TELEMETRY__LOG_FILTER", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let mut gateway = None;
    timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let ["gateway", url, ..] = line.split_whitespace().collect::<Vec<_>>()[..] {
                gateway = Some(url.to_owned());
            }
            if line.starts_with("Press Ctrl-C") {
                return;
            }
        }
        panic!("ccp up ended before it was ready");
    })
    .await
    .expect("ccp up was ready within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let state_file = state.join("suite.json");
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(recorded["gateway"].as_str(), gateway.as_deref());
    assert_eq!(
        Path::new(recorded["data_dir"].as_str().unwrap()),
        data.as_path()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&state_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the state file is its owner's only");
    }

    // From another directory, with no flag: the running suite's key and gateway.
    let (code, token, err) = ccp(&elsewhere, &state, &["dev-token", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    let (code, out, err) = ccp(&elsewhere, &state, &["login", "--dev", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("signed in as"), "{out}");
    let (code, out, err) = ccp(&elsewhere, &state, &["whoami"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("person:"), "{out}");
    assert_eq!(
        issuer_keys(root.path()),
        vec![data.join("dev-issuer.key")],
        "the only key is the suite's"
    );

    // Ctrl-C: the suite stops and forgets its state; the clients then fail again.
    let pid = up.id().expect("running");
    let status = std::process::Command::new("kill")
        .arg("-INT")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = timeout(Duration::from_secs(30), up.wait())
        .await
        .expect("ccp up stopped within 30 s")
        .unwrap();
    assert!(exit.success(), "ccp up exited with {exit}");
    assert!(!state_file.exists(), "ccp up removes its state file");
    assert_no_suite(
        "dev-token after stop",
        &ccp(&elsewhere, &state, &["dev-token", "alice"]).await,
    );
    assert_no_suite(
        "login --dev after stop",
        &ccp(&elsewhere, &state, &["login", "--dev", "alice"]).await,
    );
    assert!(!elsewhere.join(".ccp").exists(), "no data directory made");
}
