//! `ccp serve notifications` run as an operator would: refused with the setting named, and
//! nothing written, without a database or without anywhere to send mail; with both it migrates
//! its ledger, creates its mail directory, says it is consuming, and stops on SIGTERM. (The
//! distributed stories in `tests/` run it against the other services and read its mail.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

fn serve(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ccp"));
    command
        .args(["serve", "notifications"])
        .current_dir(dir)
        .env("CCP_ENVIRONMENT", "test")
        .env("CCP_TELEMETRY__LOG_FILTER", "warn")
        .env("CCP_TELEMETRY__METRICS_LISTEN", "")
        .env("CCP_NOTIFICATIONS__SERVER__LISTEN", "127.0.0.1:0")
        .env_remove("CCP_REDIS__URL")
        .env_remove("CCP_NOTIFICATIONS__DATABASE__URL")
        .env_remove("CCP_NOTIFICATIONS__MAIL_DIR")
        .env_remove("CCP_NOTIFICATIONS__SMTP_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

#[tokio::test]
async fn without_a_database_or_a_mail_destination_it_is_refused_and_writes_nothing() {
    let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let db = dir.path().join("notifications.sqlite");
    let mail = dir.path().join("mail");

    let out = timeout(
        Duration::from_secs(60),
        serve(dir.path())
            .env("CCP_NOTIFICATIONS__MAIL_DIR", &mail)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notifications.database.url")
            && stderr.contains("CCP_NOTIFICATIONS__DATABASE__URL"),
        "{stderr}"
    );

    let out = timeout(
        Duration::from_secs(60),
        serve(dir.path())
            .env("CCP_NOTIFICATIONS__DATABASE__URL", sqlite_url(&db))
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notifications.mail_dir") && stderr.contains("notifications.smtp_url"),
        "{stderr}"
    );
    assert!(!db.exists(), "no ledger was created");
    assert!(!mail.exists(), "no mail directory was created");
}

#[tokio::test]
async fn it_migrates_its_ledger_says_it_consumes_and_stops_on_sigterm() {
    let dir = ccp_platform::testing::tempfile_dir::TempDir::new();
    let db = dir.path().join("notifications.sqlite");
    let mail = dir.path().join("mail");
    let mut child = serve(dir.path())
        .env("CCP_NOTIFICATIONS__DATABASE__URL", sqlite_url(&db))
        .env("CCP_NOTIFICATIONS__MAIL_DIR", &mail)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("notifications consuming ") {
                return true;
            }
        }
        false
    })
    .await
    .expect("it said it was consuming within 60 s");
    assert!(ready, "ccp serve notifications ended before consuming");
    assert!(db.is_file(), "its ledger was migrated");
    assert!(mail.is_dir(), "its mail directory was created");

    let pid = child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("it stopped within 20 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}
