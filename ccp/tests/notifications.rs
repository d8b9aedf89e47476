//! `ccp mail` and `ccp notifications failed|retry` from the built `ccp`: the e-mails the real
//! `Mailer::files` wrote are listed oldest first (time, to, subject, Message-ID), as a table or
//! JSON, and one is shown decoded by its number or Message-ID; a failed notice kept by a
//! running notifications service (its operator API on a loopback port, SQLite) is listed, a
//! retry sends it (same Message-ID, then listed by `ccp mail`), and the API refuses a caller
//! without the deployment's internal key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use ccp_notifications::mail::{self, Mailer, Recipient};
use ccp_notifications::render::{Language, Rendered};
use ccp_notifications::{Application, NotificationsSettings, store};
use ccp_platform::config::DatabaseSettings;
use ccp_platform::context::{CommonSettings, ServiceContext};

/// Runs `ccp <args>` with `env` and no suite to find; returns (code, stdout, stderr).
fn ccp(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ccp"))
        .args(args)
        .current_dir(dir)
        .env("CCP_STATE_DIR", dir.join("state"))
        .env_remove("CCP_DATA_DIR")
        .env_remove("CCP_INTERNAL_AUTH__KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn notice(subject: &str, body: &str, language: Language) -> Rendered {
    Rendered {
        subject: subject.to_owned(),
        body: body.to_owned(),
        language,
    }
}

fn from() -> lettre::message::Mailbox {
    "CCP <noreply@ccp.test>".parse().unwrap()
}

#[tokio::test]
async fn ccp_mail_lists_the_eml_files_oldest_first_and_shows_one_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mailer = Mailer::files(&data.join("mail")).unwrap();
    // Written first, dated now: a notice as the notifier builds it (French, accented).
    let alice = Recipient {
        principal: "person:alice".into(),
        name: "Alice Tremblay".into(),
        email: "alice@client.example".into(),
    };
    let newer = mail::message_id("e1", "person:alice", "ccp.test");
    let message = mail::build(
        &from(),
        &alice,
        &notice(
            "Brokers demande à agir pour Importations Élan",
            "Bonjour Alice Tremblay,\n\nUne demande attend votre réponse.",
            Language::Fr,
        ),
        &newer,
    )
    .unwrap();
    mailer.send(message).await.unwrap();
    // Written second, dated a day earlier: listed first.
    let older = "<older@ccp.test>";
    let message = lettre::Message::builder()
        .message_id(Some(older.to_owned()))
        .date(std::time::SystemTime::now() - std::time::Duration::from_secs(86_400))
        .from(from())
        .to("Bob <bob@client.example>".parse().unwrap())
        .subject("Relationship approved")
        .body("Hello Bob,".to_owned())
        .unwrap();
    mailer.send(message).await.unwrap();
    // Not an e-mail file: left out.
    std::fs::write(data.join("mail").join("notes.txt"), "x").unwrap();

    let data_arg = data.to_str().unwrap();
    let (code, out, err) = ccp(dir.path(), &["mail", "--data-dir", data_arg, "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{out}");
    assert_eq!(list[0]["message_id"], older);
    assert_eq!(list[0]["to"], "Bob <bob@client.example>");
    assert_eq!(list[0]["subject"], "Relationship approved");
    assert_eq!(list[1]["number"], 2);
    assert_eq!(list[1]["message_id"], newer.as_str());
    assert_eq!(
        list[1]["subject"],
        "Brokers demande à agir pour Importations Élan"
    );
    assert!(
        list[0]["time"].as_str().unwrap() < list[1]["time"].as_str().unwrap(),
        "{out}"
    );

    let (code, out, err) = ccp(dir.path(), &["mail", "--data-dir", data_arg], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("#  TIME"), "{out}");
    let at = |text: &str| out.find(text).unwrap_or_else(|| panic!("{text} in {out}"));
    assert!(at("1  ") < at(older) && at(older) < at("2  "), "{out}");
    assert!(at("2  ") < at(&newer), "{out}");

    // By number and by Message-ID (brackets optional), the text decoded.
    for which in ["2", newer.trim_start_matches('<').trim_end_matches('>')] {
        let (code, out, err) = ccp(
            dir.path(),
            &["mail", "show", which, "--data-dir", data_arg],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("Subject: Brokers demande à agir pour Importations Élan\n"),
            "{out}"
        );
        assert!(out.contains(&format!("Message-ID: {newer}\n")), "{out}");
        assert!(out.contains("Content-Language: fr\n"), "{out}");
        assert!(out.contains("\n\nBonjour Alice Tremblay,\n"), "{out}");
    }
    let (code, _, err) = ccp(
        dir.path(),
        &["mail", "show", "3", "--data-dir", data_arg],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no e-mail number 3: there are 2"), "{err}");
    let (code, _, err) = ccp(
        dir.path(),
        &[
            "mail",
            "--data-dir",
            dir.path().join("nowhere").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no mail directory at"), "{err}");
}

// Multi-threaded: the service answers while the test waits for the `ccp` process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccp_notifications_lists_a_failed_notice_and_a_retry_sends_it_with_its_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = ccp_platform::auth::InternalTokens::generate_key();
    let mut common = CommonSettings::default();
    common.internal_auth.key = secrecy::SecretString::from(key.clone());
    let ctx = ServiceContext::from_settings(&common).await.unwrap();
    let mut settings = NotificationsSettings {
        database: DatabaseSettings::sqlite_file(&data.join("notifications.sqlite")),
        mail_dir: data.join("mail").to_string_lossy().into_owned(),
        ..NotificationsSettings::default()
    };
    settings.server.listen = "127.0.0.1:0".to_owned();
    std::fs::create_dir_all(&data).unwrap();
    let notifier = ccp_notifications::build(&ctx, &settings).await.unwrap();
    let app = Application::with_notifier(&ctx, &settings.server, notifier.clone())
        .await
        .unwrap();
    let endpoint = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // A notice the mail server refused for good, kept as built.
    let erin = Recipient {
        principal: "person:erin".into(),
        name: "Erin".into(),
        email: "erin@other.example".into(),
    };
    let id = mail::message_id("e2", "person:erin", "ccp.test");
    let built = mail::build(
        &from(),
        &erin,
        &notice("Request received", "Hello Erin,", Language::En),
        &id,
    )
    .unwrap();
    let now = chrono::Utc::now();
    store::record_dead_letter(
        notifier.db(),
        &store::DeadLetter {
            message_id: id.clone(),
            event_id: "e2".into(),
            recipient: "person:erin".into(),
            address: "erin@other.example".into(),
            notice: "relationship-request-received".into(),
            message: String::from_utf8(built.formatted()).unwrap(),
            error: "mail refused: 550 no such user".into(),
            attempts: 1,
            first_failed: now,
            last_failed: now,
        },
    )
    .await
    .unwrap();

    let with_key = [("CCP_INTERNAL_AUTH__KEY", key.as_str())];
    let (code, out, err) = ccp(
        dir.path(),
        &["notifications", "failed", "--endpoint", &endpoint, "--json"],
        &with_key,
    );
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(list[0]["messageId"], id.as_str());
    assert_eq!(list[0]["address"], "erin@other.example");
    assert_eq!(list[0]["subject"], "Request received");
    assert_eq!(list[0]["attempts"], "1");
    let (code, out, err) = ccp(
        dir.path(),
        &["notifications", "failed", "--endpoint", &endpoint],
        &with_key,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("SINCE"), "{out}");
    assert!(out.contains(&id) && out.contains("550"), "{out}");

    // Another deployment's key: refused, nothing listed.
    let other = ccp_platform::auth::InternalTokens::generate_key();
    let (code, _, err) = ccp(
        dir.path(),
        &["notifications", "failed", "--endpoint", &endpoint],
        &[("CCP_INTERNAL_AUTH__KEY", other.as_str())],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Unauthenticated"), "{err}");
    // Neither a Message-ID nor --all: a usage error.
    let (code, _, err) = ccp(dir.path(), &["notifications", "retry"], &with_key);
    assert_eq!(code, 2, "{err}");

    let bare = id.trim_start_matches('<').trim_end_matches('>');
    let (code, out, err) = ccp(
        dir.path(),
        &["notifications", "retry", bare, "--endpoint", &endpoint],
        &with_key,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{id} sent\n"));
    let (code, out, err) = ccp(
        dir.path(),
        &["mail", "--json", "--data-dir", data.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let mails: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(mails.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(mails[0]["message_id"], id.as_str());
    assert_eq!(mails[0]["to"], "Erin <erin@other.example>");

    // Sent and gone: a second retry finds nothing; --all has nothing to send.
    let (code, _, err) = ccp(
        dir.path(),
        &["notifications", "retry", &id, "--endpoint", &endpoint],
        &with_key,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no failed notice has Message-ID"), "{err}");
    let (code, out, err) = ccp(
        dir.path(),
        &["notifications", "retry", "--all", "--endpoint", &endpoint],
        &with_key,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "0 sent, 0 already sent before (nothing sent), 0 failed again\n"
    );
    assert!(store::was_sent(notifier.db(), &id).await.unwrap());

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
