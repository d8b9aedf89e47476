//! The suite's configuration tree: shared sections plus one per service.

use std::path::{Path, PathBuf};

use ccp_accounts::AccountsSettings;
use ccp_delegation::DelegationSettings;
use ccp_gateway::GatewaySettings;
use ccp_identity::IdentitySettings;
use ccp_notifications::NotificationsSettings;
use ccp_platform::config::{ConfigError, DatabaseSettings, Validate};
use ccp_platform::context::CommonSettings;
use serde::Deserialize;

/// Every setting of the suite. Defaults are compiled in; a file given with
/// `--config` overrides them; `CCP_…` environment variables override both.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SuiteSettings {
    /// Shared sections: environment, telemetry, internal_auth, redis, clock.
    #[serde(flatten)]
    pub common: CommonSettings,
    /// Where the embedded mode keeps its SQLite files (`ccp up`).
    pub data_dir: PathBuf,
    /// The identity service.
    pub identity: IdentitySettings,
    /// The accounts service.
    pub accounts: AccountsSettings,
    /// The delegation service.
    pub delegation: DelegationSettings,
    /// The gateway.
    pub gateway: GatewaySettings,
    /// The notifications service (e-mail).
    pub notifications: NotificationsSettings,
}

impl Default for SuiteSettings {
    fn default() -> Self {
        Self {
            common: CommonSettings::default(),
            data_dir: PathBuf::from(".ccp"),
            identity: IdentitySettings::default(),
            accounts: AccountsSettings::default(),
            delegation: DelegationSettings::default(),
            gateway: GatewaySettings::default(),
            notifications: NotificationsSettings::default(),
        }
    }
}

impl Validate for SuiteSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        // Empty database URLs are filled in by the embedded mode; the
        // distributed mode checks them when it starts a service.
        let fill = |db: &DatabaseSettings| -> DatabaseSettings {
            let mut db = db.clone();
            if secrecy::ExposeSecret::expose_secret(&db.url).is_empty() {
                db.url = secrecy::SecretString::from("sqlite::memory:");
            }
            db
        };
        let mut identity = self.identity.clone();
        identity.database = fill(&identity.database);
        identity.validate()?;
        // What production demands of identity (a key-encryption key, no
        // development issuer) is checked where identity runs
        // (`Application::build`, `ccp keys rotate`), so that `ccp migrate
        // accounts` and the other services' processes need no identity secret.
        let mut accounts = self.accounts.clone();
        accounts.database = fill(&accounts.database);
        accounts.validate()?;
        let mut delegation = self.delegation.clone();
        delegation.database = fill(&delegation.database);
        delegation.validate()?;
        let mut notifications = self.notifications.clone();
        notifications.database = fill(&notifications.database);
        notifications.validate()?;
        self.gateway.validate()
    }

    fn known_keys() -> Vec<String> {
        use ccp_platform::config_keys::keys_of;
        // The shared sections are flattened into the top level, which the
        // key walk cannot see through: list them and each section apart.
        let mut keys = keys_of::<CommonSettings>();
        keys.push("data_dir".to_owned());
        for (section, fields) in [
            ("identity", keys_of::<IdentitySettings>()),
            ("accounts", keys_of::<AccountsSettings>()),
            ("delegation", keys_of::<DelegationSettings>()),
            ("gateway", keys_of::<GatewaySettings>()),
            ("notifications", keys_of::<NotificationsSettings>()),
        ] {
            keys.push(section.to_owned());
            keys.extend(fields.into_iter().map(|key| format!("{section}.{key}")));
        }
        keys
    }
}

impl SuiteSettings {
    /// Loads the settings from the defaults, the optional file and the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        ccp_platform::config::load("", file)
    }

    /// Makes sure an internal key is configured. Without one (the embedded
    /// default) the key in `<data_dir>/internal.key` is used, created with a
    /// fresh random key when `create` is set, so that `ccp` client commands
    /// can talk to a running `ccp up`. Production configures the key instead.
    pub fn resolve_internal_key(&mut self, create: bool) -> anyhow::Result<()> {
        if self.common.internal_auth.key_bytes()?.is_some() {
            return Ok(());
        }
        let path = self.data_dir.join("internal.key");
        let key = match std::fs::read_to_string(&path) {
            Ok(key) => key.trim().to_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && create => {
                std::fs::create_dir_all(&self.data_dir)?;
                let key = ccp_platform::auth::InternalTokens::generate_key();
                if crate::private_file::create_new(&path, key.as_bytes())? {
                    key
                } else {
                    // Another process created it first: use its key.
                    std::fs::read_to_string(&path)?.trim().to_owned()
                }
            }
            Err(err) => {
                anyhow::bail!(
                    "no internal_auth.key configured and {} is unreadable ({err}); start `ccp up` first or set CCP_INTERNAL_AUTH__KEY",
                    path.display()
                )
            }
        };
        self.common.internal_auth.key = secrecy::SecretString::from(key);
        self.common.internal_auth.key_bytes()?;
        Ok(())
    }

    /// Returns internal tokens for an operator command talking to the
    /// services directly (registry import, explain, the demo loader): the
    /// configured key, else the one `ccp up` keeps in the data directory;
    /// minted on the configured clock.
    pub fn internal_tokens(&self) -> anyhow::Result<ccp_platform::auth::InternalTokens> {
        let mut settings = self.clone();
        settings.resolve_internal_key(false)?;
        let key = settings
            .common
            .internal_auth
            .key_bytes()?
            .ok_or_else(|| anyhow::anyhow!("no internal key"))?;
        let clock = settings.common.clock.build(settings.common.environment)?;
        Ok(ccp_platform::auth::InternalTokens::new(
            &key,
            std::time::Duration::from_secs(settings.common.internal_auth.token_ttl_secs),
            clock,
        ))
    }

    /// Puts every service's server on 127.0.0.1 with a port the OS picks
    /// (tests and benchmarks: several suites on one machine).
    pub fn on_spare_loopback_ports(&mut self) {
        for server in [
            &mut self.identity.server,
            &mut self.accounts.server,
            &mut self.delegation.server,
            &mut self.gateway.server,
            &mut self.notifications.server,
        ] {
            server.listen = "127.0.0.1:0".to_owned();
        }
    }

    /// Fills every empty database URL with a SQLite file under `data_dir`
    /// (the embedded default).
    pub fn with_embedded_databases(mut self) -> Self {
        let dir = self.data_dir.clone();
        let fill = |db: &mut DatabaseSettings, name: &str| {
            if secrecy::ExposeSecret::expose_secret(&db.url).is_empty() {
                db.url = DatabaseSettings::sqlite_file(&dir.join(format!("{name}.sqlite"))).url;
            }
        };
        fill(&mut self.identity.database, "identity");
        fill(&mut self.accounts.database, "accounts");
        fill(&mut self.delegation.database, "delegation");
        fill(&mut self.notifications.database, "notifications");
        if self.notifications.mail_dir.is_empty() {
            self.notifications.mail_dir = dir.join("mail").to_string_lossy().into_owned();
        }
        self
    }
}
