//! The notifications service's settings (`[notifications]` in the configuration).

use ccp_platform::config::{ConfigError, DatabaseSettings, ServerSettings};
use ccp_platform::context::CommonSettings;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

/// Settings of the notifications service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NotificationsSettings {
    /// The database (schema `notifications` on PostgreSQL): the sent ledger.
    pub database: DatabaseSettings,
    /// Identity's internal facts endpoint (profiles: address, language, choices).
    pub identity_facts_endpoint: String,
    /// Accounts' internal facts endpoint (its `server.internal_listen`; businesses' managers).
    pub accounts_facts_endpoint: String,
    /// The SMTP server: `smtp://user:password@host:587?tls=required` (STARTTLS),
    /// `smtps://…:465` (TLS) or `smtp://host:25` (plain, a local relay only). Empty: write each
    /// message as an `.eml` file into `mail_dir` instead (the embedded default).
    pub smtp_url: SecretString,
    /// How long one SMTP command may take, in milliseconds (default 10000).
    pub smtp_timeout_ms: u64,
    /// Where `.eml` files are written when `smtp_url` is empty; empty: `<data_dir>/mail` under
    /// `ccp up` (the standalone binary requires it then).
    pub mail_dir: String,
    /// The sender, `Name <address>` (default `CCP <noreply@ccp.localhost>`).
    pub from: String,
    /// The domain of every Message-ID, `<…@domain>` (default `ccp.localhost`).
    pub message_id_domain: String,
    /// The operator API's server (`NotificationsAdmin`, health): `server.listen` (default
    /// `127.0.0.1:50054`), TLS and limits as every service's.
    pub server: ServerSettings,
    /// How long a message the mail server does not take (unreachable, a 4xx answer) is retried,
    /// in milliseconds, before it becomes a dead letter and the consumer moves on (default
    /// 86400000, a day). A message refused for good (5xx) is a dead letter at once.
    pub give_up_after_ms: u64,
    /// How long a replica's lease on a stream lasts, in milliseconds (default 30000): the holder
    /// renews it each third; another replica takes the stream over once it lapses.
    pub lease_ms: u64,
}

impl Default for NotificationsSettings {
    fn default() -> Self {
        Self {
            database: DatabaseSettings {
                schema: Some("notifications".to_owned()),
                ..DatabaseSettings::default()
            },
            identity_facts_endpoint: "http://127.0.0.1:50051".to_owned(),
            accounts_facts_endpoint: "http://127.0.0.1:50052".to_owned(),
            smtp_url: SecretString::from(""),
            smtp_timeout_ms: 10_000,
            mail_dir: String::new(),
            from: "CCP <noreply@ccp.localhost>".to_owned(),
            message_id_domain: "ccp.localhost".to_owned(),
            server: ServerSettings {
                listen: "127.0.0.1:50054".to_owned(),
                ..ServerSettings::default()
            },
            give_up_after_ms: 86_400_000,
            lease_ms: 30_000,
        }
    }
}

impl NotificationsSettings {
    /// Checks that mail has somewhere to go: an SMTP server, or a directory for `.eml` files
    /// (a process running the notifier alone needs one; `ccp up` fills `mail_dir` itself).
    pub fn require_mail_destination(&self) -> Result<(), ConfigError> {
        if self.smtp_url.expose_secret().is_empty() && self.mail_dir.is_empty() {
            return Err(ConfigError::new(
                "notifications.mail_dir",
                "required when notifications.smtp_url is empty (env CCP_NOTIFICATIONS__SMTP_URL or \
                 CCP_NOTIFICATIONS__MAIL_DIR): the notifier needs somewhere to send mail",
            ));
        }
        Ok(())
    }

    /// Checks the settings, naming keys under `notifications.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate_at("notifications.database")?;
        self.server.validate_at("notifications.server")?;
        if !(1..=2_592_000_000).contains(&self.give_up_after_ms) {
            return Err(ConfigError::new(
                "notifications.give_up_after_ms",
                "must be 1–2592000000 (30 days)",
            ));
        }
        if !(1_000..=3_600_000).contains(&self.lease_ms) {
            return Err(ConfigError::new(
                "notifications.lease_ms",
                "must be 1000–3600000",
            ));
        }
        self.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| ConfigError::new("notifications.from", e.to_string()))?;
        let domain = &self.message_id_domain;
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(ConfigError::new(
                "notifications.message_id_domain",
                "must be a domain name (letters, digits, dots, hyphens)",
            ));
        }
        let url = self.smtp_url.expose_secret();
        if !url.is_empty() && !url.starts_with("smtp://") && !url.starts_with("smtps://") {
            return Err(ConfigError::new(
                "notifications.smtp_url",
                "must start with smtp:// or smtps://",
            ));
        }
        if self.smtp_timeout_ms == 0 {
            return Err(ConfigError::new(
                "notifications.smtp_timeout_ms",
                "must be > 0",
            ));
        }
        Ok(())
    }
}

/// The settings of the `ccp-notifications` binary: the shared sections and `[notifications]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Shared sections (environment, telemetry, internal_auth, redis, clock).
    #[serde(flatten)]
    pub common: CommonSettings,
    /// This service.
    pub notifications: NotificationsSettings,
}

impl ccp_platform::config::Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        self.notifications.validate()?;
        self.notifications.require_mail_destination()
    }
}
