//! `ccp dev-token`, `ccp test-issuer` and `ccp keys rotate`: the identity commands.
//!
//! `dev-token` mints an ID token of the development issuer for a named test
//! user (the same key the identity service trusts: `identity.dev_issuer.key`,
//! or `<data_dir>/dev-issuer.key`). `test-issuer` is the same kind of
//! Ed25519 issuer for deployments that refuse the development issuer
//! (production): `init` keeps its key in a directory and writes the JWKS that
//! identity trusts through an ordinary `[[identity.issuers]]` entry with
//! `jwks_file`; `token` mints for a test user with that key. `keys rotate`
//! adds a new active signing key in the identity database named by the
//! configuration and retires the old one, which stays published until every
//! token it signed has expired.

use std::path::{Path, PathBuf};
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

/// The `iss` of the test-users issuer unless `--issuer` says otherwise.
pub const TEST_ISSUER: &str = "urn:ccp:test-users";
/// The `aud` of the test-users issuer unless `--audience` says otherwise.
pub const TEST_ISSUER_AUDIENCE: &str = "ccp";
/// The key file `ccp test-issuer init` keeps in its directory.
pub const TEST_ISSUER_KEY_FILE: &str = "test-issuer.key";
/// The JWKS file `ccp test-issuer init` writes in its directory.
pub const TEST_ISSUER_JWKS_FILE: &str = "jwks.json";

/// The issuer and audience of a test-users issuer.
#[derive(Debug, Clone, clap::Args)]
pub struct TestIssuerNames {
    /// The issuer's `iss` (identity's `[[identity.issuers]]` entry must name it).
    #[arg(long, default_value = TEST_ISSUER)]
    pub issuer: String,
    /// The audience (`aud`) of its tokens.
    #[arg(long, default_value = TEST_ISSUER_AUDIENCE)]
    pub audience: String,
}

/// `ccp test-issuer …`.
#[derive(Debug, Subcommand)]
pub enum TestIssuerCommand {
    /// Creates the issuer's Ed25519 key in DIR (kept if it exists: run it
    /// again freely), writes DIR/jwks.json with its public key, and prints the
    /// `[[identity.issuers]]` entry that trusts it.
    ///
    /// Example: ccp test-issuer init ./issuer
    Init {
        /// The directory for `test-issuer.key` (private, mode 0600) and `jwks.json`.
        dir: PathBuf,
        /// The issuer's `iss` and `aud`.
        #[command(flatten)]
        names: TestIssuerNames,
    },
    /// Prints an ID token of the test-users issuer for USER, to sign in with
    /// (`ccp login --id-token-file FILE`).
    ///
    /// Example: ccp test-issuer token alice --key ./issuer/test-issuer.key > alice.jwt
    Token {
        /// The test user (the token's subject).
        user: String,
        /// The key file `init` created.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The issuer's `iss` and `aud`.
        #[command(flatten)]
        names: TestIssuerNames,
        /// How long the token is valid, in seconds.
        #[arg(long, default_value_t = 300)]
        ttl_secs: u64,
    },
}

/// Returns the test-users issuer signing with the key in `key_file`.
fn test_issuer(key_file: &Path, names: &TestIssuerNames) -> anyhow::Result<DevIssuer> {
    let text = std::fs::read_to_string(key_file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", key_file.display()))?;
    let seed: [u8; 32] = ccp_identity::secrets::decode_base64(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("{} must hold base64 of 32 bytes", key_file.display()))?;
    DevIssuer::from_seed(&names.issuer, &names.audience, &seed)
}

/// Runs `ccp test-issuer …` and prints its result.
pub fn test_issuer_command(command: TestIssuerCommand) -> anyhow::Result<()> {
    match command {
        TestIssuerCommand::Init { dir, names } => {
            let key_file = dir.join(TEST_ISSUER_KEY_FILE);
            // base64 of 32 random bytes: an Ed25519 seed.
            ccp_identity::secrets::read_or_create_key_file(
                &key_file,
                ccp_platform::auth::InternalTokens::generate_key,
            )?;
            let issuer = test_issuer(&key_file, &names)?;
            let jwks = dir.join(TEST_ISSUER_JWKS_FILE);
            std::fs::write(&jwks, issuer.jwks_json())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", jwks.display()))?;
            println!(
                "# the test-users issuer: key {}, JWKS {}\n\
                 [[identity.issuers]]\n\
                 name = \"test-users\"\n\
                 issuer = \"{}\"\n\
                 audience = \"{}\"\n\
                 jwks_file = \"{}\"\n\
                 algorithms = [\"EdDSA\"]",
                key_file.display(),
                jwks.display(),
                names.issuer,
                names.audience,
                jwks.display()
            );
            Ok(())
        }
        TestIssuerCommand::Token {
            user,
            key,
            names,
            ttl_secs,
        } => {
            let user = user.trim();
            if user.is_empty() || user.len() > 255 {
                anyhow::bail!("the user name must be 1–255 characters");
            }
            let issuer = test_issuer(&key, &names)?;
            let token = issuer.mint(
                user,
                chrono::Utc::now(),
                Duration::from_secs(ttl_secs.clamp(1, 3600)),
            )?;
            println!("{token}");
            Ok(())
        }
    }
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

/// Mints an ID token of the development issuer for test user `user`, with
/// the key of the suite the client talks to: `identity.dev_issuer.key` when
/// configured, else `dev-issuer.key` in the data directory `given`
/// (`--data-dir`), configured, or recorded by the running `ccp up` (see
/// [`crate::suite_state::data_dir`]). Never creates a key: a token signed
/// with a key no suite trusts would only fail later. Refused when the
/// configuration turns the issuer off or runs in production.
pub fn dev_token(
    settings: &SuiteSettings,
    given: Option<&Path>,
    user: &str,
    ttl: Duration,
) -> anyhow::Result<String> {
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
    let dev = &settings.identity.dev_issuer;
    let configured = secrecy::ExposeSecret::expose_secret(&dev.key)
        .trim()
        .to_owned();
    let text = if configured.is_empty() {
        let dir = crate::suite_state::data_dir(settings, given)?;
        let file = ccp_identity::secrets::dev_issuer_key_file(&dir);
        match std::fs::read_to_string(&file) {
            Ok(text) => text.trim().to_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "no development issuer key in {} ({} is missing): is `ccp up` running with that data directory? \
                 Start `ccp up --data-dir {}`, or pass the --data-dir of the suite you run",
                dir.display(),
                file.display(),
                dir.display()
            ),
            Err(err) => anyhow::bail!("cannot read {}: {err}", file.display()),
        }
    } else {
        configured
    };
    let seed: [u8; 32] = ccp_identity::secrets::decode_base64(&text)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("the development issuer key must be base64 of 32 bytes"))?;
    let issuer = DevIssuer::from_seed(&dev.issuer, &dev.audience, &seed)?;
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
    let db = ccp_platform::db::connect_for_service::<ccp_identity::store::Migrator>(
        &identity.database.for_service("identity"),
    )
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
