//! Notifications from a relationship request to its 30/7/1-day reminders and its expiry
//! (issue 20), in both worlds: the clock moves (the embedded settable clock, or the clock file
//! every distributed process follows) to each threshold, delegation's sweep emits the
//! reminder, and the notifier writes each person's e-mail as an `.eml` file, read back here.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;

const ALICE: &str = "alice.martin@abcwindows.example";
const IVAN: &str = "ivan.novak@itnlogistics.example";
const IDA: &str = "ida.park@itnlogistics.example";

/// Asserts that `address` received exactly the messages with `subjects` (each once), in
/// `language`, each with one Message-ID, addressed to `name` and greeting them.
fn exactly(world: &World, address: &str, name: &str, language: &str, subjects: &[String]) {
    let mails = world.mail_for(address).unwrap();
    let mut got: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = subjects.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "{address}'s messages");
    let greeting = if language == "fr" { "Bonjour" } else { "Hello" };
    for mail in &mails {
        assert_eq!(mail.recipients, [address], "{mail:?}");
        assert_eq!(mail.to_name, name, "{mail:?}");
        assert_eq!(mail.language, language, "{mail:?}");
        assert!(
            mail.message_id().starts_with('<') && mail.message_id().ends_with("@ccp.localhost>"),
            "one Message-ID per message: {mail:?}"
        );
        assert!(
            mail.body.contains(&format!("{greeting} {name}")),
            "{}",
            mail.body
        );
    }
}

/// ITN (Ivan, its BAM, English) asks to act for ABC (Alice, its BAM, French); Alice approves
/// it for 90 days; Ida, ITN's employee, is assigned to ABC. At 30, 7 and 1 days before the
/// expiry Alice, Ivan and Ida each get the reminder in their language; past the expiry Alice
/// and Ivan get the relationship-expired notice. Each person's messages are exactly those, once
/// each, with one Message-ID per (event, person).
pub async fn notice_a_relationship_from_request_to_reminders_to_expiry(world: &World) {
    import_registry(world).await;
    opted_in(world, "ivan", "Ivan Novak", IVAN, "en").await;
    register(world, "ivan", &ITN_REG).await;
    opted_in(world, "alice", "Alice Martin", ALICE, "fr").await;
    register(world, "alice", &ABC_REG).await;

    // Ida joins ITN and is assigned to ABC.
    let ida = opted_in(world, "ida", "Ida Park", IDA, "en").await;
    let request = ask(world, "ida", ITN, "I prepare ITN's customs declarations").await;
    world
        .ok(
            "ivan",
            &["employee", "approve", &request, "--grant", "editor:RM0001"],
        )
        .await;

    world
        .ok(
            "ivan",
            &["relationship", "request", ITN, ABC, "--note", "Bonjour"],
        )
        .await;
    // Bounded wait: the request reaches ABC once delegation has recorded it.
    let mut pending = Vec::new();
    for _ in 0..150 {
        pending = items(
            &world
                .ok(
                    "alice",
                    &["relationship", "received", ABC, "--state", "pending"],
                )
                .await,
        );
        if !pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pending.len(), 1, "{pending:?}");
    let approved = super::approve_itn(world, &text(&pending[0], "/name")).await;
    let expires = instant(&approved, "/relationship/expireTime");
    let assigned = world
        .ok(
            "ivan",
            &[
                "assignment",
                "create",
                ITN,
                "--member",
                &ida,
                "--client",
                ABC,
                "--role",
                "editor",
            ],
        )
        .await;
    assert_eq!(text(&assigned, "/assignment/assignee"), ida, "{assigned}");

    let (itn, abc) = ("ITN Logistics Inc.", "ABC Windows & Doors Inc.");
    let mut alice = vec![
        format!("{itn} demande à agir pour {abc}"),
        format!("{abc} a approuvé la demande de {itn}"),
    ];
    let mut ivan = vec![
        format!("Ida Park asks to join {itn}"),
        format!("{abc} approved the request of {itn}"),
    ];
    let mut ida_got = vec![format!("You have joined {itn}")];
    mail_counts(world, &[(ALICE, 2), (IVAN, 2), (IDA, 1)]).await;

    for (days, fr, en) in [
        (30, "dans 30 jours", "in 30 days"),
        (7, "dans 7 jours", "in 7 days"),
        (1, "demain", "tomorrow"),
    ] {
        world
            .advance_to(expires - chrono::Duration::days(days))
            .unwrap();
        alice.push(format!("La relation entre {itn} et {abc} expire {fr}"));
        ivan.push(format!(
            "The relationship between {itn} and {abc} expires {en}"
        ));
        ida_got.push(format!(
            "The relationship between {itn} and {abc} expires {en}"
        ));
        mail_counts(
            world,
            &[
                (ALICE, alice.len()),
                (IVAN, ivan.len()),
                (IDA, ida_got.len()),
            ],
        )
        .await;
    }

    world
        .advance_to(expires + chrono::Duration::seconds(1))
        .unwrap();
    alice.push(format!("La relation entre {itn} et {abc} a expiré"));
    ivan.push(format!(
        "The relationship between {itn} and {abc} has expired"
    ));
    mail_counts(world, &[(ALICE, alice.len()), (IVAN, ivan.len())]).await;

    exactly(world, ALICE, "Alice Martin", "fr", &alice);
    exactly(world, IVAN, "Ivan Novak", "en", &ivan);
    exactly(world, IDA, "Ida Park", "en", &ida_got);
    let everything = world.all_mail().unwrap();
    assert_eq!(
        everything.len(),
        alice.len() + ivan.len() + ida_got.len(),
        "nobody else got mail: {:?}",
        everything
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
    let ids: BTreeSet<&str> = everything.iter().map(Mail::message_id).collect();
    assert_eq!(
        ids.len(),
        everything.len(),
        "one Message-ID per (event, person)"
    );
    // The reminders name the expiry date.
    let date = expires.format("%Y-%m-%d").to_string();
    let reminders = everything
        .iter()
        .filter(|m| m.subject.contains(" expire"))
        .filter(|m| !m.subject.contains("expired") && !m.subject.contains("expiré"));
    for mail in reminders {
        assert!(mail.body.contains(&date), "{date} in {}", mail.body);
    }
}
