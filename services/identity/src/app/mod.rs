//! The use cases of identity, one file per area: sessions (sign-in, refresh,
//! sign-out), profiles, machine credentials and their expiry reminders,
//! signing keys, audit history and the facts other services read. Each write goes through the platform's
//! unit of work ([`ccp_platform::store::Writer`]); gRPC handlers call these
//! and only convert. Nothing here knows tonic.

pub mod audit;
pub mod credentials;
pub mod facts;
pub mod keys;
pub mod profiles;
pub mod reminders;
pub mod sessions;
pub mod wire;

use std::sync::Arc;

use ccp_platform::context::ServiceContext;
use ccp_platform::store::{OutboxRelay, Writer};
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;

use crate::config::IdentitySettings;
use crate::oidc::TrustedIssuers;
use crate::secrets::{self, SecretHasher};
use keys::KeyRing;

/// The service name revisions and events carry.
pub const SERVICE: &str = "identity";

/// What every use case shares: the database and its write path, the clock,
/// the key ring, the trusted issuers, the secret hasher and the settings.
pub struct Core {
    db: DatabaseConnection,
    writer: Writer,
    ctx: ServiceContext,
    issuers: TrustedIssuers,
    keys: Arc<KeyRing>,
    hasher: SecretHasher,
    /// A hash verified when a client id is unknown, so timing does not tell.
    dummy_hash: String,
    settings: IdentitySettings,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    /// Returns the shared core.
    pub fn new(
        db: DatabaseConnection,
        ctx: ServiceContext,
        relay: OutboxRelay,
        issuers: TrustedIssuers,
        keys: Arc<KeyRing>,
        settings: IdentitySettings,
    ) -> anyhow::Result<Self> {
        let m = &settings.machine_credentials;
        let hasher = SecretHasher::new(m.argon2_memory_kib, m.argon2_iterations)?;
        let dummy_hash = hasher.hash(&secrets::new_client_secret())?;
        let writer = Writer::new(
            db.clone(),
            relay,
            ctx.clock.clone(),
            SERVICE,
            crate::EVENT_STREAM,
        );
        Ok(Self {
            db,
            writer,
            ctx,
            issuers,
            keys,
            hasher,
            dummy_hash,
            settings,
        })
    }

    /// Returns the current instant of the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    /// Returns the key page tokens are signed with (R-IN-1).
    pub fn page_key(&self) -> &ccp_platform::paging::PageKey {
        self.ctx.internal.page_key()
    }

    fn access_ttl(&self) -> Duration {
        Duration::seconds(i64::try_from(self.settings.access_token_ttl_secs).unwrap_or(900))
    }

    fn refresh_ttl(&self) -> Duration {
        Duration::seconds(i64::try_from(self.settings.refresh_token_ttl_secs).unwrap_or(43_200))
    }
}
