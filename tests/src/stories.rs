//! The registration guide's eight stories, told with the real `ccp` binary
//! against a [`World`] (embedded or distributed). Each story function runs
//! its own setup — earlier stories' steps or `ccp demo load` — and asserts
//! the outcomes the spec promises: exit codes, JSON fields, ALLOW/DENY.
//!
//! The functions panic on a failed expectation (they are test bodies).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::Value;

use crate::{Mode, World};

/// ABC Windows & Doors Inc., the importer.
pub const ABC: &str = "123456782";
/// ITN Logistics Inc., the customs broker.
pub const ITN: &str = "888316171";
/// Maple Leaf Imports Ltd., a business nobody in the stories is related to.
pub const MAPLE: &str = "876543216";
/// Northern Lights Trading Co., a second provider of ABC (story 7).
pub const NORTHERN: &str = "102938479";

/// Exit code of a check answered DENY.
pub const DENY: i32 = 10;
/// Exit code of PERMISSION_DENIED.
pub const PERMISSION_DENIED: i32 = 5;
/// Exit code of INVALID_ARGUMENT.
pub const INVALID_ARGUMENT: i32 = 3;
/// Exit code of UNAUTHENTICATED (not signed in, session expired).
pub const UNAUTHENTICATED: i32 = 4;

/// A registry record as a registrant types it.
struct Registration {
    bn: &'static str,
    legal_name: &'static str,
    line1: &'static str,
    line2: &'static str,
    city: &'static str,
    province: &'static str,
    postal_code: &'static str,
    answers: &'static [(&'static str, &'static str)],
}

const ABC_REG: Registration = Registration {
    bn: ABC,
    legal_name: "ABC Windows & Doors Inc.",
    line1: "100 Queen Street West",
    line2: "Suite 200",
    city: "Toronto",
    province: "ON",
    postal_code: "M5H 2N2",
    answers: &[
        ("daily_notice_total", "1234.56"),
        ("statement_date", "2026-02-15"),
    ],
};

const ITN_REG: Registration = Registration {
    bn: ITN,
    legal_name: "ITN Logistics Inc.",
    line1: "6725 Airport Road",
    line2: "",
    city: "Mississauga",
    province: "ON",
    postal_code: "L4V 1V2",
    answers: &[
        ("daily_notice_total", "98765.43"),
        ("statement_balance", "15200.00"),
    ],
};

const NORTHERN_REG: Registration = Registration {
    bn: NORTHERN,
    legal_name: "Northern Lights Trading Co.",
    line1: "4910 50th Avenue",
    line2: "",
    city: "Yellowknife",
    province: "NT",
    postal_code: "X1A 2P4",
    answers: &[
        ("statement_balance", "0.00"),
        ("statement_date", "2026-02-28"),
    ],
};

const MAPLE_REG: Registration = Registration {
    bn: MAPLE,
    legal_name: "Maple Leaf Imports Ltd.",
    line1: "1 Harbour Road",
    line2: "",
    city: "Vancouver",
    province: "BC",
    postal_code: "V6C 3T4",
    answers: &[
        ("daily_notice_total", "512.00"),
        ("statement_date", "2026-01-31"),
    ],
};

/// Returns the string at a JSON pointer, or "" when absent.
pub fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Returns the items of a JSON array (lists print arrays).
pub fn items(value: &Value) -> Vec<Value> {
    value
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("expected a JSON array, got {value}"))
}

/// Returns the strings of a JSON array at a pointer.
pub fn strings(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Returns a number (JSON number or int64 string) at a pointer, 0 when absent.
pub fn number(value: &Value, pointer: &str) -> i64 {
    match value.pointer(pointer) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or_default(),
        Some(Value::String(s)) => s.parse().unwrap_or_default(),
        _ => 0,
    }
}

/// Returns an RFC 3339 instant at a pointer.
pub fn instant(value: &Value, pointer: &str) -> chrono::DateTime<chrono::Utc> {
    let t = text(value, pointer);
    chrono::DateTime::parse_from_rfc3339(&t)
        .unwrap_or_else(|_| panic!("{pointer} is not an RFC 3339 instant in {value}"))
        .with_timezone(&chrono::Utc)
}

/// Asserts that a check allowed (exit 0, DECISION_ALLOW); returns the answer.
pub async fn allowed(world: &World, user: &str, args: &[&str]) -> Value {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let answer = world.ok(user, &all).await;
    assert_eq!(
        text(&answer, "/decision"),
        "DECISION_ALLOW",
        "{user}: check {args:?}: {answer}"
    );
    answer
}

/// Asserts that a check denied (exit 10, DECISION_DENY); returns the answer.
pub async fn denied(world: &World, user: &str, args: &[&str]) -> Value {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let answer = world.fails(DENY, user, &all).await;
    assert_eq!(
        text(&answer, "/decision"),
        "DECISION_DENY",
        "{user}: check {args:?}: {answer}"
    );
    answer
}

/// Imports the demo registry through accounts (`ccp registry import`).
pub async fn import_registry(world: &World) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy/demo/registry.json");
    let out = world
        .run(&[
            "registry".into(),
            "import".into(),
            path.display().to_string(),
            "--endpoint".into(),
            world.accounts_url().to_owned(),
        ])
        .await
        .unwrap();
    assert_eq!(
        out.code, 0,
        "registry import: {}\n{}",
        out.stdout, out.stderr
    );
}

/// Loads the guide's demo (`ccp demo load`).
pub async fn demo(world: &World) {
    world.demo_load().await.unwrap();
}

/// Signs a new person in (`ccp login --dev`) and creates its profile;
/// returns its principal.
pub async fn newcomer(world: &World, user: &str, legal_name: &str) -> String {
    let session = world.login(user).await;
    assert_eq!(
        session.get("profileRequired"),
        Some(&Value::Bool(true)),
        "a first sign-in needs a profile: {session}"
    );
    let principal = text(&session, "/principal");
    assert!(principal.starts_with("person:"), "{session}");
    let email = format!("{user}@example.ca");
    let created = world
        .ok(
            user,
            &[
                "profile",
                "create",
                "--legal-name",
                legal_name,
                "--email",
                &email,
                "--language",
                "en",
            ],
        )
        .await;
    assert_eq!(
        text(&created, "/profile/legalName"),
        legal_name,
        "{created}"
    );
    assert_eq!(text(&created, "/profile/principal"), principal, "{created}");
    principal
}

/// Signs a person of the demo cast in; returns its principal.
pub async fn cast(world: &World, user: &str) -> String {
    let session = world.login(user).await;
    assert_ne!(
        session.get("profileRequired"),
        Some(&Value::Bool(true)),
        "{user} has a profile: {session}"
    );
    text(&session, "/principal")
}

/// The current Terms & Conditions version (`ccp terms`).
async fn terms_version(world: &World, user: &str) -> String {
    let terms = world.ok(user, &["terms"]).await;
    let version = text(&terms, "/version");
    assert!(!version.is_empty(), "{terms}");
    version
}

/// The arguments of `ccp business register` for ABC with its registry facts,
/// `daily_notice_total` as given, and `--accept-terms` when `terms` is set.
fn abc_registration(total: &str, terms: Option<&str>) -> Vec<String> {
    let total = format!("daily_notice_total={total}");
    let mut args = vec![
        "business",
        "register",
        "123456782RM0001",
        "--legal-name",
        "ABC Windows & Doors Inc.",
        "--line1",
        "100 Queen Street West",
        "--line2",
        "Suite 200",
        "--city",
        "Toronto",
        "--province",
        "ON",
        "--postal-code",
        "M5H 2N2",
        "--answer",
        &total,
        "--answer",
        "statement_date=2026-02-15",
    ];
    if let Some(version) = terms {
        args.extend(["--accept-terms", version]);
    }
    args.into_iter().map(str::to_owned).collect()
}

/// `user` registers `reg` on its RM0001 with the right answers; returns the
/// RegisterBusinessResponse.
async fn register(world: &World, user: &str, reg: &Registration) -> Value {
    let version = terms_version(world, user).await;
    let bn15 = format!("{}RM0001", reg.bn);
    let mut args: Vec<String> = [
        "business",
        "register",
        &bn15,
        "--legal-name",
        reg.legal_name,
        "--line1",
        reg.line1,
        "--city",
        reg.city,
        "--province",
        reg.province,
        "--postal-code",
        reg.postal_code,
        "--accept-terms",
        &version,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if !reg.line2.is_empty() {
        args.extend(["--line2".to_owned(), reg.line2.to_owned()]);
    }
    for (id, answer) in reg.answers {
        args.extend(["--answer".to_owned(), format!("{id}={answer}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let registered = world.ok(user, &args).await;
    assert_eq!(
        text(&registered, "/business/bn9"),
        reg.bn,
        "registered: {registered}"
    );
    registered
}

/// `employee` asks `bn` for access with `note`; returns the request's name.
async fn ask(world: &World, employee: &str, bn: &str, note: &str) -> String {
    let asked = world
        .ok(employee, &["employee", "request", bn, "--note", note])
        .await;
    assert_eq!(
        text(&asked, "/request/state"),
        "EMPLOYEE_REQUEST_STATE_PENDING",
        "{asked}"
    );
    assert_eq!(text(&asked, "/request/note"), note, "{asked}");
    let name = text(&asked, "/request/name");
    assert!(
        name.starts_with(&format!("businesses/{bn}/employeeRequests/")),
        "{asked}"
    );
    name
}

/// The pending employee request `user` made (its own list).
async fn my_pending_request(world: &World, user: &str) -> Value {
    let mine = items(
        &world
            .ok(user, &["employee", "my-requests", "--state", "pending"])
            .await,
    );
    assert_eq!(mine.len(), 1, "{user}'s pending requests: {mine:?}");
    mine[0].clone()
}

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
        .fails(PERMISSION_DENIED, "alice", &["business", "list"])
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
async fn demo_with_itn_approved(world: &World) -> Value {
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
async fn story_5_steps(world: &World) -> (String, String) {
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
                "--language",
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
