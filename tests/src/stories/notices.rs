//! Notifications (issue 20, its first notice): a broker's relationship request to a registered
//! client reaches the client's manager as an e-mail (an `.eml` file in the world's mail
//! directory) in the manager's language, through the real identity, accounts and delegation
//! (in one process, or `ccp serve` processes and `ccp serve notifications`).

use std::time::Duration;

use super::*;

/// ITN asks to act for ABC; ABC's manager (French, opted in) gets one e-mail in French; ITN's
/// manager gets none.
pub async fn notice_relationship_request_reaches_the_clients_manager(world: &World) {
    let mail_dir = world.mail_dir().unwrap();
    import_registry(world).await;
    newcomer(world, "ivan", "Ivan Novak").await;
    register(world, "ivan", &ITN_REG).await;
    let session = world.login("alice").await;
    let alice = text(&session, "/principal");
    world
        .ok(
            "alice",
            &[
                "profile",
                "create",
                "--legal-name",
                "Alice Martin",
                "--email",
                "alice.martin@abcwindows.example",
                "--language",
                "fr",
                "--email-notifications",
            ],
        )
        .await;
    register(world, "alice", &ABC_REG).await;
    world
        .ok(
            "ivan",
            &["relationship", "request", ITN, ABC, "--note", "Bonjour"],
        )
        .await;

    // Bounded wait for the notifier (it follows delegation's events).
    let mut files = Vec::new();
    for _ in 0..150 {
        files = std::fs::read_dir(&mail_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if !files.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(files.len(), 1, "one e-mail, to ABC's manager: {files:?}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        raw.contains("To: \"Alice Martin\" <alice.martin@abcwindows.example>\r\n"),
        "{raw}"
    );
    assert!(raw.contains("Content-Language: fr\r\n"), "{raw}");
    assert!(raw.contains("Message-ID: <"), "{raw}");
    assert!(!raw.contains("ivan@example.ca"), "{raw}");
    assert!(alice.starts_with("person:"), "{alice}");
}
