//! The README's walkthrough, run verbatim: the fenced block after the
//! `<!-- walkthrough … -->` marker is executed by bash (`set -euo pipefail`)
//! against a fresh `ccp up` started from the built binary in a directory of
//! its own, from a directory laid out like a checkout
//! (`deploy/demo/registry.json`) that finds the suite through the state file
//! `ccp up` wrote, so the documented commands cannot go stale. The
//! walkthrough's people are the demo's (one cast), and the README's rule —
//! the walkthrough is for a fresh `ccp up`, not `ccp up --demo` — is checked
//! by running it on the demo too. Every client example of `ccp … --help` is
//! also played against a fresh suite, in the order of the guide's story.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ccp_e2e::ccp_binary;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const MARKER: &str = "<!-- walkthrough:";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Returns the bash block that follows the marker in README.md.
fn walkthrough_script() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let after = readme
        .split_once(MARKER)
        .expect("README.md has the walkthrough marker")
        .1;
    let block = after
        .split_once("```bash\n")
        .expect("a ```bash block follows the marker")
        .1;
    block
        .split_once("\n```")
        .expect("the block is closed")
        .0
        .to_owned()
}

/// A running `ccp up` (with `--demo` or not) in `<dir>/suite`, its state
/// file in `<dir>/state`.
struct Up {
    child: tokio::process::Child,
}

impl Up {
    async fn start(dir: &Path, demo: bool) -> Self {
        std::fs::create_dir_all(dir.join("suite")).unwrap();
        let mut args = vec!["up", "--data-dir", ".ccp"];
        if demo {
            args.push("--demo");
        }
        let mut child = Command::new(ccp_binary().unwrap())
            .args(&args)
            // The suite runs in a directory of its own, the walkthrough elsewhere.
            .current_dir(dir.join("suite"))
            .env("CCP_GATEWAY__SERVER__LISTEN", "127.0.0.1:0")
            .env("CCP_IDENTITY__SERVER__LISTEN", "127.0.0.1:0")
            .env("CCP_ACCOUNTS__SERVER__LISTEN", "127.0.0.1:0")
            .env("CCP_DELEGATION__SERVER__LISTEN", "127.0.0.1:0")
            .env("CCP_NOTIFICATIONS__SERVER__LISTEN", "127.0.0.1:0")
            .env("CCP_TELEMETRY__LOG_FILTER", "warn")
            .env("CCP_STATE_DIR", dir.join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut gateway = None;
        tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let words: Vec<_> = line.split_whitespace().collect();
                if let ["gateway", url, ..] = words.as_slice() {
                    gateway = Some((*url).to_owned());
                }
                if line.starts_with("Press Ctrl-C") {
                    break;
                }
            }
        })
        .await
        .expect("ccp up printed its endpoints within 120 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        assert!(gateway.is_some(), "ccp up printed the gateway's endpoint");
        Self { child }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-INT")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("ccp up stopped within 30 s")
            .unwrap();
        assert!(status.success(), "ccp up exited with {status}");
    }
}

/// Returns a directory laid out like a checkout (`deploy/demo/registry.json`).
fn checkout_like() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ccp-walkthrough-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("deploy/demo")).unwrap();
    std::fs::copy(
        repo_root().join("deploy/demo/registry.json"),
        dir.join("deploy/demo/registry.json"),
    )
    .unwrap();
    dir
}

/// Runs the walkthrough as a second terminal would: in `dir`, `ccp` on the
/// PATH, finding the running suite (its ports, its keys) through the state
/// file `ccp up` wrote; nothing else is set.
async fn run_walkthrough(dir: &Path, script: &str) -> std::process::Output {
    let binary = ccp_binary().unwrap();
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    tokio::time::timeout(
        Duration::from_secs(180),
        Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{script}"))
            .current_dir(dir)
            .env("PATH", path)
            .env("CCP_STATE_DIR", dir.join("state"))
            .env_remove("CCP_GATEWAY_URL")
            .env_remove("CCP_DATA_DIR")
            .env("CCP_SESSION", dir.join("session.json"))
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the walkthrough finished within 180 s")
    .unwrap()
}

#[tokio::test]
async fn the_readme_walkthrough_runs_verbatim_against_a_fresh_embedded_suite() {
    let script = walkthrough_script();
    assert!(script.contains("ccp business register"), "{script}");
    let dir = checkout_like();
    let up = Up::start(&dir, false).await;
    let output = run_walkthrough(&dir, &script).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walkthrough failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    // What the guide promises, as the walkthrough prints it.
    assert!(
        stdout.contains("registered; you are its Business Account Manager"),
        "{stdout}"
    );
    assert!(stdout.contains("editor:RM0001 reader:RM0002"), "{stdout}");
    assert_eq!(
        stdout.matches("ALLOW (provider relationship)").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("DENY (visibility)"), "{stdout}");
    assert!(
        stdout.contains("denied: another business's submission"),
        "{stdout}"
    );
    assert!(stdout.contains("DENY (program not covered)"), "{stdout}");
    assert!(stdout.contains("denied: RM0002 is not covered"), "{stdout}");
    assert!(stdout.contains("delegation.relationship.end"), "{stdout}");
    let csv = std::fs::read_to_string(dir.join("abc-audit.csv")).unwrap();
    assert!(csv.starts_with("time,service,actor"), "{csv}");
    assert!(csv.contains("accounts.business.register"), "{csv}");
    assert!(csv.contains("Changed brokers"), "{csv}");

    up.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_walkthrough_and_the_demo_share_one_cast() {
    let script = walkthrough_script();
    let mut user = None;
    let mut checked = 0;
    for line in script.lines() {
        if let Some(rest) = line.strip_prefix("ccp login --dev ") {
            user = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("ccp profile create ") {
            let words = shell_words(rest);
            let user = user.clone().expect("a profile is created after a login");
            let actor = ccp::demo::CAST
                .iter()
                .find(|a| a.user == user)
                .unwrap_or_else(|| panic!("{user} of the walkthrough is not in the demo's cast"));
            assert_eq!(words[1], actor.legal_name, "{user}'s legal name");
            assert_eq!(words[3], actor.email, "{user}'s e-mail");
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "alice, erin, ivan and ida");
}

/// Splits `--legal-name "Ida Marchetti" --email x` into its four words.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (word, tail) = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.split_once('"').unwrap()
        } else {
            rest.split_once(' ').unwrap_or((rest, ""))
        };
        words.push(word.to_owned());
        rest = tail.trim_start();
    }
    words
}

#[tokio::test]
async fn the_walkthrough_is_for_a_fresh_suite_and_stops_at_its_first_profile_on_the_demo() {
    // The README's rule: run the walkthrough on plain `ccp up`; on `ccp up
    // --demo` the cast is already signed up and it stops where it says.
    let dir = checkout_like();
    let up = Up::start(&dir, true).await;
    let output = run_walkthrough(&dir, &walkthrough_script()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stdout}\n{stderr}");
    assert!(stderr.contains("ALREADY_EXISTS"), "{stderr}");
    assert!(stdout.contains("signed in as"), "{stdout}");
    assert!(
        !stdout.contains("registered; you are its Business Account Manager"),
        "{stdout}"
    );
    up.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// One client example of `ccp … --help`, as the runner plays it: `prep`
/// (bash) makes what the example's placeholders stand for — `$OBJ` for a
/// resource name written `…/0197…`, `$PERSON` for `person:0197…` — then the
/// runner signs in as `actor` (unless empty) and runs the example, with
/// `replace` applied to its text.
struct Case {
    path: &'static str,
    /// Picks the example when the command has several (a substring of it).
    pick: &'static str,
    prep: &'static str,
    actor: &'static str,
    replace: &'static [(&'static str, &'static str)],
    /// Exit codes that count as the example working (`ccp check`: 10 is DENY).
    ok: &'static [i32],
}

const fn case(path: &'static str, actor: &'static str, prep: &'static str) -> Case {
    Case {
        path,
        pick: "",
        prep,
        actor,
        replace: &[],
        ok: &[0],
    }
}

const ALICE_OBJ_REQUEST: &str = "ccp login --dev alice -q >/dev/null
OBJ=$(ccp employee requests 123456782 --state pending -q)";
const ERIN_MEMBER: &str = "ERIN=$(ccp login --dev erin -q)
OBJ=businesses/123456782/members/$ERIN";
const ABC_GROUP: &str = "ccp login --dev alice -q >/dev/null
OBJ=$(ccp group list 123456782 -q)";
const ABC_GROUP_ERIN: &str = "PERSON=$(ccp login --dev erin -q)
ccp login --dev alice -q >/dev/null
OBJ=$(ccp group list 123456782 -q)";
const ITN_REQUESTS_ABC: &str = "ccp login --dev ivan -q >/dev/null
ccp relationship request 888316171 123456782 --note 'ITN Logistics' -q >/dev/null";
const ABC_RECEIVED: &str = "ccp login --dev alice -q >/dev/null
OBJ=$(ccp relationship received 123456782 --state pending -q)";
const ABC_ACTIVE: &str = "ccp login --dev alice -q >/dev/null
OBJ=$(ccp relationship list 123456782 --side client --state active -q)";
const ITN_CLIENT_GROUP: &str = "ccp login --dev ivan -q >/dev/null
OBJ=$(ccp client-group list 888316171 -q)";

/// Every client example, in an order that tells the guide's story on a fresh
/// suite (each example's state made by the ones before it or by its prep).
const CASES: &[Case] = &[
    Case {
        pick: "--dev alice",
        ..case("login", "", "")
    },
    case("profile create", "alice", ""),
    case("profile show", "alice", ""),
    case("terms", "alice", ""),
    case("business challenge", "alice", ""),
    case("business register", "alice", ""),
    case("business show", "alice", ""),
    case("business programs", "alice", ""),
    case("business list", "alice", ""),
    case("whoami", "alice", ""),
    Case {
        pick: "--id-token-file",
        ..case("login", "", "ccp dev-token alice > token.jwt")
    },
    case(
        "employee request",
        "erin",
        "ccp login --dev erin -q >/dev/null
ccp profile create --legal-name 'Erin Roy' --email erin.roy@abcwindows.example -q >/dev/null",
    ),
    case("employee my-requests", "erin", ""),
    case(
        "employee withdraw",
        "erin",
        "ccp login --dev erin -q >/dev/null
OBJ=$(ccp employee my-requests --state pending -q)",
    ),
    case(
        "employee requests",
        "alice",
        "ccp login --dev erin -q >/dev/null
ccp employee request 123456782 --note 'Customs clerk' -q >/dev/null",
    ),
    case("employee approve", "alice", ALICE_OBJ_REQUEST),
    case(
        "employee reject",
        "alice",
        "ccp login --dev frank -q >/dev/null
ccp profile create --legal-name 'Frank Gagnon' --email frank.gagnon@abcwindows.example -q >/dev/null
ccp employee request 123456782 --note 'Doors division' -q >/dev/null
ccp login --dev alice -q >/dev/null
OBJ=$(ccp employee requests 123456782 --state pending -q)",
    ),
    case("employee list", "alice", ""),
    case("employee show", "alice", ERIN_MEMBER),
    case("employee roles", "alice", ERIN_MEMBER),
    case("group create", "alice", ""),
    case("group list", "alice", ""),
    case("group show", "alice", ABC_GROUP),
    case("group update", "alice", ABC_GROUP),
    case("group add", "alice", ABC_GROUP_ERIN),
    case("group remove", "alice", ABC_GROUP_ERIN),
    case("group delete", "alice", ABC_GROUP),
    case(
        "employee remove",
        "alice",
        "FRANK=$(ccp login --dev frank -q)
ccp employee request 123456782 --note 'Doors division, again' -q >/dev/null
ccp login --dev alice -q >/dev/null
ccp employee approve \"$(ccp employee requests 123456782 --state pending -q)\" --grant reader:RM0001 -q >/dev/null
OBJ=businesses/123456782/members/$FRANK",
    ),
    case(
        "relationship request",
        "ivan",
        "ccp login --dev ivan -q >/dev/null
ccp profile create --legal-name 'Ivan Novak' --email ivan.novak@itnlogistics.example -q >/dev/null
ccp business register 888316171RM0001 --legal-name 'ITN Logistics Inc.' --line1 '6725 Airport Road' \\
  --city Mississauga --province ON --postal-code 'L4V 1V2' --answer daily_notice_total=98765.43 \\
  --answer statement_balance=15200.00 --accept-terms 2026-01 -q >/dev/null",
    ),
    case("relationship sent", "ivan", ""),
    case(
        "relationship withdraw",
        "ivan",
        "ccp login --dev ivan -q >/dev/null
OBJ=$(ccp relationship sent 888316171 --state pending -q)",
    ),
    case("relationship received", "alice", ITN_REQUESTS_ABC),
    case("relationship reject", "alice", ABC_RECEIVED),
    case(
        "relationship approve",
        "alice",
        "ccp login --dev ivan -q >/dev/null
ccp relationship request 888316171 123456782 --note 'ITN Logistics' -q >/dev/null
ccp login --dev alice -q >/dev/null
OBJ=$(ccp relationship received 123456782 --state pending -q)",
    ),
    case("relationship list", "alice", ""),
    case("relationship show", "alice", ABC_ACTIVE),
    case("relationship update", "alice", ABC_ACTIVE),
    case("client-group create", "ivan", ""),
    case("client-group list", "ivan", ""),
    case("client-group show", "ivan", ITN_CLIENT_GROUP),
    case("client-group update", "ivan", ITN_CLIENT_GROUP),
    case("client-group remove", "ivan", ITN_CLIENT_GROUP),
    case("client-group add", "ivan", ITN_CLIENT_GROUP),
    case(
        "assignment create",
        "ivan",
        "PERSON=$(ccp login --dev ida -q)
ccp profile create --legal-name 'Ida Marchetti' --email ida.marchetti@itnlogistics.example -q >/dev/null
ccp employee request 888316171 --note 'Broker, Ontario importers' -q >/dev/null
ccp login --dev ivan -q >/dev/null
ccp employee approve \"$(ccp employee requests 888316171 --state pending -q)\" --grant editor:RM0001 -q >/dev/null
OBJ=$(ccp client-group list 888316171 -q)",
    ),
    case("assignment list", "ivan", "PERSON=$(ccp login --dev ida -q)"),
    Case {
        pick: "--submitted-by",
        ok: &[0, 10],
        ..case("check", "ida", "")
    },
    Case {
        pick: "manage",
        ok: &[0, 10],
        ..case("check", "ida", "")
    },
    case("accessible", "ida", ""),
    // `--data-dir .ccp` names the suite's data directory from where it runs.
    Case {
        replace: &[("ccp explain", "cd suite && ccp explain")],
        ..case("explain", "", "PERSON=$(ccp login --dev ida -q)")
    },
    case(
        "assignment delete",
        "ivan",
        "ccp login --dev ivan -q >/dev/null
OBJ=$(ccp assignment list 888316171 -q)",
    ),
    case("client-group delete", "ivan", ITN_CLIENT_GROUP),
    case("credential create", "ivan", ""),
    case("credential list", "ivan", ""),
    Case {
        pick: "--client-id",
        replace: &[("--client-id ID", "--client-id \"$CLIENT_ID\"")],
        ..case(
            "login",
            "",
            "ccp login --dev ivan -q >/dev/null
CREDENTIAL=$(ccp credential create 888316171 --name 'ITN sync' --expires 30d --secret-file secret.txt -q)
CLIENT_ID=${CREDENTIAL##*/}",
        )
    },
    case(
        "credential revoke",
        "ivan",
        "ccp login --dev ivan -q >/dev/null
OBJ=$(ccp credential list 888316171 -q | sed -n 1p)",
        // (sed reads to the end: `head -n 1` would end ccp with SIGPIPE, which
        // pipefail reports as a failure)
    ),
    case("relationship end", "alice", ABC_ACTIVE),
    Case {
        pick: "--output",
        ..case("audit", "alice", "")
    },
    Case {
        pick: "--mine",
        ..case("audit", "alice", "")
    },
    case("profile update", "alice", ""),
    case("logout", "alice", ""),
];

/// Returns every client example `ccp` prints in its help, by command path.
fn client_examples() -> Vec<(String, String)> {
    let binary = ccp_binary().unwrap();
    let mut found = Vec::new();
    for path in ccp::help_examples::subcommand_paths(&ccp::cli::command()) {
        if ccp::cli::SUITE_COMMANDS.contains(&path[0].as_str()) {
            continue;
        }
        let output = std::process::Command::new(&binary)
            .args(&path)
            .arg("--help")
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert!(output.status.success(), "ccp {path:?} --help");
        for example in ccp::help_examples::examples(&String::from_utf8_lossy(&output.stdout)) {
            found.push((path.join(" "), example));
        }
    }
    found
}

/// Writes the example with its placeholders replaced by the prep's variables.
fn playable(example: &str, case: &Case) -> String {
    let mut text = example.to_owned();
    for (from, to) in case.replace {
        assert!(text.contains(from), "{from} in {text}");
        text = text.replace(from, to);
    }
    let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    for word in words {
        if word.contains(ccp::help_examples::ID_PLACEHOLDER) {
            let variable = if word.starts_with("person:") {
                "\"$PERSON\""
            } else {
                "\"$OBJ\""
            };
            text = text.replacen(&word, variable, 1);
        }
    }
    text
}

#[tokio::test]
async fn every_client_help_example_runs_against_a_suite() {
    let examples = client_examples();
    assert!(examples.len() >= 55, "client examples: {}", examples.len());
    let mut script = String::from("ccp registry import deploy/demo/registry.json >/dev/null\n");
    let mut unplayed: Vec<&(String, String)> = examples.iter().collect();
    for (i, case) in CASES.iter().enumerate() {
        let matching: Vec<_> = examples
            .iter()
            .filter(|(path, example)| path == case.path && example.contains(case.pick))
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "case {} `{}` picks one example of {:?}",
            i,
            case.pick,
            case.path
        );
        let (_, example) = matching[0];
        unplayed.retain(|e| e.1 != *example);
        let text = playable(example, case);
        let ok = case
            .ok
            .iter()
            .map(|code| format!("[ $rc -eq {code} ]"))
            .collect::<Vec<_>>()
            .join(" || ");
        script.push_str(&format!(
            "echo '### {i}: {}' >&2\n{}\n{}(\n{text}\n) && rc=0 || rc=$?\n{ok} || {{ echo \"### failed with $rc: {i}\" >&2; exit 1; }}\n",
            example.replace('\'', ""),
            case.prep,
            if case.actor.is_empty() {
                String::new()
            } else {
                format!("ccp login --dev {} -q >/dev/null\n", case.actor)
            },
        ));
    }
    assert!(
        unplayed.is_empty(),
        "client examples no case plays (add them to CASES): {unplayed:#?}"
    );
    let dir = checkout_like();
    let up = Up::start(&dir, false).await;
    let output = run_walkthrough(&dir, &script).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "a help example failed ({}):\n--- stderr\n{stderr}\n--- stdout\n{stdout}\n--- script\n{script}",
        output.status
    );
    assert_eq!(
        stderr.matches("### ").count(),
        CASES.len(),
        "every example ran:\n{stderr}"
    );
    assert!(stdout.contains("ALLOW (provider relationship)"), "{stdout}");
    assert!(
        dir.join("abc-audit.csv").exists(),
        "the audit example wrote its file"
    );
    up.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
