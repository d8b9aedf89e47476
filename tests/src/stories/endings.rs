//! Stories 6–8: an expired user sees only its own submissions, a client
//! ends a relationship early, an orphan user.

use std::time::Duration;

use serde_json::Value;

use crate::{Mode, World};

use super::brokers::{demo_with_itn_approved, story_5_steps};
use super::{
    ABC, DENY, ITN, MAPLE, MAPLE_REG, NORTHERN, NORTHERN_REG, PERMISSION_DENIED, UNAUTHENTICATED,
    allowed, ask, cast, demo, denied, instant, items, newcomer, register, text,
};

// ---------------------------------------------------------------------------
// Story 6

/// The relationship expires (the settable clock moves past it in the
/// embedded run; a short real expiry in the distributed run): Ida, now an
/// Expired user, may still view what ITN submitted, nothing else.
pub async fn story_6_expired_user_sees_only_its_own_submissions(world: &World) {
    let approved = demo_with_itn_approved(world).await;
    story_5_steps(world).await;
    let relationship = text(&approved, "/relationship/name");

    match world.mode() {
        Mode::Embedded => {
            world.advance(chrono::Duration::days(91)).unwrap();
            // The sessions have expired with the time.
            world
                .fails(
                    UNAUTHENTICATED,
                    "ida",
                    &["check", "view", "123456782RM0001", "--submitted-by", ITN],
                )
                .await;
            for user in ["ida", "alice"] {
                cast(world, user).await;
            }
        }
        Mode::Distributed => {
            let updated = world
                .ok(
                    "alice",
                    &["relationship", "update", &relationship, "--expires", "8s"],
                )
                .await;
            let expires = instant(&updated, "/relationship/expireTime");
            assert!(expires > world.now() - chrono::Duration::seconds(8));
            // Wait (bounded) until the expiry instant has passed.
            let mut ended = false;
            for _ in 0..120 {
                let out = world
                    .ccp(
                        "ida",
                        &["check", "view", "123456782RM0001", "--submitted-by", ABC],
                    )
                    .await
                    .unwrap();
                if out.code == DENY && chrono::Utc::now() > expires {
                    ended = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            assert!(ended, "the relationship ended at its expiry instant");
        }
    }

    let shown = world
        .ok("alice", &["relationship", "show", &relationship])
        .await;
    assert_eq!(
        text(&shown, "/state"),
        "RELATIONSHIP_STATE_ENDED",
        "{shown}"
    );
    assert_eq!(text(&shown, "/endReason"), "END_REASON_EXPIRED", "{shown}");
    let active = items(
        &world
            .ok(
                "alice",
                &[
                    "relationship",
                    "list",
                    ABC,
                    "--side",
                    "client",
                    "--state",
                    "active",
                ],
            )
            .await,
    );
    assert!(active.is_empty(), "{active:?}");

    let own = allowed(
        world,
        "ida",
        &["view", "123456782RM0001", "--submitted-by", ITN],
    )
    .await;
    assert_eq!(
        text(&own, "/allowReason"),
        "ALLOW_REASON_EXPIRED_USER_OWN_SUBMISSION"
    );
    let by_abc = denied(
        world,
        "ida",
        &["view", "123456782RM0001", "--submitted-by", ABC],
    )
    .await;
    assert_eq!(
        text(&by_abc, "/denyReason"),
        "DENY_REASON_RELATIONSHIP_ENDED"
    );
    denied(
        world,
        "ida",
        &["edit", "123456782RM0001", "--submitted-by", ITN],
    )
    .await;
    denied(world, "ida", &["edit", "123456782RM0001"]).await;
    denied(world, "ida", &["view", "123456782RM0001"]).await;
    denied(world, "ida", &["view", ABC]).await;
    // Its own business is untouched.
    allowed(world, "ida", &["edit", "888316171RM0001"]).await;
}

// ---------------------------------------------------------------------------
// Story 7

/// ABC has a second provider, Northern Lights; Bob (ABC's second BAM) ends
/// that relationship early with a reason; the reason and Bob show in ABC's
/// and in Northern Lights' audit history; ITN's relationship is untouched.
pub async fn story_7_the_client_ends_a_relationship_early(world: &World) {
    demo_with_itn_approved(world).await;
    newcomer(world, "nora", "Nora Blake").await;
    register(world, "nora", &NORTHERN_REG).await;
    world
        .ok(
            "nora",
            &[
                "relationship",
                "request",
                NORTHERN,
                ABC,
                "--note",
                "Northern Lights asks to file for you",
            ],
        )
        .await;
    let received = items(
        &world
            .ok(
                "alice",
                &["relationship", "received", ABC, "--state", "pending"],
            )
            .await,
    );
    let northern = received
        .iter()
        .find(|r| text(r, "/provider") == NORTHERN)
        .unwrap_or_else(|| panic!("Northern Lights' request is pending: {received:?}"));
    let approved = world
        .ok(
            "alice",
            &[
                "relationship",
                "approve",
                &text(northern, "/name"),
                "--level",
                "business",
                "--expires",
                "180d",
                "--visibility",
                "provider",
            ],
        )
        .await;
    let relationship = text(&approved, "/relationship/name");
    assert_eq!(
        text(&approved, "/relationship/level"),
        "RELATIONSHIP_LEVEL_BUSINESS"
    );
    let revision = text(&approved, "/revision");
    allowed(
        world,
        "nora",
        &["edit", "123456782RM0002", "--revision", &revision],
    )
    .await;

    let bob = cast(world, "bob").await;
    let reason = "We consolidated our customs filings with ITN Logistics";
    let ended = world
        .ok(
            "bob",
            &["relationship", "end", &relationship, "--reason", reason],
        )
        .await;
    let rel = ended.pointer("/relationship").cloned().unwrap_or_default();
    assert_eq!(text(&rel, "/state"), "RELATIONSHIP_STATE_ENDED", "{ended}");
    assert_eq!(text(&rel, "/endReason"), "END_REASON_ENDED_BY_CLIENT");
    assert_eq!(text(&rel, "/endedBy"), bob);
    assert_eq!(text(&rel, "/endNote"), reason);
    let revision = text(&ended, "/revision");
    let gone = denied(
        world,
        "nora",
        &["edit", "123456782RM0002", "--revision", &revision],
    )
    .await;
    assert_eq!(text(&gone, "/denyReason"), "DENY_REASON_RELATIONSHIP_ENDED");
    // Ending it twice conflicts.
    world
        .fails(
            7,
            "alice",
            &["relationship", "end", &relationship, "--reason", "again"],
        )
        .await;

    // Both sides' audit history names the end, its reason and Bob.
    for (user, bn) in [("alice", ABC), ("nora", NORTHERN)] {
        let history = items(
            &world
                .ok(user, &["audit", "export", bn, "--format", "json"])
                .await,
        );
        let end = history
            .iter()
            .find(|e| text(e, "/action") == "delegation.relationship.end")
            .unwrap_or_else(|| panic!("{bn}'s audit history holds the end: {history:?}"));
        assert_eq!(text(end, "/actor"), bob, "{end}");
        assert_eq!(text(end, "/actingFor"), ABC, "{end}");
        let after = text(end, "/afterJson");
        assert!(after.contains("ENDED_BY_CLIENT"), "{after}");
        assert!(after.contains(reason), "{after}");
        // Merged by time across services: the registration precedes the end.
        let times: Vec<String> = history.iter().map(|e| text(e, "/time")).collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "{bn}'s history is ordered by time");
    }

    // ITN's relationship is still in force.
    cast(world, "ivan").await;
    allowed(world, "ivan", &["edit", "123456782RM0001"]).await;
}

// ---------------------------------------------------------------------------
// Story 8

/// Olga has a profile and no business: every business resource is refused
/// to her; she may still edit her profile, ask for access (and withdraw),
/// and register a business of her own (R-AZ-0).
pub async fn story_8_the_orphan_user(world: &World) {
    demo(world).await;
    let olga = newcomer(world, "olga", "Olga Petrova").await;

    for args in [
        vec!["business", "show", ABC],
        vec!["business", "programs", ABC],
        vec!["employee", "requests", ABC],
        vec!["employee", "list", ABC],
        vec!["group", "list", ABC],
        vec!["relationship", "received", ABC],
        vec!["relationship", "list", ITN],
        vec!["client-group", "list", ITN],
        vec!["assignment", "list", ITN],
        vec!["credential", "list", ABC],
        vec!["audit", "export", ABC, "--format", "json"],
    ] {
        world.fails(PERMISSION_DENIED, "olga", &args).await;
    }
    world
        .fails(
            PERMISSION_DENIED,
            "olga",
            &["relationship", "request", ITN, ABC, "--note", "let me in"],
        )
        .await;
    for resource in [ABC, "123456782RM0001", ITN, "888316171RM0001"] {
        for action in ["view", "edit", "manage"] {
            let answer = denied(world, "olga", &[action, resource]).await;
            assert_eq!(
                text(&answer, "/denyReason"),
                "DENY_REASON_NOT_A_MEMBER",
                "{action} {resource}: {answer}"
            );
        }
    }
    assert!(items(&world.ok("olga", &["accessible", "view"]).await).is_empty());
    assert!(items(&world.ok("olga", &["business", "list"]).await).is_empty());

    // Self-service is hers (R-AZ-0).
    let updated = world
        .ok(
            "olga",
            &[
                "profile",
                "update",
                "--phone",
                "+1 416 555 0199",
                "--preferred-language",
                "fr",
            ],
        )
        .await;
    assert_eq!(
        text(&updated, "/profile/phone"),
        "+1 416 555 0199",
        "{updated}"
    );
    let profile = world.ok("olga", &["profile", "show"]).await;
    assert_eq!(text(&profile, "/principal"), olga);
    assert_eq!(text(&profile, "/preferredLanguage"), "LANGUAGE_FR");
    let request = ask(
        world,
        "olga",
        ABC,
        "Hi, I need access to view the monthly payables",
    )
    .await;
    let withdrawn = world.ok("olga", &["employee", "withdraw", &request]).await;
    assert_eq!(
        text(&withdrawn, "/request/state"),
        "EMPLOYEE_REQUEST_STATE_WITHDRAWN"
    );
    let registered = register(world, "olga", &MAPLE_REG).await;
    assert_eq!(
        registered.pointer("/business/singleBusinessManager"),
        Some(&Value::Bool(true))
    );
    let revision = text(&registered, "/revision");
    allowed(world, "olga", &["manage", MAPLE, "--revision", &revision]).await;
    denied(world, "olga", &["view", ABC]).await;
}
