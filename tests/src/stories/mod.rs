//! The registration guide's eight stories, told with the real `ccp` binary
//! against a [`World`] (embedded or distributed). Each story function runs
//! its own setup — earlier stories' steps or `ccp demo load` — and asserts
//! the outcomes the spec promises: exit codes, JSON fields, ALLOW/DENY.
//!
//! The functions panic on a failed expectation (they are test bodies).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod brokers;
mod endings;
mod notices;
mod registration;
mod reminders;

use std::time::Duration;

use serde_json::Value;

use crate::World;
use crate::mail::Mail;

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
/// Exit code of FAILED_PRECONDITION (and ALREADY_EXISTS, ABORTED): e.g. no profile yet.
pub const FAILED_PRECONDITION: i32 = 7;
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
    let created = create_profile(world, user, legal_name, &email, "en", false).await;
    assert_eq!(
        text(&created, "/profile/legalName"),
        legal_name,
        "{created}"
    );
    assert_eq!(text(&created, "/profile/principal"), principal, "{created}");
    principal
}

/// Signs `user` in and creates its profile with an address, a language and the e-mail opt-in;
/// returns its principal.
pub async fn opted_in(
    world: &World,
    user: &str,
    legal_name: &str,
    email: &str,
    lang: &str,
) -> String {
    let session = world.login(user).await;
    create_profile(world, user, legal_name, email, lang, true).await;
    text(&session, "/principal")
}

/// Creates the signed-in `user`'s profile (`ccp profile create`), opted in to
/// e-mail notices when `opt_in`; returns the command's JSON.
async fn create_profile(
    world: &World,
    user: &str,
    legal_name: &str,
    email: &str,
    lang: &str,
    opt_in: bool,
) -> Value {
    let mut args = vec![
        "profile",
        "create",
        "--legal-name",
        legal_name,
        "--email",
        email,
        "--language",
        lang,
    ];
    if opt_in {
        args.push("--email-notifications");
    }
    world.ok(user, &args).await
}

/// Waits (bounded: 60 s) until every address has received the number of messages given;
/// returns what each received then.
pub async fn mail_counts(world: &World, expected: &[(&str, usize)]) -> Vec<Vec<Mail>> {
    let mut last = Vec::new();
    for _ in 0..300 {
        last = expected
            .iter()
            .map(|(address, _)| world.mail_for(address).unwrap())
            .collect::<Vec<_>>();
        if last
            .iter()
            .zip(expected)
            .all(|(got, (_, n))| got.len() >= *n)
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got: Vec<(&str, Vec<String>)> = expected
        .iter()
        .zip(&last)
        .map(|((address, _), mails)| (*address, mails.iter().map(|m| m.subject.clone()).collect()))
        .collect();
    panic!("expected {expected:?} messages within 60 s, got {got:#?}");
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

pub use brokers::{
    approve_itn, story_4_the_broker_request_waits_for_registration_and_is_approved,
    story_5_broker_employee_through_a_client_group,
};
pub use endings::{
    story_6_expired_user_sees_only_its_own_submissions,
    story_7_the_client_ends_a_relationship_early, story_8_the_orphan_user,
};
pub use notices::notice_relationship_request_reaches_the_clients_manager;
pub use registration::{
    story_1_first_sign_in_profile_registration_and_a_second_bam, story_1_steps,
    story_2_employee_request_with_a_note_approved_per_program,
    story_3_the_pam_approves_for_its_program_only,
};
pub use reminders::notice_a_relationship_from_request_to_reminders_to_expiry;
