//! `ccp`: run the CCP suite and work with it.
//!
//! `ccp up` runs all four services in one process on the embedded default;
//! `ccp serve <service>` runs one service from configuration (PostgreSQL and
//! Redis); `ccp migrate <service>` applies a service's migrations;
//! `ccp dev-token <user>` and `ccp keys rotate` are identity's commands;
//! `ccp login`, `ccp business …`, `ccp employee …`, `ccp relationship …` and
//! the other client commands (see `ccp --help`) talk to a running gateway.

use std::path::PathBuf;

use ccp::embedded::Suite;
use ccp::settings::SuiteSettings;
use ccp_platform::config::DatabaseSettings;
use ccp_platform::context::ServiceContext;
use clap::{Parser, Subcommand, ValueEnum};
use sea_orm_migration::MigratorTrait;

/// The CCP command: identity, business accounts and delegation of authority
/// for a customs client portal.
#[derive(Debug, Parser)]
#[command(name = "ccp", version, about, long_about = None)]
struct Cli {
    /// A TOML configuration file; `CCP_…` environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
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
        #[command(subcommand)]
        command: ccp::identity_cmd::TestIssuerCommand,
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
        #[command(subcommand)]
        command: ccp::identity_cmd::KeysCommand,
        /// The data directory of `ccp up` (default `.ccp`, or `data_dir` from the configuration).
        #[arg(long, value_name = "DIR", global = true)]
        data_dir: Option<PathBuf>,
    },
    /// Runs a benchmark scenario (see BENCHMARKS.md): it starts what it
    /// measures, measures a baseline in the same run, and prints a table
    /// (and one JSON object on the last line with `--json`).
    ///
    /// Example: ccp bench check --quick --json
    Bench(ccp::bench::BenchArgs),
    /// Works with the CRA registry records that registrations are checked against.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Works with the guide's demo data.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    #[command(flatten)]
    Client(ccp::client::ClientCommand),
}

#[derive(Debug, Subcommand)]
enum DemoCommand {
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
        /// The accounts service, for the registry import (default: `accounts.server.listen`).
        #[arg(long, value_name = "URL")]
        accounts: Option<String>,
        /// The data directory of `ccp up` (its internal and dev-issuer keys).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Upserts registry records from a CSV or JSON file through the accounts
    /// service (of a running `ccp up`, or `--endpoint`) and prints the records
    /// accepted and rejected with reasons.
    ///
    /// Example: ccp registry import deploy/demo/registry.json
    Import {
        /// The file (`.csv`, or JSON otherwise).
        file: PathBuf,
        /// The accounts endpoint (default: `accounts.server.listen`).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Service {
    Identity,
    Accounts,
    Delegation,
    Gateway,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DatabaseService {
    Identity,
    Accounts,
    Delegation,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Client(command) = cli.command {
        // Client commands print their own errors and choose their exit codes.
        let settings = match SuiteSettings::load(cli.config.as_deref()) {
            Ok(settings) => settings,
            Err(err) => {
                eprintln!("error: {err}");
                return std::process::ExitCode::from(2);
            }
        };
        return ccp::client::run(settings, command).await;
    }
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = SuiteSettings::load(cli.config.as_deref())?;
    if matches!(cli.command, Command::Bench(_))
        && std::env::var_os("CCP_TELEMETRY__LOG_FILTER").is_none()
    {
        // The benchmark's output is its table and JSON line: services log warnings only.
        settings.common.telemetry.log_filter = "warn".to_owned();
    }
    let _telemetry = ccp_platform::telemetry::init(&settings.common.telemetry)?;
    match cli.command {
        Command::Up { data_dir, demo } => {
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            up(settings, demo).await
        }
        Command::Serve { service } => serve(settings, service).await,
        Command::Migrate { service } => migrate(settings, service).await,
        Command::DevToken {
            user,
            ttl_secs,
            data_dir,
        } => {
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            let token = ccp::identity_cmd::dev_token(
                &settings,
                &user,
                std::time::Duration::from_secs(ttl_secs),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Health {
            endpoint,
            service,
            wait_secs,
        } => {
            ccp::health_cmd::run(
                &endpoint,
                &service,
                std::time::Duration::from_secs(wait_secs.min(3600)),
            )
            .await
        }
        Command::TestIssuer { command } => ccp::identity_cmd::test_issuer_command(command),
        Command::Keys { command, data_dir } => {
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            ccp::identity_cmd::keys(&settings, command).await
        }
        Command::Bench(args) => ccp::bench::run_and_print(&args).await,
        Command::Registry {
            command: RegistryCommand::Import { file, endpoint },
        } => ccp::registry_cmd::import(settings, &file, endpoint).await,
        Command::Demo {
            command:
                DemoCommand::Load {
                    gateway,
                    accounts,
                    data_dir,
                },
        } => {
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            ccp::demo::load_command(&settings, gateway, accounts).await
        }
        Command::Client(_) => anyhow::bail!("client commands are dispatched before `run`"),
    }
}

async fn up(mut settings: SuiteSettings, demo: bool) -> anyhow::Result<()> {
    settings.resolve_internal_key(true)?;
    let context = ServiceContext::from_settings(&settings.common).await?;
    let data_dir = settings.data_dir.clone();
    let dev_issuer = settings.identity.dev_issuer.enabled != Some(false)
        && settings.common.environment != ccp_platform::config::Environment::Production;
    let suite = Suite::start(settings.clone(), context).await?;
    let endpoints = suite.endpoints();
    println!(
        "CCP is up (embedded; data in {}). Endpoints:",
        data_dir.display()
    );
    for (name, addr) in endpoints.all() {
        let role = if name == "gateway" {
            "  <- call this one"
        } else {
            ""
        };
        println!("  {name:<10} http://{addr}{role}");
    }
    if dev_issuer {
        println!(
            "Development issuer ON: `ccp dev-token <user>` prints a sign-in token for a test user."
        );
    }
    if demo && let Err(err) = ccp::demo::up_demo(&settings, &suite).await {
        let _ = suite.stop().await;
        return Err(err);
    }
    println!("Press Ctrl-C to stop.");
    ccp_platform::server::shutdown_signal().await;
    println!("stopping: draining calls in flight");
    suite.stop().await
}

fn require_database(db: &DatabaseSettings, key: &str) -> anyhow::Result<()> {
    if secrecy::ExposeSecret::expose_secret(&db.url).is_empty() {
        anyhow::bail!(
            "{key}.url is not set (env {}); `ccp serve` needs a database",
            ccp_platform::config::env_name(&format!("{key}.url"))
        );
    }
    Ok(())
}

async fn serve(settings: SuiteSettings, service: Service) -> anyhow::Result<()> {
    // Every process starts while Redis is down: a service publishes through
    // its outbox, and the gateway confirms revocations with identity (R-GW-4).
    let redis = ccp_platform::context::RedisAtStart::Optional;
    let context = ServiceContext::from_settings_with(&settings.common, redis).await?;
    let shutdown = ccp_platform::server::shutdown_signal();
    match service {
        Service::Identity => {
            require_database(&settings.identity.database, "identity.database")?;
            let app = ccp_identity::Application::build(&context, &settings.identity).await?;
            println!("identity listening on http://{}", app.local_addr());
            app.run_until_stopped(shutdown).await
        }
        Service::Accounts => {
            require_database(&settings.accounts.database, "accounts.database")?;
            let app = ccp_accounts::Application::build(&context, &settings.accounts).await?;
            println!("accounts listening on http://{}", app.local_addr());
            app.run_until_stopped(shutdown).await
        }
        Service::Delegation => {
            require_database(&settings.delegation.database, "delegation.database")?;
            let app = ccp_delegation::Application::build(&context, &settings.delegation).await?;
            println!("delegation listening on http://{}", app.local_addr());
            app.run_until_stopped(shutdown).await
        }
        Service::Gateway => {
            let app = ccp_gateway::Application::build(&context, &settings.gateway).await?;
            println!("gateway listening on http://{}", app.local_addr());
            app.run_until_stopped(shutdown).await
        }
    }
}

async fn migrate(settings: SuiteSettings, service: DatabaseService) -> anyhow::Result<()> {
    let settings = settings.with_embedded_databases();
    let (name, db) = match service {
        DatabaseService::Identity => ("identity", &settings.identity.database),
        DatabaseService::Accounts => ("accounts", &settings.accounts.database),
        DatabaseService::Delegation => ("delegation", &settings.delegation.database),
    };
    if !db.is_postgres() {
        std::fs::create_dir_all(&settings.data_dir)?;
    }
    let conn = ccp_platform::db::connect(&db.for_service(name)).await?;
    let pending = match service {
        DatabaseService::Identity => migrate_with::<ccp_identity::store::Migrator>(&conn).await?,
        DatabaseService::Accounts => migrate_with::<ccp_accounts::store::Migrator>(&conn).await?,
        DatabaseService::Delegation => {
            migrate_with::<ccp_delegation::store::Migrator>(&conn).await?
        }
    };
    println!("{name}: applied {pending} migration(s); schema is up to date");
    Ok(())
}

async fn migrate_with<M: MigratorTrait>(
    db: &sea_orm_migration::sea_orm::DatabaseConnection,
) -> anyhow::Result<usize> {
    let state = ccp_platform::db::migration_state::<M>(db).await?;
    if !state.newer.is_empty() {
        // A rolled-back release: the schema is ahead of this binary.
        if state.pending.is_empty() {
            println!(
                "the schema has {} migration(s) newer than this release ({}); nothing to apply",
                state.newer.len(),
                state.newer.join(", ")
            );
            return Ok(0);
        }
        anyhow::bail!(
            "the schema has migrations newer than this release ({}) and lacks some of its own ({}): migrate with the newest release",
            state.newer.join(", "),
            state.pending.join(", ")
        );
    }
    M::up(db, None).await?;
    Ok(state.pending.len())
}
