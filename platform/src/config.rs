//! Configuration: defaults compiled into the binary, then an optional file,
//! then environment variables `CCP_<SECTION>__<KEY>` (last wins), then
//! [`Validate::validate`], which names the key that is wrong.
//!
//! The whole suite reads one tree (`[identity]`, `[accounts]`, `[delegation]`,
//! `[gateway]` and the shared sections below); each binary deserializes the
//! parts it needs and ignores the rest.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The prefix of every environment variable the loader reads.
pub const ENV_PREFIX: &str = "CCP";

/// A configuration error naming the key that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key, e.g. `gateway.server.listen`; empty when the error is not about one key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// Returns an error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Returns the environment variable that sets this key, e.g. `CCP_GATEWAY__SERVER__LISTEN`.
    pub fn env_name(&self) -> String {
        env_name(&self.key)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "invalid configuration: {}", self.message)
        } else {
            write!(
                f,
                "invalid configuration key `{}` (env {}): {}",
                self.key,
                self.env_name(),
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// The command line of a per-service binary (`ccp-identity`, `ccp-gateway`…):
/// `--config FILE`, `--help` and `--version` (clap). Every setting is also an
/// environment variable (`CCP_<SERVICE>__…`); the README lists them.
#[derive(Debug, Clone, clap::Parser)]
pub struct ServiceArgs {
    /// A configuration file (TOML); environment variables override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

impl ServiceArgs {
    /// Parses the process's arguments for the binary `name`, described by
    /// `about`; prints help or the version and exits when asked (and a usage
    /// error with exit code 2 on a bad argument).
    pub fn parse_for(name: &'static str, about: &'static str) -> Self {
        Self::parse_from_for(name, about, std::env::args_os())
    }

    /// As [`ServiceArgs::parse_for`], from `args` (the first is the program).
    pub fn parse_from_for<I, T>(name: &'static str, about: &'static str, args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = Self::command()
            .name(name)
            .bin_name(name)
            .about(about)
            .version(env!("CARGO_PKG_VERSION"))
            .after_help("Every setting is also an environment variable (CCP_…); see the README.")
            .get_matches_from(args);
        Self::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
    }
}

/// Returns the environment variable name for a dotted key.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}_{}", key.replace('.', "__").to_uppercase())
}

/// Checks a loaded configuration, naming the first key that is wrong.
pub trait Validate {
    /// Returns an error naming the wrong key, if any.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Returns every dotted key the configuration accepts (see
    /// [`crate::config_keys::keys_of`]); when not empty, an environment
    /// variable that sets none of them is refused, naming the closest.
    fn known_keys() -> Vec<String>
    where
        Self: Sized,
    {
        Vec::new()
    }
}

/// Refuses a `CCP_…` variable that sets no key of `known`, naming the
/// closest key. A variable with a section (`__`) is a key by its name; one
/// without is taken for a key only when it is within two edits of a
/// top-level one (`CCP_ENVIRONMNT`), since commands read variables of their
/// own (`CCP_SESSION`, `CCP_GATEWAY_URL`).
pub fn check_env_keys<'a>(
    names: impl IntoIterator<Item = &'a String>,
    known: &[String],
) -> Result<(), ConfigError> {
    if known.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&String> = names.into_iter().collect();
    names.sort();
    for name in names {
        let Some(rest) = name.strip_prefix(&format!("{ENV_PREFIX}_")) else {
            continue;
        };
        let key = rest.to_lowercase().replace("__", ".");
        if known.contains(&key) {
            continue;
        }
        let sectioned = rest.contains("__");
        let candidates = known.iter().filter(|k| sectioned || !k.contains('.'));
        let Some((distance, closest)) = candidates.map(|k| (strsim::levenshtein(k, &key), k)).min()
        else {
            continue;
        };
        if sectioned || distance <= 2 {
            return Err(ConfigError::new(
                key,
                format!(
                    "{name} sets no configuration key; did you mean {} (`{closest}`)?",
                    env_name(closest)
                ),
            ));
        }
    }
    Ok(())
}

/// Returns the dotted key whose value is the string `value`, when exactly
/// one key has it (serde names no key for an unknown enum variant).
fn key_with_value(built: &config::Config, value: &str) -> Option<String> {
    fn walk(path: &str, node: &config::Value, value: &str, found: &mut Vec<String>) {
        match &node.kind {
            config::ValueKind::Table(table) => {
                for (name, child) in table {
                    let path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    walk(&path, child, value, found);
                }
            }
            config::ValueKind::String(text) if text == value => found.push(path.to_owned()),
            _ => {}
        }
    }
    let root: config::Value = built.clone().try_deserialize().ok()?;
    let mut found = Vec::new();
    walk("", &root, value, &mut found);
    match found.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    }
}

/// Loads `T` from compiled-in `defaults` (TOML), the optional `file`, and the
/// process environment, then validates it.
pub fn load<T: DeserializeOwned + Validate>(
    defaults: &str,
    file: Option<&Path>,
) -> Result<T, ConfigError> {
    load_with_env(defaults, file, std::env::vars().collect())
}

/// Loads `T` like [`load`] but from the given environment instead of the
/// process's (for tests, which must not mutate the process environment).
pub fn load_with_env<T: DeserializeOwned + Validate>(
    defaults: &str,
    file: Option<&Path>,
    env: HashMap<String, String>,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::new(
                "",
                format!("config file {} not found", path.display()),
            ));
        }
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}_")))
        .collect();
    check_env_keys(env.keys(), &T::known_keys())?;
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    let built = builder.build().map_err(from_config_error)?;
    let value: T = match built.clone().try_deserialize() {
        Ok(value) => value,
        Err(err) => {
            let mut err = from_config_error(err);
            // "unknown variant `prod`, expected one of …": name the key that says `prod`.
            if err.key.is_empty()
                && let Some(variant) = err
                    .message
                    .split_once("unknown variant `")
                    .and_then(|(_, rest)| rest.split_once('`'))
                    .map(|(variant, _)| variant.to_owned())
                && let Some(key) = key_with_value(&built, &variant)
            {
                err.key = key;
            }
            return Err(err);
        }
    };
    value.validate()?;
    Ok(value)
}

fn from_config_error(err: config::ConfigError) -> ConfigError {
    match err {
        config::ConfigError::Type {
            key,
            unexpected,
            expected,
            ..
        } => ConfigError::new(
            key.unwrap_or_default(),
            format!("expected {expected}, found {unexpected}"),
        ),
        config::ConfigError::At { error, key, .. } => {
            let inner = from_config_error(*error);
            match key {
                Some(key) if inner.key.is_empty() => ConfigError::new(key, inner.message),
                _ => inner,
            }
        }
        config::ConfigError::NotFound(key) => ConfigError::new(key, "missing"),
        other => {
            // Serde's messages for unknown variants and missing fields carry
            // no key; keep the text, it names the field.
            ConfigError::new("", other.to_string())
        }
    }
}

/// Checks that `value` is an `http://` or `https://` endpoint, naming `key`.
pub fn validate_endpoint(key: &str, value: &str) -> Result<(), ConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::new(key, "must start with http:// or https://"))?;
    if rest.is_empty() {
        return Err(ConfigError::new(key, "names no host"));
    }
    Ok(())
}

/// Where the suite runs; decides what configuration may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A developer's machine: the embedded default.
    #[default]
    Development,
    /// Automated tests.
    Test,
    /// A demonstration with the guide's cast.
    Demo,
    /// Production.
    Production,
}

impl Environment {
    /// Returns true where a settable clock is allowed (test and demo only).
    pub fn allows_settable_clock(self) -> bool {
        matches!(self, Self::Test | Self::Demo)
    }
}

/// Settings of a gRPC server (see [`crate::server`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// The address to listen on, e.g. `127.0.0.1:50051` (port 0 picks a free port).
    pub listen: String,
    /// The address the internal facts services listen on, apart from the
    /// public ones (so a network policy can admit only their callers); empty
    /// (the default) serves them on `listen` too.
    pub internal_listen: String,
    /// Requests taking longer are cancelled with DEADLINE_EXCEEDED.
    pub request_timeout_ms: u64,
    /// Requests in flight at once; more wait up to the load shedder.
    pub concurrency_limit: usize,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// On shutdown, how long the server keeps answering (health NOT_SERVING)
    /// before it stops accepting, so load balancers move away first.
    pub drain_delay_ms: u64,
    /// PEM certificate chain served over TLS (both listeners); empty (the
    /// default) serves plain HTTP/2. Read again when the file changes.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`; set with it.
    pub tls_key: String,
    /// PEM CA whose client certificates are required (mutual TLS); empty
    /// asks for none.
    pub tls_client_ca: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            internal_listen: String::new(),
            request_timeout_ms: 10_000,
            concurrency_limit: 1024,
            max_message_bytes: 4 * 1024 * 1024,
            drain_delay_ms: 0,
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_client_ca: String::new(),
        }
    }
}

impl ServerSettings {
    /// Returns where the internal facts services listen: `internal_listen`
    /// when set, else `listen`.
    pub fn facts_listen(&self) -> &str {
        if self.internal_listen.is_empty() {
            &self.listen
        } else {
            &self.internal_listen
        }
    }

    /// Returns the scheme callers use: `https` with `tls_cert` set, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_empty() {
            "http"
        } else {
            "https"
        }
    }

    /// Checks the settings, naming keys under `prefix` (e.g. `identity.server`).
    pub fn validate_at(&self, prefix: &str) -> Result<(), ConfigError> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::new(format!("{prefix}.listen"), e.to_string()))?;
        if !self.internal_listen.is_empty() {
            self.internal_listen.parse::<SocketAddr>().map_err(|e| {
                ConfigError::new(format!("{prefix}.internal_listen"), e.to_string())
            })?;
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::new(
                format!("{prefix}.request_timeout_ms"),
                "must be > 0",
            ));
        }
        if self.concurrency_limit == 0 {
            return Err(ConfigError::new(
                format!("{prefix}.concurrency_limit"),
                "must be > 0",
            ));
        }
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::new(
                format!("{prefix}.max_message_bytes"),
                "must be at least 1024",
            ));
        }
        crate::tls::validate_server(self, prefix)?;
        Ok(())
    }
}

/// Settings of a service's database.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH?mode=rwc` or `postgres://USER@HOST:PORT/DB`.
    pub url: SecretString,
    /// The PostgreSQL schema the service owns (created if missing); ignored for SQLite.
    pub schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Apply pending migrations at start (embedded mode); production runs
    /// `ccp migrate` as an explicit step and sets this to false.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            schema: None,
            max_connections: 10,
            connect_timeout_ms: 5_000,
            migrate_on_start: true,
        }
    }
}

impl DatabaseSettings {
    /// Returns settings for a SQLite file (created if missing).
    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            url: SecretString::from(format!("sqlite://{}?mode=rwc", path.display())),
            ..Self::default()
        }
    }

    /// Returns settings for a PostgreSQL URL.
    pub fn postgres(url: &str) -> Self {
        Self {
            url: SecretString::from(url.to_owned()),
            ..Self::default()
        }
    }

    /// Returns these settings for the service named `service`: without an
    /// explicit `schema`, the service's own name is its PostgreSQL schema.
    /// (A configuration that sets only `<service>.database.url` deserializes
    /// the section from [`DatabaseSettings::default`], whose schema is None;
    /// every service connects through this so its tables never land in
    /// `public` next to another service's.)
    pub fn for_service(&self, service: &str) -> Self {
        let mut settings = self.clone();
        if settings.schema.is_none() {
            settings.schema = Some(service.to_owned());
        }
        settings
    }

    /// Returns true when the URL names PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        let url = self.url.expose_secret();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    /// Checks the settings, naming keys under `prefix` (e.g. `identity.database`).
    pub fn validate_at(&self, prefix: &str) -> Result<(), ConfigError> {
        let url = self.url.expose_secret();
        if !(url.starts_with("sqlite:") || self.is_postgres()) {
            return Err(ConfigError::new(
                format!("{prefix}.url"),
                "must start with sqlite: or postgres://",
            ));
        }
        if let Some(schema) = &self.schema
            && (schema.is_empty()
                || !schema
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        {
            return Err(ConfigError::new(
                format!("{prefix}.schema"),
                "must be lowercase letters, digits and underscores",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new(
                format!("{prefix}.max_connections"),
                "must be > 0",
            ));
        }
        Ok(())
    }
}

/// Settings of the shared Redis (fact cache and event bus in the distributed mode).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// `redis://HOST:PORT`; with `cluster`, a comma-separated list of a Redis Cluster's seed
    /// nodes; empty for the in-memory cache and bus (embedded mode).
    pub url: String,
    /// Whether `url` names the nodes of a Redis Cluster rather than one server.
    pub cluster: bool,
    /// Prefix of every key this deployment writes.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            cluster: false,
            key_prefix: "ccp:".to_owned(),
        }
    }
}

impl RedisSettings {
    /// Checks the settings, naming keys under `prefix`.
    pub fn validate_at(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.url.is_empty() {
            if self.cluster {
                return Err(ConfigError::new(
                    format!("{prefix}.url"),
                    "required with cluster = true (the seed nodes, comma-separated)",
                ));
            }
            return Ok(());
        }
        crate::redis_link::RedisTarget::parse(&self.url, self.cluster)
            .map_err(|reason| ConfigError::new(format!("{prefix}.url"), reason))?;
        if self.key_prefix.contains(['{', '}']) {
            // A brace would make the prefix the hash tag of every key, putting them all on one
            // node of a cluster (and the rate-limit keys' own tags would no longer count).
            return Err(ConfigError::new(
                format!("{prefix}.key_prefix"),
                "must not contain { or } (a Redis Cluster hash tag)",
            ));
        }
        Ok(())
    }

    /// Returns the Redis the cache and the bus use, or None when `url` is empty (in-memory).
    pub fn target(&self) -> Result<Option<crate::redis_link::RedisTarget>, ConfigError> {
        if self.url.is_empty() {
            return Ok(None);
        }
        crate::redis_link::RedisTarget::parse(&self.url, self.cluster)
            .map(Some)
            .map_err(|reason| ConfigError::new("redis.url", reason))
    }
}

/// Settings of internal tokens: what services and the gateway present to each other.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InternalAuthSettings {
    /// The shared HMAC key (base64, at least 32 bytes). Empty in the embedded
    /// mode, which generates one at start; required in production.
    pub key: SecretString,
    /// Lifetime of a minted internal token, in seconds.
    pub token_ttl_secs: u64,
}

impl Default for InternalAuthSettings {
    fn default() -> Self {
        Self {
            key: SecretString::from(""),
            token_ttl_secs: 300,
        }
    }
}

impl InternalAuthSettings {
    /// Returns the decoded key, or None when empty.
    pub fn key_bytes(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        use base64::Engine as _;
        let key = self.key.expose_secret();
        if key.is_empty() {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(key.trim()))
            .map_err(|_| ConfigError::new("internal_auth.key", "must be base64"))?;
        if bytes.len() < 32 {
            return Err(ConfigError::new(
                "internal_auth.key",
                "must decode to at least 32 bytes",
            ));
        }
        Ok(Some(bytes))
    }

    /// Checks the settings; production requires a key.
    pub fn validate_for(&self, environment: Environment) -> Result<(), ConfigError> {
        let key = self.key_bytes()?;
        if key.is_none() && environment == Environment::Production {
            return Err(ConfigError::new(
                "internal_auth.key",
                "required in production",
            ));
        }
        if self.token_ttl_secs < 10 || self.token_ttl_secs > 3600 {
            return Err(ConfigError::new(
                "internal_auth.token_ttl_secs",
                "must be 10–3600",
            ));
        }
        Ok(())
    }
}

/// Settings of the clock every expiry is measured against.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ClockSettings {
    /// `system`, `settable` or `file` (the last two in test and demo environments only).
    pub mode: ClockMode,
    /// Start instant of a settable clock (RFC 3339); now when empty.
    pub start: Option<String>,
    /// The file a `file` clock follows: the offset from the system clock in
    /// seconds (`2592000` is 30 days ahead), shared by every process given it.
    pub file: String,
    /// How often a `file` clock re-reads its file, in milliseconds (10–60000, default 1000).
    pub poll_ms: u64,
}

impl Default for ClockSettings {
    fn default() -> Self {
        Self {
            mode: ClockMode::System,
            start: None,
            file: String::new(),
            poll_ms: 1000,
        }
    }
}

/// Which clock to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// The system clock.
    #[default]
    System,
    /// A clock that moves only when set (tests, demos).
    Settable,
    /// The system clock moved by the offset in `clock.file`, which every
    /// process of a deployment follows (tests, demos).
    File,
}

impl ClockSettings {
    /// Checks the settings without building the clock: a settable or file
    /// clock outside test and demo, a bad start instant, a file clock without
    /// a readable file or with a poll interval out of range are refused.
    pub fn check(&self, environment: Environment) -> Result<(), ConfigError> {
        if self.mode != ClockMode::System && !environment.allows_settable_clock() {
            let what = match self.mode {
                ClockMode::File => "a file clock",
                _ => "a settable clock",
            };
            return Err(ConfigError::new(
                "clock.mode",
                format!("{what} is refused in the {environment:?} environment"),
            ));
        }
        match self.mode {
            ClockMode::System => Ok(()),
            ClockMode::Settable => self.start().map(|_| ()),
            ClockMode::File => {
                self.poll()?;
                crate::clock::read_offset(self.file_path()?)
                    .map(|_| ())
                    .map_err(|e| ConfigError::new("clock.file", format!("{}: {e}", self.file)))
            }
        }
    }

    /// Builds the clock, refusing what [`ClockSettings::check`] refuses. A
    /// file clock starts a thread following its file.
    pub fn build(&self, environment: Environment) -> Result<crate::clock::Clock, ConfigError> {
        self.check(environment)?;
        match self.mode {
            ClockMode::System => Ok(crate::clock::Clock::system()),
            ClockMode::Settable => Ok(crate::clock::Clock::settable(self.start()?)),
            ClockMode::File => crate::clock::Clock::following_file(self.file_path()?, self.poll()?)
                .map_err(|e| ConfigError::new("clock.file", format!("{}: {e}", self.file))),
        }
    }

    fn start(&self) -> Result<chrono::DateTime<chrono::Utc>, ConfigError> {
        match &self.start {
            None => Ok(chrono::Utc::now()),
            Some(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| ConfigError::new("clock.start", e.to_string())),
        }
    }

    fn file_path(&self) -> Result<&std::path::Path, ConfigError> {
        if self.file.trim().is_empty() {
            return Err(ConfigError::new(
                "clock.file",
                "required when clock.mode is file",
            ));
        }
        Ok(std::path::Path::new(&self.file))
    }

    fn poll(&self) -> Result<std::time::Duration, ConfigError> {
        if !(10..=60_000).contains(&self.poll_ms) {
            return Err(ConfigError::new("clock.poll_ms", "must be 10–60000"));
        }
        Ok(std::time::Duration::from_millis(self.poll_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_the_separator_convention() {
        assert_eq!(
            env_name("identity.database.url"),
            "CCP_IDENTITY__DATABASE__URL"
        );
    }

    #[test]
    fn a_database_url_alone_still_gets_the_service_schema() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Tree {
            identity: Section,
        }
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Section {
            database: DatabaseSettings,
        }
        impl Validate for Tree {
            fn validate(&self) -> Result<(), ConfigError> {
                Ok(())
            }
        }
        let env = HashMap::from([(
            "CCP_IDENTITY__DATABASE__URL".to_owned(),
            "postgres://u@h:5432/shared".to_owned(),
        )]);
        let tree: Tree = load_with_env("", None, env).expect("the tree loads");
        // The section comes from DatabaseSettings::default: no schema...
        assert_eq!(tree.identity.database.schema, None);
        // ...which connecting as the service fills with the service's name.
        let settings = tree.identity.database.for_service("identity");
        assert_eq!(settings.schema.as_deref(), Some("identity"));
        let explicit = DatabaseSettings {
            schema: Some("custom".to_owned()),
            ..settings
        };
        assert_eq!(
            explicit.for_service("identity").schema.as_deref(),
            Some("custom")
        );
    }

    #[test]
    fn settable_clock_is_refused_in_production() {
        let s = ClockSettings {
            mode: ClockMode::Settable,
            ..ClockSettings::default()
        };
        let err = s.build(Environment::Production).err().map(|e| e.key);
        assert_eq!(err.as_deref(), Some("clock.mode"));
        assert!(s.build(Environment::Test).is_ok());
    }
}
