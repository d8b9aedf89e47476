//! Stories 1–3: a first BAM registers ABC, employees ask for access and
//! are approved per program, a PAM approves for its program only.

use serde_json::Value;

use crate::World;

use super::{
    ABC, FAILED_PRECONDITION, INVALID_ARGUMENT, PERMISSION_DENIED, abc_registration, allowed, ask,
    cast, demo, denied, import_registry, items, my_pending_request, newcomer, number,
    terms_version, text,
};

// ---------------------------------------------------------------------------
// Story 1

/// Alice signs in for the first time, creates her profile and registers ABC
/// Windows & Doors with the registry's facts and the current T&C; Bob asks
/// for access and Alice makes him the second BAM.
pub async fn story_1_first_sign_in_profile_registration_and_a_second_bam(world: &World) {
    story_1_steps(world).await;
}

/// Story 1's steps, for later stories that start from them; returns
/// (alice's principal, bob's principal).
pub async fn story_1_steps(world: &World) -> (String, String) {
    import_registry(world).await;

    // First sign-in: the session may only create the profile (R-ID-2).
    let session = world.login("alice").await;
    assert_eq!(
        session.get("profileRequired"),
        Some(&Value::Bool(true)),
        "{session}"
    );
    let alice = text(&session, "/principal");
    world
        .fails(FAILED_PRECONDITION, "alice", &["business", "list"])
        .await;
    world
        .fails(
            INVALID_ARGUMENT,
            "alice",
            &[
                "profile",
                "create",
                "--legal-name",
                "Alice Martin",
                "--email",
                "not-an-email",
            ],
        )
        .await;
    let created = world
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
                "en",
                "--email-notifications",
            ],
        )
        .await;
    assert_eq!(text(&created, "/profile/principal"), alice, "{created}");
    let profile = world.ok("alice", &["profile", "show"]).await;
    assert_eq!(text(&profile, "/legalName"), "Alice Martin", "{profile}");
    assert_eq!(
        text(&profile, "/preferredLanguage"),
        "LANGUAGE_EN",
        "{profile}"
    );
    assert_eq!(
        items(&world.ok("alice", &["business", "list"]).await).len(),
        0
    );

    // The registration challenge: the registry's questions and the T&C version.
    let challenge = world
        .ok("alice", &["business", "challenge", "123456782RM0001"])
        .await;
    let mut ids: Vec<String> = challenge
        .pointer("/questions")
        .and_then(Value::as_array)
        .map(|qs| qs.iter().map(|q| text(q, "/id")).collect())
        .unwrap_or_default();
    ids.sort();
    assert_eq!(ids, ["daily_notice_total", "statement_date"], "{challenge}");
    let version = terms_version(world, "alice").await;
    assert_eq!(text(&challenge, "/termsVersion"), version, "{challenge}");

    // A wrong known fact is refused with the field named; nothing is written.
    let wrong = world
        .fails(
            INVALID_ARGUMENT,
            "alice",
            &abc_registration("9999.99", Some(&version))
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(text(&wrong, "/error/code"), "INVALID_ARGUMENT", "{wrong}");
    assert!(
        wrong
            .pointer("/error/fieldViolations")
            .and_then(Value::as_array)
            .is_some_and(|v| !v.is_empty()),
        "{wrong}"
    );

    // Without accepting the Terms & Conditions (and no terminal to ask on)
    // the registration is refused as a usage error (exit 2: the command line
    // lacks `--accept-terms`) and nothing is written.
    let unaccepted = world
        .ccp(
            "alice",
            &abc_registration("1234.56", None)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert!(
        unaccepted.code == 2,
        "exit {}: {}",
        unaccepted.code,
        unaccepted.stdout
    );
    assert!(
        unaccepted.json.pointer("/error").is_some(),
        "{}",
        unaccepted.stdout
    );
    assert_eq!(
        items(&world.ok("alice", &["business", "list"]).await).len(),
        0
    );

    // The registration with the right facts (case, spaces and the postal
    // code's spacing do not matter) and the current T&C.
    let registered = world
        .ok(
            "alice",
            &[
                "business",
                "register",
                "123456782RM0001",
                "--legal-name",
                "abc windows  & doors inc.",
                "--line1",
                "100 Queen Street West",
                "--line2",
                "Suite 200",
                "--city",
                "TORONTO",
                "--province",
                "ON",
                "--postal-code",
                "m5h2n2",
                "--answer",
                "daily_notice_total=$1,234.56",
                "--answer",
                "statement_date=2026-02-15",
                "--accept-terms",
                &version,
            ],
        )
        .await;
    let business = registered.pointer("/business").cloned().unwrap_or_default();
    assert_eq!(text(&business, "/bn9"), ABC, "{registered}");
    assert_eq!(text(&business, "/legalName"), "ABC Windows & Doors Inc.");
    assert_eq!(text(&business, "/acceptedTermsVersion"), version);
    assert!(
        !text(&business, "/termsAcceptTime").is_empty(),
        "{business}"
    );
    let programs: Vec<String> = business
        .pointer("/programAccounts")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(|p| text(p, "/bn15")).collect())
        .unwrap_or_default();
    assert_eq!(programs, ["123456782RM0001", "123456782RM0002"]);
    assert_eq!(number(&business, "/businessManagerCount"), 1);
    assert_eq!(
        business.get("singleBusinessManager"),
        Some(&Value::Bool(true)),
        "a single BAM is reported: {business}"
    );
    let mine = items(&world.ok("alice", &["business", "list"]).await);
    assert_eq!(mine.len(), 1);
    assert_eq!(text(&mine[0], "/business"), format!("businesses/{ABC}"));
    assert_eq!(mine[0].get("businessManager"), Some(&Value::Bool(true)));

    // A BN registers once.
    let bob = newcomer(world, "bob", "Bob Tremblay").await;
    let twice = world
        .ccp(
            "bob",
            &abc_registration("1234.56", Some(&version))
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert_eq!(
        twice.code, 7,
        "a second registration conflicts: {}",
        twice.stderr
    );

    // Bob asks for access; Alice makes him the second BAM.
    let request = ask(
        world,
        "bob",
        ABC,
        "Hi, I share the administration of our account",
    )
    .await;
    let approved = world
        .ok(
            "alice",
            &["employee", "approve", &request, "--grant", "bam"],
        )
        .await;
    assert_eq!(
        text(&approved, "/request/state"),
        "EMPLOYEE_REQUEST_STATE_APPROVED",
        "{approved}"
    );
    assert_eq!(text(&approved, "/member/principal"), bob, "{approved}");
    assert_eq!(
        approved.pointer("/member/businessManager"),
        Some(&Value::Bool(true))
    );
    let shown = world.ok("bob", &["business", "show", ABC]).await;
    assert_eq!(number(&shown, "/businessManagerCount"), 2, "{shown}");
    assert_ne!(
        shown.get("singleBusinessManager"),
        Some(&Value::Bool(true)),
        "{shown}"
    );
    let bams = items(
        &world
            .ok("bob", &["employee", "list", ABC, "--role", "bam"])
            .await,
    );
    let mut principals: Vec<String> = bams.iter().map(|m| text(m, "/principal")).collect();
    principals.sort();
    let mut expected = vec![alice.clone(), bob.clone()];
    expected.sort();
    assert_eq!(principals, expected);
    (alice, bob)
}

// ---------------------------------------------------------------------------
// Story 2

/// Carol asks ABC for access with a justification note; Alice sees it with
/// the note and approves it with Editor on RM0001 and Reader on RM0002.
pub async fn story_2_employee_request_with_a_note_approved_per_program(world: &World) {
    demo(world).await;
    cast(world, "alice").await;
    let carol = newcomer(world, "carol", "Carol Lee").await;
    let note = "Hi, I need access to make corrections and adjustments";
    let request = ask(world, "carol", ABC, note).await;
    let mine = my_pending_request(world, "carol").await;
    assert_eq!(text(&mine, "/name"), request);
    assert_eq!(
        text(&mine, "/businessLegalName"),
        "ABC Windows & Doors Inc."
    );

    let pending = items(
        &world
            .ok(
                "alice",
                &["employee", "requests", ABC, "--state", "pending"],
            )
            .await,
    );
    let carols = pending
        .iter()
        .find(|r| text(r, "/name") == request)
        .unwrap_or_else(|| panic!("alice sees carol's request: {pending:?}"));
    assert_eq!(text(carols, "/note"), note);
    assert_eq!(text(carols, "/requester"), carol);
    assert_eq!(text(carols, "/requesterName"), "Carol Lee");
    assert_eq!(text(carols, "/requesterEmail"), "carol@example.ca");

    let approved = world
        .ok(
            "alice",
            &[
                "employee",
                "approve",
                &request,
                "--grant",
                "editor:RM0001",
                "--grant",
                "reader:RM0002",
            ],
        )
        .await;
    assert_eq!(
        text(&approved, "/request/state"),
        "EMPLOYEE_REQUEST_STATE_APPROVED"
    );
    let mut roles: Vec<(String, String)> = approved
        .pointer("/member/effectiveRoles")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .map(|r| (text(r, "/programAccount"), text(r, "/role")))
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    assert_eq!(
        roles,
        [
            ("123456782RM0001".to_owned(), "ROLE_EDITOR".to_owned()),
            ("123456782RM0002".to_owned(), "ROLE_READER".to_owned())
        ],
        "{approved}"
    );
    let revision = text(&approved, "/revision");

    // Carol's access, as she checks it herself.
    let rev = ["--revision", revision.as_str()];
    let with = |args: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(&rev);
        v
    };
    allowed(world, "carol", &with(&["edit", "123456782RM0001"])).await;
    allowed(world, "carol", &with(&["view", "123456782RM0002"])).await;
    denied(world, "carol", &with(&["edit", "123456782RM0002"])).await;
    denied(world, "carol", &with(&["manage", "123456782RM0001"])).await;
    allowed(world, "carol", &with(&["view", ABC])).await;
    let editors = items(
        &world
            .ok(
                "alice",
                &[
                    "employee",
                    "list",
                    ABC,
                    "--program",
                    "RM0001",
                    "--role",
                    "editor",
                ],
            )
            .await,
    );
    assert!(editors.iter().any(|m| text(m, "/principal") == carol));
    let mine = items(&world.ok("carol", &["business", "list"]).await);
    assert_eq!(mine.len(), 1);
    assert_eq!(text(&mine[0], "/business"), format!("businesses/{ABC}"));
}

// ---------------------------------------------------------------------------
// Story 3

/// Paula, PAM of RM0002, approves Frank for RM0002; granting RM0001 or BAM
/// is refused to her.
pub async fn story_3_the_pam_approves_for_its_program_only(world: &World) {
    demo(world).await;
    cast(world, "paula").await;
    let frank = cast(world, "frank").await;
    let request = text(&my_pending_request(world, "frank").await, "/name");

    world
        .fails(
            PERMISSION_DENIED,
            "paula",
            &["employee", "approve", &request, "--grant", "editor:RM0001"],
        )
        .await;
    world
        .fails(
            PERMISSION_DENIED,
            "paula",
            &["employee", "approve", &request, "--grant", "bam"],
        )
        .await;
    world
        .fails(
            PERMISSION_DENIED,
            "paula",
            &[
                "employee",
                "approve",
                &request,
                "--grant",
                "editor:RM0002",
                "--grant",
                "reader:RM0001",
            ],
        )
        .await;
    // Still pending after the refusals.
    assert_eq!(
        text(&my_pending_request(world, "frank").await, "/name"),
        request
    );
    let approved = world
        .ok(
            "paula",
            &["employee", "approve", &request, "--grant", "editor:RM0002"],
        )
        .await;
    assert_eq!(
        text(&approved, "/request/state"),
        "EMPLOYEE_REQUEST_STATE_APPROVED"
    );
    assert_eq!(text(&approved, "/member/principal"), frank);
    let revision = text(&approved, "/revision");

    allowed(
        world,
        "frank",
        &["edit", "123456782RM0002", "--revision", &revision],
    )
    .await;
    denied(
        world,
        "frank",
        &["view", "123456782RM0001", "--revision", &revision],
    )
    .await;
    allowed(world, "paula", &["manage", "123456782RM0002"]).await;
    denied(world, "paula", &["manage", "123456782RM0001"]).await;
    denied(world, "paula", &["manage", ABC]).await;
}
