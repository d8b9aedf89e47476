//! Stories 4–5: a broker's relationship request waits for the client's
//! registration; a broker employee acts through a client group.

use std::time::Duration;

use serde_json::Value;

use crate::World;

use super::{
    ABC, ABC_REG, ITN, ITN_REG, MAPLE, allowed, cast, demo, denied, import_registry, instant,
    items, newcomer, register, strings, text,
};

// ---------------------------------------------------------------------------
// Story 4

/// ITN sends ABC a relationship request before ABC registers; once Alice
/// registers ABC it is among ABC's received requests; she approves it at
/// program level on RM0001 for 90 days, ITN seeing what it submitted and
/// what ABC submitted.
pub async fn story_4_the_broker_request_waits_for_registration_and_is_approved(world: &World) {
    import_registry(world).await;
    newcomer(world, "ivan", "Ivan Novak").await;
    register(world, "ivan", &ITN_REG).await;
    let note = "ITN Logistics - Customs Services asks to act as your customs broker";
    let sent = world
        .ok(
            "ivan",
            &["relationship", "request", ITN, ABC, "--note", note],
        )
        .await;
    assert_eq!(
        text(&sent, "/request/state"),
        "RELATIONSHIP_REQUEST_STATE_PENDING",
        "{sent}"
    );
    assert_eq!(
        text(&sent, "/request/visibleTime"),
        "",
        "ABC cannot see it yet: {sent}"
    );
    let id = text(&sent, "/request/id");

    newcomer(world, "alice", "Alice Martin").await;
    let registered = register(world, "alice", &ABC_REG).await;
    let register_time = instant(&registered, "/business/registerTime");

    // Delegation learns of the registration from accounts' events: wait
    // (bounded) for the request to be listed.
    let mut received = None;
    for _ in 0..150 {
        let list = items(&world.ok("alice", &["relationship", "received", ABC]).await);
        if let Some(found) = list.into_iter().find(|r| text(r, "/id") == id) {
            received = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let received = received.expect("ITN's request reaches ABC's received requests");
    assert_eq!(text(&received, "/provider"), ITN);
    assert_eq!(text(&received, "/note"), note);
    assert_eq!(
        text(&received, "/state"),
        "RELATIONSHIP_REQUEST_STATE_PENDING"
    );
    assert!(instant(&received, "/createTime") <= register_time);
    assert!(instant(&received, "/visibleTime") >= register_time);
    let name = text(&received, "/name");
    assert_eq!(name, format!("businesses/{ABC}/receivedRequests/{id}"));

    let relationship = approve_itn(world, &name).await;
    let revision = text(&relationship, "/revision");

    let sent = items(&world.ok("ivan", &["relationship", "sent", ITN]).await);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        text(&sent[0], "/state"),
        "RELATIONSHIP_REQUEST_STATE_APPROVED"
    );
    let provider_side = items(
        &world
            .ok(
                "ivan",
                &[
                    "relationship",
                    "list",
                    ITN,
                    "--side",
                    "provider",
                    "--state",
                    "active",
                ],
            )
            .await,
    );
    assert_eq!(provider_side.len(), 1, "{provider_side:?}");
    assert_eq!(text(&provider_side[0], "/client"), ABC);

    // ITN's BAM counts as assigned to every client as Editor (R-AZ-2).
    let rev = revision.as_str();
    allowed(
        world,
        "ivan",
        &["edit", "123456782RM0001", "--revision", rev],
    )
    .await;
    allowed(
        world,
        "ivan",
        &[
            "view",
            "123456782RM0001",
            "--submitted-by",
            ABC,
            "--revision",
            rev,
        ],
    )
    .await;
    denied(
        world,
        "ivan",
        &[
            "view",
            "123456782RM0001",
            "--submitted-by",
            MAPLE,
            "--revision",
            rev,
        ],
    )
    .await;
    denied(
        world,
        "ivan",
        &["view", "123456782RM0002", "--revision", rev],
    )
    .await;
    denied(world, "ivan", &["manage", ABC, "--revision", rev]).await;
}

/// Alice approves ITN's request `name` at program level on RM0001, expiring
/// in 90 days, visibility provider + client; returns the approval's JSON.
pub async fn approve_itn(world: &World, name: &str) -> Value {
    let approved = world
        .ok(
            "alice",
            &[
                "relationship",
                "approve",
                name,
                "--level",
                "program",
                "--program",
                "RM0001",
                "--expires",
                "90d",
                "--visibility",
                "provider,client",
            ],
        )
        .await;
    let rel = approved
        .pointer("/relationship")
        .cloned()
        .unwrap_or_default();
    assert_eq!(text(&rel, "/provider"), ITN, "{approved}");
    assert_eq!(text(&rel, "/client"), ABC);
    assert_eq!(text(&rel, "/level"), "RELATIONSHIP_LEVEL_PROGRAM");
    assert_eq!(strings(&rel, "/programAccounts"), ["123456782RM0001"]);
    let mut visibility = strings(&rel, "/visibility");
    visibility.sort();
    assert_eq!(
        visibility,
        [
            "VISIBILITY_SUBMITTED_BY_CLIENT",
            "VISIBILITY_SUBMITTED_BY_PROVIDER"
        ]
    );
    assert_eq!(text(&rel, "/state"), "RELATIONSHIP_STATE_ACTIVE");
    let expires = instant(&rel, "/expireTime");
    let wanted = world.now() + chrono::Duration::days(90);
    assert!(
        (expires - wanted).num_minutes().abs() <= 5,
        "expires in 90 days: {expires} vs {wanted}"
    );
    assert_eq!(
        text(&approved, "/request/state"),
        "RELATIONSHIP_REQUEST_STATE_APPROVED"
    );
    approved
}

/// From the demo: Alice approves ITN's pending request (story 4's approval);
/// returns the approval's JSON.
pub(super) async fn demo_with_itn_approved(world: &World) -> Value {
    demo(world).await;
    cast(world, "alice").await;
    let received = items(
        &world
            .ok(
                "alice",
                &["relationship", "received", ABC, "--state", "pending"],
            )
            .await,
    );
    let itn = received
        .iter()
        .find(|r| text(r, "/provider") == ITN)
        .unwrap_or_else(|| panic!("ITN's request is pending: {received:?}"));
    approve_itn(world, &text(itn, "/name")).await
}

// ---------------------------------------------------------------------------
// Story 5

/// Ivan puts Ida in a client group holding ABC; Ida may see RM0001
/// transactions submitted by ITN and by ABC, not another business's, and
/// nothing on RM0002.
pub async fn story_5_broker_employee_through_a_client_group(world: &World) {
    demo_with_itn_approved(world).await;
    story_5_steps(world).await;
}

/// Story 5's steps after ITN's approval; returns Ida's principal and the
/// assignment's revision.
pub(super) async fn story_5_steps(world: &World) -> (String, String) {
    cast(world, "ivan").await;
    let ida = cast(world, "ida").await;
    // Before any assignment Ida has nothing at ABC.
    denied(
        world,
        "ida",
        &["view", "123456782RM0001", "--submitted-by", ITN],
    )
    .await;

    let group = world
        .ok(
            "ivan",
            &[
                "client-group",
                "create",
                ITN,
                "--name",
                "Ontario importers",
                "--client",
                ABC,
            ],
        )
        .await;
    let group_name = text(&group, "/group/name");
    assert!(
        group_name.starts_with(&format!("businesses/{ITN}/clientGroups/")),
        "{group}"
    );
    assert_eq!(strings(&group, "/group/clients"), [ABC]);
    let assigned = world
        .ok(
            "ivan",
            &[
                "assignment",
                "create",
                ITN,
                "--member",
                &ida,
                "--client-group",
                &group_name,
                "--role",
                "editor",
            ],
        )
        .await;
    assert_eq!(text(&assigned, "/assignment/assignee"), ida, "{assigned}");
    assert_eq!(text(&assigned, "/assignment/clientGroup"), group_name);
    let listed = items(
        &world
            .ok("ivan", &["assignment", "list", ITN, "--member", &ida])
            .await,
    );
    assert_eq!(listed.len(), 1, "{listed:?}");
    let revision = text(&assigned, "/revision");
    let rev = revision.as_str();

    let by_itn = allowed(
        world,
        "ida",
        &[
            "view",
            "123456782RM0001",
            "--submitted-by",
            ITN,
            "--revision",
            rev,
        ],
    )
    .await;
    assert_eq!(
        text(&by_itn, "/allowReason"),
        "ALLOW_REASON_PROVIDER_RELATIONSHIP"
    );
    allowed(
        world,
        "ida",
        &[
            "edit",
            "123456782RM0001",
            "--submitted-by",
            ITN,
            "--revision",
            rev,
        ],
    )
    .await;
    allowed(
        world,
        "ida",
        &[
            "view",
            "123456782RM0001",
            "--submitted-by",
            ABC,
            "--revision",
            rev,
        ],
    )
    .await;
    allowed(
        world,
        "ida",
        &["edit", "123456782RM0001", "--revision", rev],
    )
    .await;
    let other = denied(
        world,
        "ida",
        &[
            "view",
            "123456782RM0001",
            "--submitted-by",
            MAPLE,
            "--revision",
            rev,
        ],
    )
    .await;
    assert_eq!(text(&other, "/denyReason"), "DENY_REASON_VISIBILITY");
    let doors = denied(
        world,
        "ida",
        &["view", "123456782RM0002", "--revision", rev],
    )
    .await;
    assert_eq!(
        text(&doors, "/denyReason"),
        "DENY_REASON_PROGRAM_NOT_COVERED"
    );
    denied(
        world,
        "ida",
        &[
            "view",
            "123456782RM0002",
            "--submitted-by",
            ITN,
            "--revision",
            rev,
        ],
    )
    .await;
    denied(
        world,
        "ida",
        &["manage", "123456782RM0001", "--revision", rev],
    )
    .await;
    (ida, revision)
}
