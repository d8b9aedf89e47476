//! Notifications (issue 20, its first notice): a broker's relationship request to a registered
//! client reaches the client's manager as an e-mail (an `.eml` file in the world's mail
//! directory) in the manager's language, through the real identity, accounts and delegation
//! (in one process, or `ccp serve` processes and `ccp serve notifications`).

use super::*;

const ALICE: &str = "alice.martin@abcwindows.example";

/// ITN asks to act for ABC; ABC's manager (French, opted in) gets one e-mail in French; ITN's
/// manager gets none.
pub async fn notice_relationship_request_reaches_the_clients_manager(world: &World) {
    import_registry(world).await;
    newcomer(world, "ivan", "Ivan Novak").await;
    register(world, "ivan", &ITN_REG).await;
    let alice = opted_in(world, "alice", "Alice Martin", ALICE, "fr").await;
    register(world, "alice", &ABC_REG).await;
    world
        .ok(
            "ivan",
            &["relationship", "request", ITN, ABC, "--note", "Bonjour"],
        )
        .await;

    // Bounded wait for the notifier (it follows delegation's events).
    mail_counts(world, &[(ALICE, 1)]).await;
    let all = world.all_mail().unwrap();
    assert_eq!(all.len(), 1, "one e-mail, to ABC's manager: {all:?}");
    let mail = &all[0];
    assert_eq!(mail.recipients, [ALICE], "{mail:?}");
    assert_eq!(mail.to_name, "Alice Martin", "{mail:?}");
    assert_eq!(mail.language, "fr", "{mail:?}");
    assert_eq!(mail.message_ids.len(), 1, "{mail:?}");
    assert!(!mail.message_ids[0].is_empty(), "{mail:?}");
    assert!(alice.starts_with("person:"), "{alice}");
}
