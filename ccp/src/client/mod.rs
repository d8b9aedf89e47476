//! The `ccp` client commands: one for each step of the registration guide,
//! all talking to the gateway.
//!
//! Sign in (`ccp login`), keep the session in the user's configuration
//! directory (refreshed when it is about to expire, or once when the gateway
//! says it has), then act: profile, business registration, employees and
//! roles, employee groups, relationships with brokers, client groups and
//! assignments, machine credentials, authorization checks and the audit
//! history. Tables for people; `--json` prints one proto3 JSON document for
//! scripts. Exit codes (see [`CliError::exit_code`]) tell scripts what went wrong.

pub mod session;

mod accounts;
mod audit;
mod authz;
mod delegation;
mod error;
mod identity;
pub mod lang;
pub(crate) mod output;
mod paging;
mod parse;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ccp_platform::clock::Clock;
use clap::{Args, Subcommand};
use tonic::transport::Channel;

use crate::settings::SuiteSettings;
use session::{SessionFile, SessionKind};

pub use accounts::{BusinessArgs, EmployeeArgs, GroupArgs, TermsArgs};
pub use audit::AuditArgs;
pub use authz::{AccessibleArgs, CheckArgs, ExplainArgs};
pub use delegation::{AssignmentArgs, ClientGroupArgs, RelationshipArgs};
pub use error::{CliError, code_name};
pub use identity::{CredentialArgs, LoginArgs, LogoutArgs, ProfileArgs, WhoamiArgs};

/// The most pages a list command reads (each of 100 items).
const MAX_PAGES: usize = 100;

/// Options every client command takes.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientOptions {
    /// The gateway to call (default: the session's, else http://127.0.0.1:50050).
    #[arg(long, global = true, env = "CCP_GATEWAY_URL", value_name = "URL")]
    pub gateway: Option<String>,
    /// The CA certificate (PEM) an `https://` gateway's certificate is
    /// checked against (default: `upstream.tls_ca`, else the system's roots).
    #[arg(long, global = true, env = "CCP_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The session file (default: ~/.config/ccp/session.json).
    #[arg(long, global = true, env = "CCP_SESSION", value_name = "FILE")]
    pub session: Option<PathBuf>,
    /// Prints one JSON document (proto3 JSON; lists as arrays) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Prints only the name of what was created or listed, one per line
    /// (for shell variables: `REQ=$(ccp employee requests 123456782 -q)`).
    #[arg(long, short = 'q', global = true, conflicts_with = "json")]
    pub quiet: bool,
    /// The idempotency key of a write (default: a fresh one); repeat a write
    /// with the same key to retry it safely.
    #[arg(long, global = true, value_name = "ID")]
    pub request_id: Option<String>,
    /// List commands: print the one page at this token (`""` for the first)
    /// and say the next page's token on stderr.
    #[arg(long, global = true, value_name = "TOKEN", conflicts_with = "all")]
    pub page_token: Option<String>,
    /// List commands: read every page (by default a list stops after
    /// 10,000 items and says how to read on).
    #[arg(long, global = true)]
    pub all: bool,
    /// The language of human output, en or fr (default: your profile's language, else
    /// English); JSON is never translated. `ccp profile create` also takes it as your
    /// preferred language.
    #[arg(
        long,
        global = true,
        env = "CCP_LANGUAGE",
        value_enum,
        value_name = "en|fr"
    )]
    pub language: Option<lang::Language>,
    /// List commands: items per page asked of the server (1–1000; default 100).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub page_size: Option<i32>,
}

/// How many pages a list command reads.
#[derive(Debug, Clone)]
enum Pages {
    /// Up to [`MAX_PAGES`] from the first.
    Default,
    /// One page, from this token.
    One(String),
    /// Every page (bounded by [`ALL_PAGES`]).
    All,
}

/// The most pages `--all` reads (a bound, not a limit anyone meets: 100
/// million items at the default page size).
const ALL_PAGES: usize = 1_000_000;

/// The client commands (flattened into `ccp`'s own).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Signs in through the gateway and keeps the session.
    ///
    /// Examples:
    ///   ccp login --dev alice                      # development issuer (ccp up)
    ///   ccp login --id-token-file token.jwt        # a token from a trusted issuer
    ///   ccp login --client-id ID --client-secret-file secret.txt   # a machine credential
    #[command(verbatim_doc_comment)]
    Login(LoginArgs),
    /// Signs out (revokes the session) and forgets it.
    ///
    /// Example: ccp logout
    Logout(LogoutArgs),
    /// Shows who the session belongs to and when it expires.
    ///
    /// Example: ccp whoami
    Whoami(WhoamiArgs),
    /// Your personal profile: create it after the first sign-in, show, update.
    Profile(ProfileArgs),
    /// Shows the current Terms & Conditions a registration accepts.
    ///
    /// Example: ccp terms --language fr
    Terms(TermsArgs),
    /// Registers a business by its Business Number and shows businesses.
    Business(BusinessArgs),
    /// Employees: ask for access, approve or reject requests, roles, removal.
    Employee(EmployeeArgs),
    /// Employee groups: roles for several employees at once.
    Group(GroupArgs),
    /// Relationships between a customs broker (provider) and an importer (client).
    Relationship(RelationshipArgs),
    /// A broker's client groups.
    ClientGroup(ClientGroupArgs),
    /// A broker's assignments of its employees to clients or client groups.
    Assignment(AssignmentArgs),
    /// Machine credentials of a business (broker systems).
    Credential(CredentialArgs),
    /// Asks the gateway whether you (or a principal) may act on a resource.
    ///
    /// Exit code 0 when allowed, 10 when denied.
    ///
    /// Examples:
    ///   ccp check view 123456782RM0001 --submitted-by 888316171
    ///   ccp check manage 123456782
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),
    /// Lists every business and program you (or a principal) may act on.
    ///
    /// Example: ccp accessible view
    Accessible(AccessibleArgs),
    /// Explains a decision with the facts behind it (operators: needs the internal key).
    ///
    /// Example: ccp explain person:0197… view 123456782RM0001 --data-dir .ccp
    Explain(ExplainArgs),
    /// Exports a business's (or your own) audit history as CSV or JSON.
    ///
    /// Examples:
    ///   ccp audit export 123456782 --format csv --output abc-audit.csv
    ///   ccp audit export --mine --format json
    #[command(verbatim_doc_comment)]
    Audit(AuditArgs),
}

impl ClientCommand {
    fn options(&self) -> &ClientOptions {
        match self {
            Self::Login(a) => &a.options,
            Self::Logout(a) => &a.options,
            Self::Whoami(a) => &a.options,
            Self::Profile(a) => &a.options,
            Self::Terms(a) => &a.options,
            Self::Business(a) => &a.options,
            Self::Employee(a) => &a.options,
            Self::Group(a) => &a.options,
            Self::Relationship(a) => &a.options,
            Self::ClientGroup(a) => &a.options,
            Self::Assignment(a) => &a.options,
            Self::Credential(a) => &a.options,
            Self::Check(a) => &a.options,
            Self::Accessible(a) => &a.options,
            Self::Explain(a) => &a.options,
            Self::Audit(a) => &a.options,
        }
    }
}

/// What a command needs: settings, clock, session and the gateway channel.
pub struct Ctx {
    settings: SuiteSettings,
    clock: Clock,
    json: bool,
    quiet: bool,
    request_id: String,
    gateway_flag: Option<String>,
    ca_file: Option<PathBuf>,
    session_path: PathBuf,
    session: Option<SessionFile>,
    channel: Option<Channel>,
    connected_to: Option<String>,
    pages: Pages,
    page_size: Option<i32>,
    refreshed: bool,
    language_flag: Option<lang::Language>,
}

impl Ctx {
    fn new(settings: SuiteSettings, options: &ClientOptions) -> Result<Self, CliError> {
        let clock = settings
            .common
            .clock
            .build(settings.common.environment)
            .map_err(|err| CliError::Other(err.into()))?;
        let session_path = options
            .session
            .clone()
            .unwrap_or_else(session::default_path);
        let session = session::load(&session_path)?;
        let profile_language = session
            .as_ref()
            .and_then(|s| s.language.as_deref())
            .and_then(lang::Language::from_tag);
        lang::set(options.language.or(profile_language).unwrap_or_default());
        Ok(Self {
            settings,
            clock,
            json: options.json,
            quiet: options.quiet,
            request_id: options
                .request_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            gateway_flag: options.gateway.clone(),
            ca_file: options.ca_file.clone(),
            session_path,
            session,
            channel: None,
            connected_to: None,
            pages: match (&options.page_token, options.all) {
                (Some(token), _) => Pages::One(token.clone()),
                (None, true) => Pages::All,
                (None, false) => Pages::Default,
            },
            page_size: options.page_size,
            refreshed: false,
            language_flag: options.language,
        })
    }

    /// Returns true when the output is JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Returns true when only names are printed (`--quiet`).
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Returns the idempotency key of this command's write(s).
    pub fn request_id(&self) -> String {
        self.request_id.clone()
    }

    /// Returns the configured clock's now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Returns the settings the command was started with.
    pub fn settings(&self) -> &SuiteSettings {
        &self.settings
    }

    /// Returns the gateway URL: `--gateway`, else the session's, else the
    /// running suite's (the state file of `ccp up`), else the default.
    pub fn gateway_url(&self) -> String {
        if let Some(url) = &self.gateway_flag {
            return url.clone();
        }
        if let Some(session) = &self.session {
            return session.gateway.clone();
        }
        self.suite_gateway_url()
    }

    /// Makes the command call the gateway to sign in at: `--gateway`, else
    /// the running suite's (the state file of `ccp up`), else the session's,
    /// else the default — a new session belongs to the suite that runs now.
    pub fn sign_in_at_the_running_suite(&mut self) {
        if self.gateway_flag.is_none()
            && let Ok(Some(state)) = crate::suite_state::running()
        {
            self.gateway_flag = Some(state.gateway);
        }
    }

    fn suite_gateway_url(&self) -> String {
        if let Ok(Some(state)) = crate::suite_state::running() {
            return state.gateway;
        }
        let server = &self.settings.gateway.server;
        let listen = server.listen.replace("0.0.0.0", "127.0.0.1");
        format!("{}://{listen}", server.scheme())
    }

    /// Returns a channel to the gateway (connected lazily, once).
    pub async fn channel(&mut self) -> Result<Channel, CliError> {
        if let Some(channel) = &self.channel {
            return Ok(channel.clone());
        }
        let url = self.gateway_url();
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|_| CliError::usage(format!("`{url}` is not a gateway URL")))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60));
        // An https:// gateway: checked against --ca-file, else
        // `upstream.tls_ca`, else the system's roots; `upstream.tls_cert`
        // is presented when the gateway asks for a client certificate.
        let mut tls = self.settings.common.upstream.clone();
        if let Some(ca) = &self.ca_file {
            tls.tls_ca = ca.display().to_string();
        }
        if let Some(config) = ccp_platform::tls::client_config(&tls, endpoint.uri())? {
            endpoint = endpoint
                .tls_config(config)
                .map_err(|err| CliError::Other(err.into()))?;
        }
        // Connected at the first call, so that a command checks what was
        // typed (a business number's check digit) before it needs the gateway.
        let channel = endpoint.connect_lazy();
        self.channel = Some(channel.clone());
        self.connected_to = Some(url);
        Ok(channel)
    }

    /// Says which gateway could not be reached, and why, when the connection
    /// itself failed (a status made by the client's transport carries its
    /// cause chain, e.g. `invalid peer certificate: UnknownIssuer`; one the
    /// gateway answered does not).
    fn name_the_unreachable_gateway(&self, err: CliError) -> CliError {
        match (&err, &self.connected_to) {
            (CliError::Status(status), Some(url))
                if ccp_platform::error::is_transport_failure(status)
                    // HTTP/2 spoken to a TLS listener (or the reverse).
                    || (status.code() == tonic::Code::Internal
                        && std::error::Error::source(status).is_some()) =>
            {
                let cause = std::error::Error::source(status)
                    .map(ccp_platform::error::cause_chain)
                    .unwrap_or_default();
                let message = status.message();
                let why = if cause.contains(message) {
                    cause
                } else {
                    format!("{message}: {cause}")
                };
                CliError::Status(tonic::Status::unavailable(format!(
                    "cannot reach the gateway at {url}: {why}"
                )))
            }
            _ => err,
        }
    }

    /// Returns the session, refreshing it first when its access token
    /// expires within a minute; NotSignedIn when there is none.
    pub async fn session(&mut self) -> Result<&SessionFile, CliError> {
        let Some(session) = &self.session else {
            return Err(CliError::NotSignedIn(
                "not signed in: run `ccp login` first".to_owned(),
            ));
        };
        let expiring =
            session.access_expire_time <= self.clock.now() + chrono::Duration::seconds(60);
        if expiring && !self.refreshed {
            self.refresh().await?;
        }
        self.session
            .as_ref()
            .ok_or_else(|| CliError::NotSignedIn("not signed in".to_owned()))
    }

    /// Returns `message` as a request carrying the session's access token.
    pub async fn request<T>(&mut self, message: T) -> Result<tonic::Request<T>, CliError> {
        let token = self.session().await?.access_token.clone();
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::NotSignedIn("the stored access token is damaged".into()))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }

    /// Sends `message` with the session's access token through `rpc` (one
    /// client method, e.g. `async |r| client.get_member(r).await`) and returns the answer.
    pub async fn call<Req, Resp>(
        &mut self,
        message: Req,
        rpc: impl AsyncFnOnce(tonic::Request<Req>) -> Result<tonic::Response<Resp>, tonic::Status>,
    ) -> Result<Resp, CliError> {
        let request = self.request(message).await?;
        Ok(rpc(request).await?.into_inner())
    }

    /// Reads the pages of the list `request` through `rpc` (one client
    /// method, e.g. `async |r| client.list_employees(r).await`) and returns
    /// their items: up to [`MAX_PAGES`] pages, one page with `--page-token`,
    /// every page with `--all`. When pages remain, says on stderr how to
    /// read on.
    pub async fn list<Req: paging::Paged>(
        &mut self,
        request: Req,
        mut rpc: impl AsyncFnMut(
            tonic::Request<Req>,
        ) -> Result<tonic::Response<Req::Response>, tonic::Status>,
    ) -> Result<Vec<Req::Item>, CliError> {
        let (mut token, max_pages) = match &self.pages {
            Pages::Default => (String::new(), MAX_PAGES),
            Pages::One(token) => (token.clone(), 1),
            Pages::All => (String::new(), ALL_PAGES),
        };
        let request = match self.page_size {
            Some(size) => request.sized(size),
            None => request,
        };
        let mut items = Vec::new();
        for _ in 0..max_pages {
            let page = self.request(request.at(token)).await?;
            let (page_items, next) = Req::split(rpc(page).await?.into_inner());
            items.extend(page_items);
            token = next;
            if token.is_empty() {
                break;
            }
        }
        if !token.is_empty() {
            match self.pages {
                Pages::One(_) => eprintln!("{}", lang::tf("next-page", &[("token", &token)])),
                _ => eprintln!(
                    "{}",
                    lang::tf(
                        "more-items-remain",
                        &[("count", &items.len().to_string()), ("token", &token)]
                    )
                ),
            }
        }
        Ok(items)
    }

    /// Exchanges the refresh token for a new session (once per command).
    async fn refresh(&mut self) -> Result<(), CliError> {
        self.refreshed = true;
        let Some(current) = self.session.clone() else {
            return Err(CliError::NotSignedIn("not signed in".into()));
        };
        let now = self.clock.now();
        let refreshable = current.kind == SessionKind::Person
            && !current.refresh_token.is_empty()
            && current.refresh_expire_time.is_none_or(|t| t > now);
        if !refreshable {
            return Err(CliError::NotSignedIn(match current.kind {
                SessionKind::Machine => {
                    "the machine token expired: run `ccp login --client-id …` again".into()
                }
                SessionKind::Person => "the session expired: run `ccp login` again".into(),
            }));
        }
        let channel = self.channel().await?;
        let mut client = ccp_proto::identity::v1::identity_client::IdentityClient::new(channel);
        let fresh = client
            .refresh_session(ccp_proto::identity::v1::RefreshSessionRequest {
                refresh_token: current.refresh_token.clone(),
            })
            .await
            .map_err(|status| {
                if status.code() == tonic::Code::Unauthenticated {
                    CliError::NotSignedIn(
                        "the session ended or expired: run `ccp login` again".into(),
                    )
                } else {
                    CliError::Status(status)
                }
            })?
            .into_inner();
        let updated = identity::session_from(&current.gateway, &fresh);
        session::save(&self.session_path, &updated)?;
        self.session = Some(updated);
        Ok(())
    }

    /// Stores a new session.
    pub fn store_session(&mut self, mut session: SessionFile) -> Result<(), CliError> {
        // A refreshed session of the same person keeps the language their profile said.
        if session.language.is_none()
            && let Some(old) = &self.session
            && old.principal == session.principal
        {
            session.language.clone_from(&old.language);
        }
        session::save(&self.session_path, &session)?;
        self.session = Some(session);
        self.refreshed = true;
        Ok(())
    }

    /// Remembers the language a profile (identity's `Language` value) prefers: kept in the
    /// session for the next commands, and used for the rest of this one unless `--language`
    /// was given.
    pub fn remember_language(&mut self, preferred: i32) -> Result<(), CliError> {
        let Some(language) = lang::Language::from_proto(preferred) else {
            return Ok(());
        };
        if self.language_flag.is_none() {
            lang::set(language);
        }
        let tag = Some(language.tag().to_owned());
        match &mut self.session {
            Some(session) if session.language != tag => {
                session.language = tag;
                session::save(&self.session_path, session)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Returns the `--language` the command was given (or `CCP_LANGUAGE`).
    pub fn language_flag(&self) -> Option<lang::Language> {
        self.language_flag
    }

    /// Forgets the session.
    pub fn forget_session(&mut self) -> Result<(), CliError> {
        session::delete(&self.session_path)?;
        self.session = None;
        Ok(())
    }

    /// Returns the stored session without refreshing it.
    pub fn stored_session(&self) -> Option<&SessionFile> {
        self.session.as_ref()
    }
}

/// Runs a client command and returns the process exit code.
pub async fn run(settings: SuiteSettings, command: ClientCommand) -> ExitCode {
    let options = command.options().clone();
    let mut ctx = match Ctx::new(settings, &options) {
        Ok(ctx) => ctx,
        Err(err) => {
            err.report(options.json);
            return ExitCode::from(err.exit_code());
        }
    };
    let mut result = dispatch(&mut ctx, &command).await;
    // The gateway refused the access token (expired or revoked): refresh once
    // and run the command again; writes repeat with the same idempotency key.
    if let Err(CliError::Status(status)) = &result
        && status.code() == tonic::Code::Unauthenticated
        && !ctx.refreshed
        && ctx.session.is_some()
        && !matches!(command, ClientCommand::Login(_) | ClientCommand::Logout(_))
    {
        result = match ctx.refresh().await {
            Ok(()) => dispatch(&mut ctx, &command).await,
            Err(err) => Err(err),
        };
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let err = ctx.name_the_unreachable_gateway(err);
            err.report(ctx.json);
            ExitCode::from(err.exit_code())
        }
    }
}

async fn dispatch(ctx: &mut Ctx, command: &ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Login(args) => identity::login(ctx, args).await,
        ClientCommand::Logout(_) => identity::logout(ctx).await,
        ClientCommand::Whoami(_) => identity::whoami(ctx).await,
        ClientCommand::Profile(args) => identity::profile(ctx, args).await,
        ClientCommand::Credential(args) => identity::credential(ctx, args).await,
        ClientCommand::Terms(args) => accounts::terms(ctx, args).await,
        ClientCommand::Business(args) => accounts::business(ctx, args).await,
        ClientCommand::Employee(args) => accounts::employee(ctx, args).await,
        ClientCommand::Group(args) => accounts::group(ctx, args).await,
        ClientCommand::Relationship(args) => delegation::relationship(ctx, args).await,
        ClientCommand::ClientGroup(args) => delegation::client_group(ctx, args).await,
        ClientCommand::Assignment(args) => delegation::assignment(ctx, args).await,
        ClientCommand::Check(args) => authz::check(ctx, args).await,
        ClientCommand::Accessible(args) => authz::accessible(ctx, args).await,
        ClientCommand::Explain(args) => authz::explain(ctx, args).await,
        ClientCommand::Audit(args) => audit::export(ctx, args).await,
    }
}

/// Prints `message` as JSON, its primary name (`--quiet`), or runs `human`
/// to print it for people.
pub fn emit<M: prost::Message + prost::Name>(ctx: &Ctx, message: &M, human: impl FnOnce(&M)) {
    if ctx.json {
        output::print_json(&output::to_json(message));
    } else if ctx.quiet {
        if let Some(name) = output::primary_name(&output::to_json(message)) {
            println!("{name}");
        }
    } else {
        human(message);
    }
}

/// Prints `message` (JSON, `--quiet` name) or, for people, its nested `part`
/// with `print` (e.g. the group a write returned).
pub fn emit_part<M: prost::Message + prost::Name, P>(
    ctx: &Ctx,
    message: &M,
    part: Option<&P>,
    print: impl FnOnce(&P),
) {
    emit(ctx, message, |_| {
        if let Some(part) = part {
            print(part);
        }
    });
}

/// Prints `message` (JSON, `--quiet` name) or, for people, the line of message `heading` of
/// the catalogue ([`lang`]) and then its nested `part` with `print` (e.g. "approved" and the
/// member).
pub fn emit_headed<M: prost::Message + prost::Name, P>(
    ctx: &Ctx,
    message: &M,
    heading: &str,
    part: Option<&P>,
    print: impl FnOnce(&P),
) {
    emit(ctx, message, |_| {
        println!("{}", lang::t(heading));
        if let Some(part) = part {
            print(part);
        }
    });
}

/// Prints `items` as a JSON array, their names (`--quiet`), or runs `human`
/// to print them for people.
pub fn emit_list<M: prost::Message + prost::Name>(
    ctx: &Ctx,
    items: &[M],
    human: impl FnOnce(&[M]),
) {
    if ctx.json {
        output::print_json(&output::to_json_list(items));
    } else if ctx.quiet {
        for item in items {
            if let Some(name) = output::primary_name(&output::to_json(item)) {
                println!("{name}");
            }
        }
    } else {
        human(items);
    }
}

/// Reads a secret or token from a file (`-` for standard input), trimmed.
pub fn read_text_file(path: &std::path::Path) -> Result<String, CliError> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|err| {
            CliError::Other(anyhow::anyhow!("cannot read {}: {err}", path.display()))
        })?
    };
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(CliError::usage(format!("{} is empty", path.display())));
    }
    Ok(text)
}
