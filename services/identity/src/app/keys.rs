//! Signing keys (R-ID-3): the published set and the rotation.

use std::sync::Arc;

use ccp_platform::bus::MemoryBus;
use ccp_platform::clock::Clock;
use ccp_platform::error::{Error, Result};
use ccp_platform::store::{Begun, Change, OutboxRelay, WriteBy, Writer};
use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;

use super::{Core, SERVICE, wire};
use crate::secrets::KeyEncryptionKey;
use crate::store::keys::{active_kid, insert_new_key, jwks_of, retire};

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
