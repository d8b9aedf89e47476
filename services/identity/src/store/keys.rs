//! The signing keys of access tokens (R-ID-3), kept in this service's schema
//! with their private halves sealed by the key-encryption key.
//!
//! One key is ACTIVE and signs; a rotation retires it and makes a new one
//! active. A retired key stays published (GetSigningKeys, and the JWKS this
//! service verifies with) until every token it signed has expired:
//! `publish_until` = retirement + the longest access-token lifetime.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use ccp_platform::auth::{AccessTokenSigner, AccessTokenVerifier, KeySource};
use ccp_platform::clock::Clock;
use ccp_platform::store::{AuditRecord, append_audit, enqueue_event};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait};

use super::{from_us, us};
use crate::secrets::KeyEncryptionKey;

fn t(name: &str) -> Alias {
    Alias::new(name)
}

/// A stored signing key (public half and state).
#[derive(Debug, Clone, FromQueryResult)]
pub struct SigningKeyRow {
    /// Key id.
    pub kid: String,
    /// Raw Ed25519 public key, base64url without padding.
    pub public_key: String,
    /// `ACTIVE` or `RETIRED`.
    pub state: String,
    /// Became active (µs).
    pub create_us: i64,
    /// Retired (µs).
    pub retire_us: Option<i64>,
    /// Published until (µs), once retired.
    pub publish_until_us: Option<i64>,
}

impl SigningKeyRow {
    /// Returns when the key became active.
    pub fn create_time(&self) -> DateTime<Utc> {
        from_us(self.create_us)
    }

    /// Returns until when a retired key is published.
    pub fn publish_until(&self) -> Option<DateTime<Utc>> {
        self.publish_until_us.map(from_us)
    }

    /// Returns true for the active key.
    pub fn is_active(&self) -> bool {
        self.state == "ACTIVE"
    }
}

/// Returns the keys published at `now`: the active one and the retired ones
/// whose tokens may still be valid, oldest first.
pub async fn published_keys<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
) -> Result<Vec<SigningKeyRow>, DbErr> {
    let q = Query::select()
        .columns(
            [
                "kid",
                "public_key",
                "state",
                "create_us",
                "retire_us",
                "publish_until_us",
            ]
            .map(t),
        )
        .from(t("signing_keys"))
        .cond_where(
            sea_orm::Condition::any()
                .add(Expr::col(t("state")).eq("ACTIVE"))
                .add(Expr::col(t("publish_until_us")).gt(us(now))),
        )
        .order_by(t("create_us"), Order::Asc)
        .to_owned();
    let stmt = db.get_database_backend().build(&q);
    SigningKeyRow::find_by_statement(stmt).all(db).await
}

/// Returns the JWKS of the given keys.
pub fn jwks_of(keys: &[SigningKeyRow]) -> String {
    let decoded: Vec<(String, Vec<u8>)> = keys
        .iter()
        .filter_map(|k| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&k.public_key)
                .ok()
                .map(|raw| (k.kid.clone(), raw))
        })
        .collect();
    ccp_platform::auth::jwks_json(decoded.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
}

async fn insert_new_key<C: ConnectionTrait>(
    db: &C,
    kek: &KeyEncryptionKey,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let seed: [u8; 32] = rand::random();
    let kid = format!("k{}", uuid::Uuid::now_v7().simple());
    let signer = AccessTokenSigner::from_seed(kid.clone(), &seed)?;
    let sealed = kek.seal(&seed, kid.as_bytes())?;
    let q = Query::insert()
        .into_table(t("signing_keys"))
        .columns([
            t("kid"),
            t("public_key"),
            t("private_key"),
            t("state"),
            t("create_us"),
        ])
        .values_panic([
            kid.clone().into(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(signer.public_key())
                .into(),
            sealed.into(),
            "ACTIVE".into(),
            us(now).into(),
        ])
        .to_owned();
    db.execute(&q).await?;
    Ok(kid)
}

/// Makes sure a key is active (a first start creates one). Concurrent
/// starters agree: the unique index keeps one.
pub async fn ensure_active_key(
    db: &DatabaseConnection,
    kek: &KeyEncryptionKey,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if active_kid(db).await?.is_some() {
        return Ok(());
    }
    match insert_new_key(db, kek, now).await {
        Ok(kid) => {
            tracing::info!(kid = %kid, "created the first signing key");
            Ok(())
        }
        Err(err) => {
            if active_kid(db).await?.is_some() {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

async fn active_kid<C: ConnectionTrait>(db: &C) -> Result<Option<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        kid: String,
    }
    let q = Query::select()
        .column(t("kid"))
        .from(t("signing_keys"))
        .and_where(Expr::col(t("state")).eq("ACTIVE"))
        .to_owned();
    let stmt = db.get_database_backend().build(&q);
    Ok(Row::find_by_statement(stmt).one(db).await?.map(|r| r.kid))
}

/// Loads the signer of key `kid`, opening its private half with `kek`.
pub async fn load_signer<C: ConnectionTrait>(
    db: &C,
    kek: &KeyEncryptionKey,
    kid: &str,
) -> anyhow::Result<AccessTokenSigner> {
    #[derive(FromQueryResult)]
    struct Row {
        private_key: Vec<u8>,
    }
    let q = Query::select()
        .column(t("private_key"))
        .from(t("signing_keys"))
        .and_where(Expr::col(t("kid")).eq(kid))
        .to_owned();
    let stmt = db.get_database_backend().build(&q);
    let row = Row::find_by_statement(stmt)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("signing key {kid} not found"))?;
    let seed: [u8; 32] = kek
        .open(&row.private_key, kid.as_bytes())?
        .try_into()
        .map_err(|_| anyhow::anyhow!("signing key {kid} is not 32 bytes"))?;
    AccessTokenSigner::from_seed(kid, &seed)
}

/// Loads the signer of the active key.
pub async fn active_signer<C: ConnectionTrait>(
    db: &C,
    kek: &KeyEncryptionKey,
) -> anyhow::Result<AccessTokenSigner> {
    let kid = active_kid(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no active signing key"))?;
    load_signer(db, kek, &kid).await
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
/// record and a SIGNING_KEY_ROTATED event, in one transaction.
pub async fn rotate(
    db: &DatabaseConnection,
    kek: &KeyEncryptionKey,
    now: DateTime<Utc>,
    max_token_lifetime: Duration,
    actor: &str,
) -> anyhow::Result<Rotation> {
    let txn = db.begin().await?;
    let counter = ccp_platform::store::bump_revision(&txn, "signing-keys").await?;
    let old = active_kid(&txn).await?;
    let publish_until = now + max_token_lifetime;
    if let Some(old) = &old {
        let q = Query::update()
            .table(t("signing_keys"))
            .value(t("state"), "RETIRED")
            .value(t("retire_us"), us(now))
            .value(t("publish_until_us"), us(publish_until))
            .and_where(Expr::col(t("kid")).eq(old.as_str()))
            .and_where(Expr::col(t("state")).eq("ACTIVE"))
            .to_owned();
        txn.execute(&q).await?;
    }
    let new_kid = insert_new_key(&txn, kek, now).await?;
    let revision = ccp_platform::revision::Revision::new("identity", "signing-keys", counter);
    append_audit(
        &txn,
        &AuditRecord {
            actor: actor.to_owned(),
            action: "identity.signing_key.rotate".to_owned(),
            target: format!("signingKeys/{new_kid}"),
            before_json: old
                .as_ref()
                .map(|k| serde_json::json!({ "active": k }).to_string())
                .unwrap_or_default(),
            after_json: serde_json::json!({
                "active": new_kid,
                "retired": old,
                "retired_published_until": publish_until.to_rfc3339(),
            })
            .to_string(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..AuditRecord::default()
        },
        now,
    )
    .await?;
    let event = ccp_proto::common::v1::DomainEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: ccp_proto::common::v1::EventType::SigningKeyRotated as i32,
        service: "identity".to_owned(),
        occurred_at: Some(ccp_platform::store::timestamp(now)),
        revision: revision.encode(),
        actor: actor.to_owned(),
        subject: format!("signingKeys/{new_kid}"),
        ..Default::default()
    };
    enqueue_event(&txn, crate::EVENT_STREAM, &event, now).await?;
    txn.commit().await?;
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
    pub async fn published(&self) -> anyhow::Result<Vec<SigningKeyRow>> {
        let keys = published_keys(&self.db, self.clock.now()).await?;
        let fingerprint = keys
            .iter()
            .map(|k| format!("{}:{}", k.kid, k.state))
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

/// A [`KeySource`] reading the published keys from this service's schema, so
/// that a rotation by `ccp keys rotate` is picked up on an unknown `kid`.
#[derive(Debug, Clone)]
pub struct DbKeySource {
    db: DatabaseConnection,
    clock: Clock,
}

impl DbKeySource {
    /// Returns a source over `db`.
    pub fn new(db: DatabaseConnection, clock: Clock) -> Self {
        Self { db, clock }
    }
}

#[async_trait::async_trait]
impl KeySource for DbKeySource {
    async fn fetch_jwks(&self) -> anyhow::Result<String> {
        Ok(jwks_of(&published_keys(&self.db, self.clock.now()).await?))
    }
}
