//! The client commands against a real embedded suite (started in this test
//! process with a settable clock), run as the built `ccp` binary: exit codes
//! per kind of failure, field details in errors (text and JSON), the session
//! kept in its file and refreshed when the access token expires, sign-out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ccp::embedded::Suite;
use ccp::settings::SuiteSettings;
use ccp_platform::config::{ClockMode, Environment};
use ccp_platform::context::ServiceContext;

/// `ccp business register` for ABC with its registry name and address (no
/// answers, no T&C acceptance).
const REGISTER_ABC: &[&str] = &[
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
];

struct World {
    suite: Suite,
    dir: PathBuf,
    gateway: String,
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ccp"))
}

impl World {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("ccp-client-{}", uuid::Uuid::new_v4()));
        let mut settings = SuiteSettings {
            data_dir: dir.clone(),
            ..SuiteSettings::default()
        };
        settings.common.environment = Environment::Test;
        settings.common.clock.mode = ClockMode::Settable;
        settings.on_spare_loopback_ports();
        settings.resolve_internal_key(true).unwrap();
        let context = ServiceContext::from_settings(&settings.common)
            .await
            .unwrap();
        assert!(context.clock.is_settable());
        let suite = Suite::start(settings, context).await.unwrap();
        let gateway = format!("http://{}", suite.endpoints().gateway);
        let accounts = format!("http://{}", suite.endpoints().accounts);
        let registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/registry.json");
        let mut import_settings = SuiteSettings {
            data_dir: dir.clone(),
            ..SuiteSettings::default()
        };
        import_settings.common.environment = Environment::Test;
        ccp::registry_cmd::import_file(import_settings, &registry, Some(accounts))
            .await
            .unwrap();
        Self {
            suite,
            dir,
            gateway,
        }
    }

    fn session(&self, user: &str) -> PathBuf {
        self.dir.join(format!("{user}.session.json"))
    }

    /// Runs `ccp <args>` as `user`; the CLI's clock is the suite's when
    /// `suite_clock`, else the system clock.
    async fn run_with(&self, user: &str, args: &[&str], suite_clock: bool) -> (u8, String, String) {
        let mut command = tokio::process::Command::new(binary());
        command
            .args(args)
            .env("CCP_GATEWAY_URL", &self.gateway)
            .env("CCP_SESSION", self.session(user))
            .env("CCP_DATA_DIR", &self.dir)
            .env("CCP_ENVIRONMENT", "test")
            .stdin(std::process::Stdio::null());
        if suite_clock {
            command.env("CCP_CLOCK__MODE", "settable").env(
                "CCP_CLOCK__START",
                self.suite.context().clock.now().to_rfc3339(),
            );
        }
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("ccp finished within 60 s")
            .unwrap();
        let code = u8::try_from(output.status.code().unwrap_or(255)).unwrap_or(255);
        (
            code,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    async fn run(&self, user: &str, args: &[&str]) -> (u8, String, String) {
        self.run_with(user, args, true).await
    }

    /// Runs and asserts exit 0; returns stdout.
    async fn ok(&self, user: &str, args: &[&str]) -> String {
        let (code, out, err) = self.run(user, args).await;
        assert_eq!(code, 0, "ccp {args:?} failed: {err}\n{out}");
        out
    }

    async fn sign_up(&self, user: &str) {
        self.ok(user, &["login", "--dev", user]).await;
        self.ok(
            user,
            &[
                "profile",
                "create",
                "--legal-name",
                &format!("{user} Example"),
                "--email",
                &format!("{user}@example.com"),
            ],
        )
        .await;
    }

    async fn register_abc(&self, user: &str) -> (u8, String, String) {
        let mut args = REGISTER_ABC.to_vec();
        args.extend([
            "--answer",
            "daily_notice_total=1234.56",
            "--answer",
            "statement_date=2026-02-15",
            "--accept-terms",
            "2026-01",
        ]);
        self.run(user, &args).await
    }

    async fn stop(self) {
        self.suite.stop().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}

#[tokio::test]
async fn client_exit_codes_name_what_went_wrong() {
    let world = World::start().await;

    // 4: not signed in.
    let (code, _, err) = world.run("nobody", &["business", "list"]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("ccp login"), "{err}");

    // 2: a malformed command line, before any call.
    let (code, _, err) = world
        .run("nobody", &["employee", "request", "12345", "--note", "hi"])
        .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("9 digits"), "{err}");

    // 3: the service refuses the input and names each field, in text and JSON.
    world.sign_up("alice").await;
    let (code, out, err) = world
        .run(
            "alice",
            &[
                "business",
                "register",
                "123456782RM0001",
                "--legal-name",
                "Wrong Name Inc.",
                "--line1",
                "1 Nowhere",
                "--city",
                "Toronto",
                "--province",
                "ON",
                "--postal-code",
                "M5H 2N2",
                "--answer",
                "daily_notice_total=1.00",
                "--answer",
                "statement_date=2026-02-15",
                "--accept-terms",
                "2026-01",
                "--json",
            ],
        )
        .await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("  - legal_name:"), "{err}");
    let error = json(&out);
    assert_eq!(error["error"]["code"], "INVALID_ARGUMENT");
    let fields: Vec<_> = error["error"]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap().to_owned())
        .collect();
    assert!(fields.contains(&"legal_name".to_owned()), "{fields:?}");
    assert!(
        fields.iter().any(|f| f.starts_with("answers[")),
        "{fields:?}"
    );

    // 0, then 7: the second registration of a business conflicts.
    let (code, out, err) = world.register_abc("alice").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("123456782RM0002"), "{out}");
    world.sign_up("bob").await;
    let (code, _, err) = world.register_abc("bob").await;
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("ALREADY_EXISTS"), "{err}");

    // 5: an orphan may not read a business's employees.
    let (code, _, err) = world.run("bob", &["employee", "list", "123456782"]).await;
    assert_eq!(code, 5, "{err}");

    // 6: a resource that does not exist, for someone entitled to look.
    let (code, _, err) = world
        .run(
            "alice",
            &[
                "employee",
                "show",
                "businesses/123456782/members/person:00000000-0000-0000-0000-000000000000",
            ],
        )
        .await;
    assert_eq!(code, 6, "{err}");

    // 10 and 0: check answers DENY and ALLOW by exit code; -q prints nothing.
    let (code, out, _) = world
        .run("bob", &["check", "view", "123456782RM0001", "-q"])
        .await;
    assert_eq!((code, out.as_str()), (10, ""));
    let out = world
        .ok("alice", &["check", "manage", "123456782", "--json"])
        .await;
    assert_eq!(json(&out)["decision"], "DECISION_ALLOW");

    // 8: the gateway is not there.
    let (code, _, err) = world
        .run(
            "alice",
            &["business", "list", "--gateway", "http://127.0.0.1:9"],
        )
        .await;
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("UNAVAILABLE"), "{err}");

    world.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_and_the_session_file_rotates() {
    let world = World::start().await;
    world.sign_up("erin").await;
    let first = std::fs::read_to_string(world.session("erin")).unwrap();
    let token = |text: &str| json(text)["access_token"].as_str().unwrap().to_owned();

    // The CLI knows the time: it refreshes before calling.
    world
        .suite
        .context()
        .clock
        .advance(chrono::Duration::minutes(20));
    let out = world.ok("erin", &["profile", "show", "--json"]).await;
    assert_eq!(json(&out)["legalName"], "erin Example");
    let second = std::fs::read_to_string(world.session("erin")).unwrap();
    assert_ne!(
        token(&first),
        token(&second),
        "the access token was refreshed"
    );

    // The CLI's clock lags (the system's): the gateway refuses the expired
    // token, the CLI refreshes once and repeats the call.
    world
        .suite
        .context()
        .clock
        .advance(chrono::Duration::minutes(20));
    let (code, out, err) = world
        .run_with("erin", &["profile", "show", "--json"], false)
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["legalName"], "erin Example");
    let third = std::fs::read_to_string(world.session("erin")).unwrap();
    assert_ne!(token(&second), token(&third));

    // Past the refresh token's life, the CLI says to sign in again.
    world
        .suite
        .context()
        .clock
        .advance(chrono::Duration::hours(13));
    let (code, _, err) = world.run("erin", &["profile", "show"]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("ccp login"), "{err}");
    world.stop().await;
}

#[tokio::test]
async fn logout_revokes_the_session_and_forgets_it() {
    let world = World::start().await;
    world.sign_up("frank").await;
    let stored = std::fs::read_to_string(world.session("frank")).unwrap();
    let out = world.ok("frank", &["whoami", "-q"]).await;
    assert!(out.trim().starts_with("person:"), "{out}");
    let out = world.ok("frank", &["whoami"]).await;
    assert!(
        out.contains("frank Example"),
        "the profile, from the server: {out}"
    );
    let (code, _, err) = world.run("nobody", &["whoami"]).await;
    assert_eq!(code, 4);
    assert!(err.contains("not signed in"), "{err}");
    world.ok("frank", &["logout"]).await;
    assert!(!world.session("frank").exists());
    let (code, _, _) = world.run("frank", &["whoami"]).await;
    assert_eq!(code, 4);

    // The old session file, put back, no longer works: its family is revoked,
    // and whoami asks the server rather than the file.
    std::fs::write(world.session("frank"), stored).unwrap();
    let (code, _, err) = world.run("frank", &["profile", "show"]).await;
    assert_eq!(code, 4, "{err}");
    let (code, out, err) = world.run("frank", &["whoami"]).await;
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("revoked"), "{err}");
    world.stop().await;
}

/// Human output follows the profile's language (kept in the session from sign-in on), and
/// `--language` overrides it for one command; JSON is never translated.
#[tokio::test]
async fn the_client_prints_in_the_profiles_language_unless_told_otherwise() {
    let world = World::start().await;
    world.sign_up("lea").await;
    let out = world.ok("lea", &["whoami"]).await;
    assert!(out.starts_with("signed in as person:"), "{out}");

    // Choosing French answers in French at once.
    let out = world
        .ok("lea", &["profile", "update", "--preferred-language", "fr"])
        .await;
    assert!(out.starts_with("profil mis à jour\n"), "{out}");
    assert!(out.contains("nom légal"), "{out}");
    let out = world.ok("lea", &["whoami"]).await;
    assert!(out.starts_with("connecté en tant que person:"), "{out}");
    let out = world.ok("lea", &["terms"]).await;
    assert!(
        out.starts_with("Conditions générales, version 2026-01"),
        "{out}"
    );
    let out = world.ok("lea", &["employee", "my-requests"]).await;
    assert_eq!(out, "(aucun)\n");
    let (code, _, err) = world.run("lea", &["business", "show", "123456782"]).await;
    assert_ne!(code, 0);
    assert!(err.starts_with("erreur : "), "{err}");

    // --language wins for one command; JSON stays the contract.
    let out = world.ok("lea", &["whoami", "--language", "en"]).await;
    assert!(out.starts_with("signed in as person:"), "{out}");
    let out = world.ok("lea", &["terms", "--language", "en"]).await;
    assert!(
        out.starts_with("Terms & Conditions, version 2026-01"),
        "{out}"
    );
    let out = world.ok("lea", &["whoami", "--json"]).await;
    assert_eq!(json(&out)["profileRequired"], false, "{out}");

    // A new session learns the language from the profile at sign-in.
    let out = world.ok("lea", &["logout"]).await;
    assert!(out.starts_with("déconnecté : person:"), "{out}");
    std::fs::remove_file(world.session("lea")).ok();
    let out = world.ok("lea", &["login", "--dev", "lea"]).await;
    assert!(out.starts_with("connecté en tant que person:"), "{out}");

    // Someone who creates a profile with --language has that language.
    world.ok("rui", &["login", "--dev", "rui"]).await;
    let out = world
        .ok(
            "rui",
            &[
                "profile",
                "create",
                "--legal-name",
                "Rui Example",
                "--email",
                "rui@example.com",
                "--language",
                "fr",
            ],
        )
        .await;
    assert!(out.starts_with("profil créé\n"), "{out}");
    let shown = world.ok("rui", &["profile", "show", "--json"]).await;
    assert_eq!(json(&shown)["preferredLanguage"], "LANGUAGE_FR", "{shown}");
    world.stop().await;
}

/// Returns the `name` of a JSON object.
fn name_of(value: &serde_json::Value) -> String {
    value["name"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_client_command_works_through_the_gateway() {
    let world = World::start().await;
    world.sign_up("alice").await;
    assert_eq!(world.register_abc("alice").await.0, 0);

    // Profile and terms.
    let out = world
        .ok(
            "alice",
            &[
                "profile",
                "update",
                "--phone",
                "+1 416 555 0100",
                "--preferred-language",
                "fr",
                "--json",
            ],
        )
        .await;
    assert_eq!(json(&out)["profile"]["preferredLanguage"], "LANGUAGE_FR");
    // A choice per kind of notice: set, listed in the kinds' order, one dropped again.
    let out = world
        .ok(
            "alice",
            &[
                "profile",
                "update",
                "--notify",
                "credential-expiry-reminder=on",
                "--notify",
                "relationship-ended=off",
                "--json",
            ],
        )
        .await;
    assert_eq!(
        json(&out)["profile"]["notificationChoices"],
        serde_json::json!([
            {"kind": "relationship-ended", "enabled": false},
            {"kind": "credential-expiry-reminder", "enabled": true},
        ])
    );
    world
        .ok(
            "alice",
            &[
                "profile",
                "update",
                "--notify",
                "relationship-ended=default",
            ],
        )
        .await;
    // Shown in alice's language (French now), the kinds as they are.
    let out = world.ok("alice", &["profile", "show"]).await;
    assert!(
        out.contains("choix par type d'avis") && out.contains("credential-expiry-reminder=on"),
        "{out}"
    );
    assert!(!out.contains("relationship-ended"), "{out}");
    let (code, _, err) = world
        .run("alice", &["profile", "update", "--notify", "newsletter=on"])
        .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a kind of notice"), "{err}");
    let out = world.ok("alice", &["terms", "--json"]).await;
    assert_eq!(json(&out)["version"], "2026-01");
    let out = world
        .ok("alice", &["business", "programs", "123456782", "-q"])
        .await;
    assert_eq!(out.lines().count(), 2, "{out}");

    // Employees: request, withdraw, request again, approve, roles, remove.
    world.sign_up("erin").await;
    let req = world
        .ok(
            "erin",
            &["employee", "request", "123456782", "--note", "clerk", "-q"],
        )
        .await;
    let out = world
        .ok("erin", &["employee", "my-requests", "--json"])
        .await;
    assert_eq!(json(&out)[0]["state"], "EMPLOYEE_REQUEST_STATE_PENDING");
    world
        .ok("erin", &["employee", "withdraw", req.trim()])
        .await;
    let req = world
        .ok(
            "erin",
            &[
                "employee",
                "request",
                "123456782",
                "--note",
                "clerk again",
                "-q",
            ],
        )
        .await;
    let member = world
        .ok(
            "alice",
            &[
                "employee",
                "approve",
                req.trim(),
                "--grant",
                "reader:RM0001",
                "-q",
            ],
        )
        .await;
    let member = member.trim();
    assert!(
        member.starts_with("businesses/123456782/members/person:"),
        "{member}"
    );
    let out = world
        .ok(
            "alice",
            &[
                "employee",
                "roles",
                member,
                "--grant",
                "editor:RM0002",
                "--json",
            ],
        )
        .await;
    assert_eq!(
        json(&out)["member"]["directRoles"][0]["programAccount"],
        "123456782RM0002"
    );
    let out = world
        .ok(
            "alice",
            &["employee", "list", "123456782", "--program", "RM0002", "-q"],
        )
        .await;
    assert!(out.contains(member), "{out}");

    // Employee groups.
    let group = world
        .ok(
            "alice",
            &[
                "group",
                "create",
                "123456782",
                "--name",
                "Doors",
                "--grant",
                "reader:RM0002",
                "-q",
            ],
        )
        .await;
    let group = group.trim();
    world.ok("alice", &["group", "add", group, member]).await;
    let out = world.ok("alice", &["group", "show", group, "--json"]).await;
    assert_eq!(json(&out)["members"].as_array().unwrap().len(), 1);
    let out = world
        .ok(
            "alice",
            &[
                "group",
                "update",
                group,
                "--name",
                "Doors team",
                "--grant",
                "editor:RM0001",
                "--json",
            ],
        )
        .await;
    assert_eq!(json(&out)["group"]["displayName"], "Doors team");
    world.ok("alice", &["group", "remove", group, member]).await;
    world.ok("alice", &["group", "delete", group]).await;
    let out = world
        .ok("alice", &["group", "list", "123456782", "-q"])
        .await;
    assert!(out.trim().is_empty(), "{out}");
    world.ok("alice", &["employee", "remove", member]).await;
    let (code, _, _) = world
        .run("erin", &["check", "view", "123456782RM0002"])
        .await;
    assert_eq!(code, 10, "a removed member is denied");

    // A broker: registration, request, approval, update, client groups, assignments.
    world.sign_up("ivan").await;
    let (code, _, err) = world
        .run(
            "ivan",
            &[
                "business",
                "register",
                "888316171RM0001",
                "--legal-name",
                "ITN Logistics Inc.",
                "--line1",
                "6725 Airport Road",
                "--city",
                "Mississauga",
                "--province",
                "ON",
                "--postal-code",
                "L4V 1V2",
                "--answer",
                "daily_notice_total=98765.43",
                "--answer",
                "statement_balance=15200.00",
                "--accept-terms",
                "2026-01",
            ],
        )
        .await;
    assert_eq!(code, 0, "{err}");
    world
        .ok(
            "ivan",
            &[
                "relationship",
                "request",
                "888316171",
                "123456782",
                "--note",
                "broker",
            ],
        )
        .await;
    let out = world
        .ok("ivan", &["relationship", "sent", "888316171", "--json"])
        .await;
    assert_eq!(json(&out)[0]["state"], "RELATIONSHIP_REQUEST_STATE_PENDING");
    let received = world
        .ok(
            "alice",
            &[
                "relationship",
                "received",
                "123456782",
                "--state",
                "pending",
                "-q",
            ],
        )
        .await;
    let rel = world
        .ok(
            "alice",
            &[
                "relationship",
                "approve",
                received.trim(),
                "--level",
                "business",
                "--expires",
                "30d",
                "-q",
            ],
        )
        .await;
    let rel = rel.trim().to_owned();
    let out = world
        .ok(
            "alice",
            &[
                "relationship",
                "update",
                &rel,
                "--expires",
                "60d",
                "--visibility",
                "provider,client",
                "--json",
            ],
        )
        .await;
    assert_eq!(
        json(&out)["relationship"]["visibility"],
        serde_json::json!([
            "VISIBILITY_SUBMITTED_BY_PROVIDER",
            "VISIBILITY_SUBMITTED_BY_CLIENT"
        ])
    );
    let out = world
        .ok(
            "ivan",
            &[
                "relationship",
                "list",
                "888316171",
                "--side",
                "provider",
                "--json",
            ],
        )
        .await;
    assert_eq!(json(&out).as_array().unwrap().len(), 1);
    let out = world
        .ok("alice", &["relationship", "show", &rel, "--json"])
        .await;
    assert_eq!(json(&out)["state"], "RELATIONSHIP_STATE_ACTIVE");

    let cg = world
        .ok(
            "ivan",
            &[
                "client-group",
                "create",
                "888316171",
                "--name",
                "Ontario",
                "-q",
            ],
        )
        .await;
    let cg = cg.trim();
    world
        .ok("ivan", &["client-group", "add", cg, "123456782"])
        .await;
    let out = world
        .ok(
            "ivan",
            &["client-group", "update", cg, "--name", "GTA", "--json"],
        )
        .await;
    assert_eq!(
        json(&out)["group"]["clients"],
        serde_json::json!(["123456782"])
    );
    let ivan = world.ok("ivan", &["whoami", "-q"]).await;
    let assignment = world
        .ok(
            "ivan",
            &[
                "assignment",
                "create",
                "888316171",
                "--member",
                ivan.trim(),
                "--client",
                "123456782",
                "--role",
                "reader",
                "-q",
            ],
        )
        .await;
    let out = world
        .ok(
            "ivan",
            &[
                "assignment",
                "list",
                "888316171",
                "--member",
                ivan.trim(),
                "--json",
            ],
        )
        .await;
    assert_eq!(name_of(&json(&out)[0]), assignment.trim());
    world
        .ok("ivan", &["assignment", "delete", assignment.trim()])
        .await;
    world
        .ok("ivan", &["client-group", "remove", cg, "123456782"])
        .await;
    world.ok("ivan", &["client-group", "delete", cg]).await;
    let out = world
        .ok("ivan", &["client-group", "list", "888316171", "--json"])
        .await;
    assert_eq!(json(&out), serde_json::json!([]));

    // Machine credentials: create, sign in with the secret, check, revoke.
    let secret = world.dir.join("itn.secret");
    let out = world
        .ok(
            "ivan",
            &[
                "credential",
                "create",
                "888316171",
                "--name",
                "ITN system",
                "--expires",
                "365d",
                "--secret-file",
                secret.to_str().unwrap(),
                "--json",
            ],
        )
        .await;
    let created = json(&out);
    let client_id = created["credential"]["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    let credential = name_of(&created["credential"]);
    let out = world
        .ok(
            "robot",
            &[
                "login",
                "--client-id",
                &client_id,
                "--client-secret-file",
                secret.to_str().unwrap(),
                "--json",
            ],
        )
        .await;
    assert!(
        json(&out)["principal"]
            .as_str()
            .unwrap()
            .starts_with("credential:")
    );
    let out = world
        .ok("ivan", &["credential", "list", "888316171", "-q"])
        .await;
    assert!(out.contains(&credential), "{out}");
    world
        .ok(
            "ivan",
            &["credential", "revoke", &credential, "--reason", "rotated"],
        )
        .await;
    let (code, _, err) = world
        .run("robot", &["check", "view", "888316171RM0001"])
        .await;
    assert_eq!(code, 4, "a revoked credential's token is refused: {err}");

    // Decisions for operators and users.
    let erin = world.ok("erin", &["whoami", "-q"]).await;
    let out = world
        .ok(
            "alice",
            &[
                "explain",
                erin.trim(),
                "view",
                "123456782RM0001",
                "--data-dir",
                world.dir.to_str().unwrap(),
                "--json",
            ],
        )
        .await;
    assert_eq!(json(&out)["decision"]["decision"], "DECISION_DENY");
    let out = world.ok("ivan", &["accessible", "view", "-q"]).await;
    assert!(
        out.lines().any(|l| l == "123456782"),
        "ITN reaches ABC as provider: {out}"
    );

    // Ending, and the audit history of both sides and of a person.
    world
        .ok(
            "ivan",
            &[
                "relationship",
                "end",
                &rel.replace("123456782", "888316171"),
                "--reason",
                "done",
            ],
        )
        .await;
    let out = world
        .ok("alice", &["audit", "export", "123456782", "--json"])
        .await;
    let events = json(&out);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "delegation.relationship.end" && e["service"] == "delegation"),
        "{out}"
    );
    let out = world
        .ok("alice", &["audit", "export", "--mine", "--format", "csv"])
        .await;
    assert!(out.starts_with("time,service,actor"), "{out}");
    assert!(out.lines().count() > 1, "{out}");
    world.stop().await;
}

/// Runs `ccp <args>` as `user` on a pseudo-terminal (util-linux `script`),
/// typing `input`; returns the exit code and everything the terminal showed.
async fn on_a_terminal(world: &World, user: &str, args: &[&str], input: &str) -> (u8, String) {
    use tokio::io::AsyncWriteExt as _;
    let quoted: Vec<String> = std::iter::once(binary().display().to_string())
        .chain(args.iter().map(|a| (*a).to_owned()))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("CCP_GATEWAY_URL", &world.gateway)
        .env("CCP_SESSION", world.session(user))
        .env("CCP_DATA_DIR", &world.dir)
        .env("CCP_ENVIRONMENT", "test")
        .env("CCP_CLOCK__MODE", "settable")
        .env(
            "CCP_CLOCK__START",
            world.suite.context().clock.now().to_rfc3339(),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the command on a terminal");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("finished within 60 s")
        .unwrap();
    let code = u8::try_from(output.status.code().unwrap_or(255)).unwrap_or(255);
    (code, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test]
async fn registration_asks_for_missing_answers_and_the_terms_on_a_terminal() {
    let world = World::start().await;
    world.sign_up("alice").await;
    let mut args = REGISTER_ABC.to_vec();
    args.push("-q");

    // Declining the Terms & Conditions registers nothing.
    let (code, shown) = on_a_terminal(&world, "alice", &args, "1234.56\n2026-02-15\nn\n").await;
    assert_eq!(code, 2, "{shown}");
    assert!(
        shown.contains("Daily Notice"),
        "the first question was asked: {shown}"
    );
    assert!(
        shown.contains("Do you accept the Terms & Conditions version 2026-01?"),
        "{shown}"
    );
    let out = world.ok("alice", &["business", "list", "-q"]).await;
    assert!(out.trim().is_empty(), "{out}");

    // Answering and accepting registers the business.
    let (code, shown) = on_a_terminal(&world, "alice", &args, "1234.56\n2026-02-15\ny\n").await;
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("businesses/123456782"), "{shown}");
    let out = world.ok("alice", &["business", "list", "-q"]).await;
    assert_eq!(out.trim(), "businesses/123456782");
    world.stop().await;
}

#[tokio::test]
async fn list_commands_read_one_page_at_a_token_or_every_page() {
    let world = World::start().await;
    world.sign_up("alice").await;
    let (code, _, err) = world.register_abc("alice").await;
    assert_eq!(code, 0, "{err}");
    let names = |out: &str| out.lines().map(str::to_owned).collect::<Vec<_>>();
    let programs = [
        "business",
        "programs",
        "123456782",
        "-q",
        "--page-size",
        "1",
    ];

    // By default every page (up to 10,000 items): ABC's RM0001 and RM0002.
    let all = names(&world.ok("alice", &programs).await);
    assert_eq!(all.len(), 2, "{all:?}");

    // One page at a time: the first page names the next one on stderr.
    let mut first_page = programs.to_vec();
    first_page.extend(["--page-token", ""]);
    let (code, out, err) = world.run("alice", &first_page).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&out), all[..1], "{out}");
    let token = err
        .lines()
        .find_map(|l| l.strip_prefix("next page: --page-token "))
        .unwrap_or_else(|| panic!("the next page's token: {err}"))
        .to_owned();
    let mut second_page = programs.to_vec();
    second_page.extend(["--page-token", &token]);
    let (code, out, err) = world.run("alice", &second_page).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&out), all[1..], "{out}");
    assert!(!err.contains("next page"), "the last page: {err}");

    // --all reads every page.
    let mut every = programs.to_vec();
    every.push("--all");
    assert_eq!(names(&world.ok("alice", &every).await), all);
    world.stop().await;
}
