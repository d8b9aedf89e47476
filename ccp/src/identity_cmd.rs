//! `ccp dev-token` and `ccp keys rotate`: the identity commands.
//!
//! `dev-token` mints an ID token of the development issuer for a named test
//! user (the same key the identity service trusts: `identity.dev_issuer.key`,
//! or `<data_dir>/dev-issuer.key`). `keys rotate` adds a new active signing
//! key in the identity database named by the configuration and retires the
//! old one, which stays published until every token it signed has expired.

use std::time::Duration;

use ccp_identity::oidc::DevIssuer;
use ccp_identity::store::keys::Rotation;
use clap::Subcommand;

use crate::settings::SuiteSettings;

/// `ccp keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Adds a new active signing key to the identity database and retires the
    /// current one (it stays published until every token it signed expired).
    ///
    /// Example: ccp keys rotate --config prod.toml
    Rotate,
}

/// Returns the identity settings with the embedded data directory filled in
/// (outside production), as `ccp up` does.
fn identity_settings(settings: &SuiteSettings) -> ccp_identity::IdentitySettings {
    let mut identity = settings.identity.clone();
    if identity.data_dir.is_none() {
        identity.data_dir = Some(settings.data_dir.clone());
    }
    identity
}

/// Mints an ID token of the development issuer for test user `user`.
/// Refused when the configuration turns the issuer off or runs in production.
pub fn dev_token(settings: &SuiteSettings, user: &str, ttl: Duration) -> anyhow::Result<String> {
    if settings.common.environment == ccp_platform::config::Environment::Production {
        anyhow::bail!("the development issuer is refused in production");
    }
    if settings.identity.dev_issuer.enabled == Some(false) {
        anyhow::bail!("identity.dev_issuer.enabled is false: the development issuer is off");
    }
    let user = user.trim();
    if user.is_empty() || user.len() > 255 {
        anyhow::bail!("the user name must be 1–255 characters");
    }
    let identity = identity_settings(settings);
    let issuer = DevIssuer::from_settings(&identity.dev_issuer, identity.data_dir.as_deref())?;
    let clock = settings.common.clock.build(settings.common.environment)?;
    issuer.mint(user, clock.now(), ttl)
}

/// Rotates the identity service's signing keys in the configured database.
pub async fn rotate_keys(settings: &SuiteSettings) -> anyhow::Result<Rotation> {
    let settings = settings.clone().with_embedded_databases();
    let identity = identity_settings(&settings);
    if !identity.database.is_postgres() {
        std::fs::create_dir_all(&settings.data_dir)?;
    }
    let db =
        ccp_platform::db::connect_for_service::<ccp_identity::store::Migrator>(&identity.database)
            .await?;
    let kek = ccp_identity::key_encryption_key(&identity, settings.common.environment)?;
    let clock = settings.common.clock.build(settings.common.environment)?;
    let lifetime =
        chrono::Duration::seconds(i64::try_from(identity.access_token_ttl_secs).unwrap_or(900));
    let rotation = ccp_identity::store::keys::rotate(
        &db,
        &kek,
        clock.now(),
        lifetime,
        "platform:ccp-keys-rotate",
    )
    .await?;
    db.close().await?;
    Ok(rotation)
}

/// Runs `ccp keys rotate` and prints what changed.
pub async fn keys(settings: &SuiteSettings, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate => {
            let rotation = rotate_keys(settings).await?;
            println!("new active signing key: {}", rotation.new_kid);
            match rotation.retired {
                Some((kid, until)) => println!(
                    "retired {kid}; it stays published until {} (when the last token it signed expires)",
                    until.to_rfc3339()
                ),
                None => println!("there was no active key before"),
            }
            Ok(())
        }
    }
}
