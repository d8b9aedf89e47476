//! Signing keys (R-ID-3): the key ring that signs and keeps the verifier
//! in step, the published set, and the rotation.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use ccp_platform::auth::{AccessTokenSigner, AccessTokenVerifier};
use ccp_platform::bus::MemoryBus;
use ccp_platform::clock::Clock;
use ccp_platform::error::{Error, Result};
use ccp_platform::store::{Begun, Change, OutboxRelay, WriteBy, Writer};
use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;

use super::{Core, SERVICE, wire};
use crate::domain::keys::SigningKey;
use crate::secrets::KeyEncryptionKey;
use crate::store::keys::{
    active_kid, insert_new_key, jwks_of, load_signer, published_keys, retire,
};

/// Returns the published signing keys and their JWKS.
pub async fn signing_keys(core: &Core) -> Result<pb::SigningKeys> {
    let keys = core.keys.published().await.map_err(Error::internal)?;
    Ok(pb::SigningKeys {
        jwks_json: jwks_of(&keys),
        keys: keys.iter().map(wire::signing_key).collect(),
    })
}

/// The outcome of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new active key.
    pub new_kid: String,
    /// The retired key and until when it stays published.
    pub retired: Option<(String, DateTime<Utc>)>,
}

/// Rotates the signing keys: retires the active key (published until
/// `now + max_token_lifetime`) and makes a new one active, with an audit
/// record and a SIGNING_KEY_ROTATED event, in one unit of work.
///
/// `ccp keys rotate` calls this from its own process: the event waits in
/// the outbox for the running service's relay, so nobody is woken here.
pub async fn rotate(
    db: &DatabaseConnection,
    kek: &KeyEncryptionKey,
    now: DateTime<Utc>,
    max_token_lifetime: Duration,
    actor: &str,
) -> anyhow::Result<Rotation> {
    let relay = OutboxRelay::new(db.clone(), Arc::new(MemoryBus::new(1)));
    let writer = Writer::new(
        db.clone(),
        relay,
        Clock::settable(now),
        SERVICE,
        crate::EVENT_STREAM,
    );
    let mut w = match writer.begin::<()>(WriteBy::once(actor)).await? {
        Begun::Replayed(()) => anyhow::bail!("a rotation has no request id to replay"),
        Begun::Fresh(w) => *w,
    };
    w.bump_revision("signing-keys").await?;
    let old = active_kid(w.txn()).await?;
    let publish_until = now + max_token_lifetime;
    if let Some(old) = &old {
        retire(w.txn(), old, now, publish_until).await?;
    }
    let new_kid = insert_new_key(w.txn(), kek, now).await?;
    let mut change = Change::new(
        EventType::SigningKeyRotated,
        "identity.signing_key.rotate",
        format!("signingKeys/{new_kid}"),
    )
    .after(serde_json::json!({
        "active": new_kid,
        "retired": old,
        "retired_published_until": publish_until.to_rfc3339(),
    }));
    if let Some(k) = &old {
        change = change.before(serde_json::json!({ "active": k }));
    }
    w.record(change).await?;
    w.commit(()).await?;
    Ok(Rotation {
        new_kid,
        retired: old.map(|k| (k, publish_until)),
    })
}

/// The service's view of its keys: signs with the active one (noticing a
/// rotation made by another process) and keeps its own access-token verifier
/// in step with the published set (a new key verifies at once; a retired key
/// stops verifying once its publication window ends).
pub struct KeyRing {
    db: DatabaseConnection,
    kek: KeyEncryptionKey,
    clock: Clock,
    verifier: Arc<AccessTokenVerifier>,
    active: ArcSwapOption<AccessTokenSigner>,
    published: arc_swap::ArcSwap<String>,
    reload: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Returns a key ring over `db` keeping `verifier` in step.
    pub fn new(
        db: DatabaseConnection,
        kek: KeyEncryptionKey,
        clock: Clock,
        verifier: Arc<AccessTokenVerifier>,
    ) -> Self {
        Self {
            db,
            kek,
            clock,
            verifier,
            active: ArcSwapOption::empty(),
            published: arc_swap::ArcSwap::from_pointee(String::new()),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns the keys published now, refreshing the verifier when the set changed.
    pub async fn published(&self) -> anyhow::Result<Vec<SigningKey>> {
        let keys = published_keys(&self.db, self.clock.now()).await?;
        let fingerprint = keys
            .iter()
            .map(|k| format!("{}:{}", k.kid, k.state.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        if **self.published.load() != fingerprint {
            self.verifier.refresh().await?;
            self.published.store(Arc::new(fingerprint));
        }
        Ok(keys)
    }

    /// Returns the signer of the active key.
    pub async fn signer(&self) -> anyhow::Result<Arc<AccessTokenSigner>> {
        let keys = self.published().await?;
        let kid = keys
            .iter()
            .find(|k| k.is_active())
            .map(|k| k.kid.clone())
            .ok_or_else(|| anyhow::anyhow!("no active signing key"))?;
        if let Some(current) = self.active.load_full()
            && current.kid() == kid
        {
            return Ok(current);
        }
        let _guard = self.reload.lock().await;
        if let Some(current) = self.active.load_full()
            && current.kid() == kid
        {
            return Ok(current);
        }
        let signer = Arc::new(load_signer(&self.db, &self.kek, &kid).await?);
        self.active.store(Some(signer.clone()));
        Ok(signer)
    }

    /// Keeps the verifier in step every `period` until `shutdown` completes.
    pub async fn run_sync(
        self: Arc<Self>,
        period: std::time::Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(period) => {
                    if let Err(err) = self.published().await {
                        tracing::warn!(error = %err, "signing key sync failed");
                    }
                }
            }
        }
    }
}
