//! `ccp`: run the CCP suite and work with it.
//!
//! `ccp up` runs every service in one process on the embedded default;
//! `ccp serve <service>` runs one service from configuration (PostgreSQL and
//! Redis); `ccp migrate <service>` applies a service's migrations;
//! `ccp dev-token <user>` and `ccp keys rotate` are identity's commands;
//! `ccp login`, `ccp business …`, `ccp employee …`, `ccp relationship …` and
//! the other client commands (see `ccp --help`) talk to a running gateway.

use ccp::cli::{
    Cli, Command, DatabaseService, DemoCommand, MailCommand, NotificationsCommand, RegistryCommand,
    Service,
};
use ccp::embedded::Suite;
use ccp::settings::SuiteSettings;
use ccp_platform::config::DatabaseSettings;
use ccp_platform::context::ServiceContext;
use ccp_platform::telemetry::service_span;
use sea_orm_migration::MigratorTrait;
use tracing::Instrument as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = ccp::cli::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    if let Command::Client(command) = cli.command {
        // A client command piped into `head` ends quietly when the pipe
        // closes, as Unix tools do, instead of panicking on the next write.
        // Not by restoring SIGPIPE's default action: that also killed the
        // command, silently, when the gateway closed a socket it was writing
        // to (a TLS listener spoken to in plain HTTP/2, a gateway stopping).
        end_quietly_on_a_closed_pipe();
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
    // A process that runs one service names its spans after it (`ccp-gateway`).
    let telemetry = match &cli.command {
        Command::Serve { service } => settings.common.telemetry.for_service(service.name()),
        _ => settings.common.telemetry.clone(),
    };
    let _telemetry = ccp_platform::telemetry::init(&telemetry)?;
    // Serving processes expose their metrics (`telemetry.metrics_listen`).
    let metrics = match &cli.command {
        Command::Up { .. } | Command::Serve { .. } => {
            ccp_platform::metrics::serve(&telemetry.metrics_listen).await?
        }
        _ => None,
    };
    match cli.command {
        Command::Up { data_dir, demo } => {
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            up(settings, demo, metrics).await
        }
        Command::Serve { service } => {
            if let Some(metrics) = metrics {
                // Before the gRPC line: who waits for that one has this too.
                println!("{} metrics on {}", service.name(), metrics.url());
            }
            serve(settings, service).await
        }
        Command::Migrate { service } => migrate(settings, service).await,
        Command::DevToken {
            user,
            ttl_secs,
            data_dir,
        } => {
            let token = ccp::identity_cmd::dev_token(
                &settings,
                data_dir.as_deref(),
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
                &settings.common.upstream,
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
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut ccp::cli::command(),
                "ccp",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Registry {
            command: RegistryCommand::Import { file, endpoint },
        } => {
            let settings = ccp::suite_state::settings_for_suite(&settings, None)?;
            ccp::registry_cmd::import(settings, &file, endpoint).await
        }
        Command::Demo {
            command:
                DemoCommand::Load {
                    gateway,
                    accounts,
                    data_dir,
                },
        } => {
            let settings = ccp::suite_state::settings_for_suite(&settings, data_dir.as_deref())?;
            ccp::demo::load_command(&settings, gateway, accounts).await
        }
        Command::Notifications { command } => match command {
            NotificationsCommand::Failed {
                endpoint,
                json,
                data_dir,
            } => {
                let settings =
                    ccp::suite_state::settings_for_suite(&settings, data_dir.as_deref())?;
                ccp::notifications_cmd::failed(&settings, endpoint, json).await
            }
            NotificationsCommand::Retry {
                message_id,
                all: _,
                endpoint,
                json,
                data_dir,
            } => {
                let settings =
                    ccp::suite_state::settings_for_suite(&settings, data_dir.as_deref())?;
                ccp::notifications_cmd::retry(&settings, endpoint, message_id, json).await
            }
        },
        Command::Mail {
            command,
            data_dir,
            json,
        } => {
            let dir = ccp::suite_state::data_dir(&settings, data_dir.as_deref())?;
            let mail = ccp::mail_cmd::mail_dir(&settings.notifications.mail_dir, &dir);
            let entries = ccp::mail_cmd::read_dir(&mail)?;
            match command {
                None => ccp::mail_cmd::print_list(&entries, json),
                Some(MailCommand::Show { which }) => {
                    print!(
                        "{}",
                        ccp::mail_cmd::show(ccp::mail_cmd::find(&entries, &which)?)?
                    );
                }
            }
            Ok(())
        }
        Command::Client(_) => anyhow::bail!("client commands are dispatched before `run`"),
    }
}

async fn up(
    mut settings: SuiteSettings,
    demo: bool,
    metrics: Option<ccp_platform::metrics::MetricsEndpoint>,
) -> anyhow::Result<()> {
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
    if let Some(metrics) = metrics {
        println!("Metrics (Prometheus, every service): {}", metrics.url());
    }
    if dev_issuer {
        println!(
            "Development issuer ON: `ccp dev-token <user>` prints a sign-in token for a test user."
        );
    }
    // Client commands in any directory find this suite through the state file.
    let state = ccp::suite_state::SuiteState {
        data_dir: std::path::absolute(&data_dir)?,
        gateway: format!("http://{}", endpoints.gateway),
        identity: format!("http://{}", endpoints.identity),
        accounts: format!("http://{}", endpoints.accounts),
        delegation: format!("http://{}", endpoints.delegation),
        notifications: format!("http://{}", endpoints.notifications),
        pid: std::process::id(),
    };
    match state.record() {
        Ok(path) => println!(
            "Client commands find this suite through {}.",
            path.display()
        ),
        Err(err) => eprintln!(
            "warning: cannot record this suite for client commands ({err:#}); pass them --data-dir {} and --gateway {}",
            state.data_dir.display(),
            state.gateway
        ),
    }
    if demo && let Err(err) = ccp::demo::up_demo(&settings, &suite).await {
        state.forget();
        let _ = suite.stop().await;
        return Err(err);
    }
    println!("Press Ctrl-C to stop.");
    ccp_platform::server::shutdown_signal().await;
    println!("stopping: draining calls in flight");
    state.forget();
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

/// Makes a write to a closed stdout or stderr (which `println!` turns into a
/// panic) end the process quietly with 141, the status a shell reports for
/// SIGPIPE; other panics are reported as before. Hand-written: the one
/// crate for this (`sigpipe`) restores the signal, which sockets raise too.
fn end_quietly_on_a_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
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
            let span = service_span("identity");
            let app = ccp_identity::Application::build(&context, &settings.identity)
                .instrument(span.clone())
                .await?;
            println!(
                "identity listening on {}://{}",
                settings.identity.server.scheme(),
                app.local_addr()
            );
            app.run_until_stopped(shutdown).instrument(span).await
        }
        Service::Accounts => {
            require_database(&settings.accounts.database, "accounts.database")?;
            let span = service_span("accounts");
            let app = ccp_accounts::Application::build(&context, &settings.accounts)
                .instrument(span.clone())
                .await?;
            println!(
                "accounts listening on {}://{}",
                settings.accounts.server.scheme(),
                app.local_addr()
            );
            app.run_until_stopped(shutdown).instrument(span).await
        }
        Service::Delegation => {
            require_database(&settings.delegation.database, "delegation.database")?;
            let span = service_span("delegation");
            let app = ccp_delegation::Application::build(&context, &settings.delegation)
                .instrument(span.clone())
                .await?;
            println!(
                "delegation listening on {}://{}",
                settings.delegation.server.scheme(),
                app.local_addr()
            );
            app.run_until_stopped(shutdown).instrument(span).await
        }
        Service::Gateway => {
            let span = service_span("gateway");
            let app = ccp_gateway::Application::build(&context, &settings.gateway)
                .instrument(span.clone())
                .await?;
            println!(
                "gateway listening on {}://{}",
                settings.gateway.server.scheme(),
                app.local_addr()
            );
            app.run_until_stopped(shutdown).instrument(span).await
        }
        Service::Notifications => {
            let notifications = &settings.notifications;
            require_database(&notifications.database, "notifications.database")?;
            notifications.require_mail_destination()?;
            let span = service_span("notifications");
            let app = ccp_notifications::Application::build(&context, notifications)
                .instrument(span.clone())
                .await?;
            // Polled once so its signal handlers are in place before the lines below: a SIGTERM
            // right after them stops the service instead of killing the process.
            let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
            if futures::poll!(shutdown.clone()).is_ready() {
                return Ok(());
            }
            println!(
                "notifications listening on {}://{}",
                app.scheme(),
                app.local_addr()
            );
            println!("notifications consuming delegation's, accounts' and identity's events");
            app.run_until_stopped(shutdown).instrument(span).await?;
            Ok(())
        }
    }
}

async fn migrate(settings: SuiteSettings, service: DatabaseService) -> anyhow::Result<()> {
    let settings = settings.with_embedded_databases();
    let (name, db) = match service {
        DatabaseService::Identity => ("identity", &settings.identity.database),
        DatabaseService::Accounts => ("accounts", &settings.accounts.database),
        DatabaseService::Delegation => ("delegation", &settings.delegation.database),
        DatabaseService::Notifications => ("notifications", &settings.notifications.database),
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
        DatabaseService::Notifications => {
            migrate_with::<ccp_notifications::store::Migrator>(&conn).await?
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
