//! The `ccp` command line: every command and its options (clap), shared by
//! the binary and the tests that parse the examples of its help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// The CCP command: identity, business accounts and delegation of authority
/// for a customs client portal.
#[derive(Debug, Parser)]
#[command(name = "ccp", version, about, long_about = None)]
pub struct Cli {
    /// A TOML configuration file; `CCP_…` environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[allow(missing_docs)] // a doc comment here would become clap's help text
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
/// The commands of `ccp`: the suite's (up, serve, …) and the client's.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs all four services in one process on the embedded default (SQLite
    /// files under the data directory, in-memory cache and event bus) and
    /// prints each endpoint. Stops gracefully on Ctrl-C.
    ///
    /// Example: ccp up
    Up {
        /// The data directory (default `.ccp`, or `data_dir` from the configuration).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Loads the guide's demo (ABC Windows & Doors, ITN Logistics and their
        /// people) once the suite is up, and prints who is who.
        #[arg(long)]
        demo: bool,
    },
    /// Runs one service with the database and Redis from the configuration
    /// (the distributed mode).
    ///
    /// Example: CCP_ACCOUNTS__DATABASE__URL=postgres://ccp@db/accounts ccp serve accounts
    Serve {
        /// The service to run.
        service: Service,
    },
    /// Applies a service's pending database migrations and exits.
    ///
    /// Example: ccp migrate identity --config prod.toml
    Migrate {
        /// The service whose schema to migrate.
        service: DatabaseService,
    },
    /// Prints an ID token of the development issuer for a named test user,
    /// to exchange with SignIn (the issuer must be on, as in `ccp up`).
    ///
    /// Example: ccp dev-token alice
    DevToken {
        /// The test user (the token's subject).
        user: String,
        /// How long the token is valid, in seconds.
        #[arg(long, default_value_t = 300)]
        ttl_secs: u64,
        /// The data directory of `ccp up` (default `.ccp`, or `data_dir` from the configuration).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// A test-users issuer for deployments that refuse the development
    /// issuer (production): keeps an Ed25519 key, writes the JWKS identity
    /// trusts as an ordinary issuer (`jwks_file`), and mints ID tokens for
    /// named test users with it.
    ///
    /// Example: ccp test-issuer init ./issuer && ccp test-issuer token alice --key ./issuer/test-issuer.key
    TestIssuer {
        #[allow(missing_docs)] // a doc comment here would become clap's help text
        #[command(subcommand)]
        command: crate::identity_cmd::TestIssuerCommand,
    },
    /// Asks a service's grpc.health.v1 whether it is SERVING, as kubelet's
    /// grpc probe does: exit 0 when it is, 1 otherwise. `--wait-secs` keeps
    /// asking until it is (scripts waiting for a service to come up).
    ///
    /// Example: ccp health http://127.0.0.1:50050 --wait-secs 30
    Health {
        /// The service's endpoint.
        endpoint: String,
        /// The service to ask about; empty is the server as a whole.
        #[arg(long, default_value = "")]
        service: String,
        /// Keep asking for up to this many seconds.
        #[arg(long, default_value_t = 0)]
        wait_secs: u64,
    },
    /// Manages the identity service's signing keys.
    Keys {
        #[allow(missing_docs)] // a doc comment here would become clap's help text
        #[command(subcommand)]
        command: crate::identity_cmd::KeysCommand,
        /// The data directory of `ccp up` (default `.ccp`, or `data_dir` from the configuration).
        #[arg(long, value_name = "DIR", global = true)]
        data_dir: Option<PathBuf>,
    },
    /// Runs a benchmark scenario (see BENCHMARKS.md): it starts what it
    /// measures, measures a baseline in the same run, and prints a table
    /// (and one JSON object on the last line with `--json`).
    ///
    /// Example: ccp bench check --quick --json
    Bench(crate::bench::BenchArgs),
    /// Works with the CRA registry records that registrations are checked against.
    Registry {
        #[allow(missing_docs)] // a doc comment here would become clap's help text
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Works with the guide's demo data.
    Demo {
        #[allow(missing_docs)] // a doc comment here would become clap's help text
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Works with the notices the notifier gave up on (refused for good by the
    /// mail server, or not taken within `notifications.give_up_after_ms`).
    Notifications {
        #[allow(missing_docs)] // a doc comment here would become clap's help text
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// Lists the e-mails `ccp up` wrote as `.eml` files (no SMTP server
    /// configured) under `<data_dir>/mail`, newest last: time, to, subject,
    /// Message-ID. `ccp mail show <n|message-id>` prints one.
    ///
    /// Example: ccp mail --json
    Mail {
        #[allow(missing_docs)] // a doc comment here would become clap's help text
        #[command(subcommand)]
        command: Option<MailCommand>,
        /// The data directory of `ccp up` (default: the running suite's, or `data_dir`).
        #[arg(long, value_name = "DIR", global = true)]
        data_dir: Option<PathBuf>,
        /// Prints one JSON document instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Prints a completion script for bash, zsh or fish.
    ///
    /// Load it in the current shell (`source <(ccp completions bash)`,
    /// `ccp completions fish | source`) or install it where the shell looks.
    ///
    /// Example: ccp completions bash > ~/.local/share/bash-completion/completions/ccp
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    #[allow(missing_docs)] // the client commands, documented each in `client`
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

/// `ccp demo …`.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Loads the guide's demo into a running suite: the demo registry, ITN
    /// Logistics (customs broker) and its request to ABC Windows & Doors, ABC
    /// with two BAMs, a PAM and pending employee requests. Loading twice is
    /// harmless.
    ///
    /// Example: ccp demo load --data-dir .ccp
    Load {
        /// The gateway (default: `gateway.server.listen`).
        #[arg(long, env = "CCP_GATEWAY_URL", value_name = "URL")]
        gateway: Option<String>,
        /// Accounts' facts API, for the registry import (default:
        /// `accounts.server.internal_listen`, else `accounts.server.listen`).
        #[arg(long, value_name = "URL")]
        accounts: Option<String>,
        /// The data directory of `ccp up` (its internal and dev-issuer keys).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `ccp notifications …`.
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Lists the failed notices: first failure, attempts, recipient, notice,
    /// Message-ID and the last error.
    ///
    /// Example: ccp notifications failed --json
    Failed {
        /// The notifier's operator API (default: the running suite's, else
        /// `notifications.server.listen`).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Prints one JSON document (proto3 JSON) instead of a table.
        #[arg(long)]
        json: bool,
        /// The data directory of `ccp up` (its internal key).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Sends a failed notice again, exactly as built (same Message-ID); once
    /// delivered it is recorded as sent and no longer listed. A notice sent
    /// meanwhile is not sent twice.
    ///
    /// Example: ccp notifications retry '<3f2a9c0e5b7d41e8a6c2f90d1b4e7a53@ccp.localhost>'
    Retry {
        /// The notice's Message-ID (angle brackets optional).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        message_id: Option<String>,
        /// Sends every failed notice again.
        #[arg(long)]
        all: bool,
        /// The notifier's operator API (default: the running suite's, else
        /// `notifications.server.listen`).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Prints one JSON document (proto3 JSON).
        #[arg(long)]
        json: bool,
        /// The data directory of `ccp up` (its internal key).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `ccp mail …`.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Prints one e-mail: its headers and its text.
    ///
    /// Example: ccp mail show 1
    Show {
        /// Its number in `ccp mail`, or its Message-ID.
        which: String,
    },
}

/// `ccp registry …`.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Upserts registry records from a CSV or JSON file through the accounts
    /// service (of a running `ccp up`, or `--endpoint`) and prints the records
    /// accepted and rejected with reasons.
    ///
    /// Example: ccp registry import deploy/demo/registry.json
    Import {
        /// The file (`.csv`, or JSON otherwise).
        file: PathBuf,
        /// Accounts' facts API (default: `accounts.server.internal_listen`, else
        /// `accounts.server.listen`).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
    },
}

/// A service `ccp serve` runs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Service {
    /// Sign-in, profiles, sessions, signing keys, machine credentials.
    Identity,
    /// Registry, registration, program accounts, employees, roles, groups.
    Accounts,
    /// Relationship requests, relationships, client groups, assignments.
    Delegation,
    /// Authentication, the policy table, the decision API, forwarding.
    Gateway,
    /// E-mail notices of delegation's and accounts' events (one replica at a time).
    Notifications,
}

impl Service {
    /// Returns the service's name (`gateway`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Accounts => "accounts",
            Self::Delegation => "delegation",
            Self::Gateway => "gateway",
            Self::Notifications => "notifications",
        }
    }
}

/// A service with a database (`ccp migrate`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DatabaseService {
    /// The identity service's schema.
    Identity,
    /// The accounts service's schema.
    Accounts,
    /// The delegation service's schema.
    Delegation,
    /// The notifications service's schema (the sent ledger).
    Notifications,
}

/// The commands that run and operate the suite; every other command is a
/// client of the gateway. `ccp --help` lists them under two headings.
pub const SUITE_COMMANDS: &[&str] = &[
    "up",
    "serve",
    "migrate",
    "dev-token",
    "test-issuer",
    "health",
    "keys",
    "bench",
    "registry",
    "demo",
    "notifications",
    "mail",
    "completions",
];

/// Returns the `ccp` command line with its subcommands grouped in
/// `ccp --help`: the suite's commands, then the client's.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let command = Cli::command();
    let width = command
        .get_subcommands()
        .map(|sub| sub.get_name().len())
        .max()
        .unwrap_or(0);
    let (mut suite, mut client) = (String::new(), String::new());
    for sub in command.get_subcommands() {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        let about = summary(&about);
        let line = format!("  {:<width$}  {about}\n", sub.get_name());
        if SUITE_COMMANDS.contains(&sub.get_name()) {
            suite.push_str(&line);
        } else {
            client.push_str(&line);
        }
    }
    command.help_template(format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n\
         Suite commands (run and operate CCP):\n{suite}\n\
         Client commands (call the gateway; sign in with `ccp login`):\n{client}\n\
         Options:\n{{options}}{{after-help}}"
    ))
}

/// Returns the first sentence of a command's about, at most 76 characters.
fn summary(about: &str) -> String {
    let first = about
        .split_once(". ")
        .map_or(about, |(sentence, _)| sentence)
        .trim_end_matches('.');
    if first.chars().count() <= 76 {
        return first.to_owned();
    }
    let mut short: String = first.chars().take(75).collect();
    short.push('…');
    short
}
