//! The signing keys of access tokens (R-ID-3), kept in this service's schema
//! with their private halves sealed by the key-encryption key.
//!
//! One key is ACTIVE and signs; a rotation retires it and makes a new one
//! active. A retired key stays published (GetSigningKeys, and the JWKS this
//! service verifies with) until every token it signed has expired:
//! `publish_until` = retirement + the longest access-token lifetime.

use base64::Engine as _;
use ccp_platform::auth::{AccessTokenSigner, KeySource};
use ccp_platform::clock::Clock;
use ccp_platform::db::{decode_enum, from_micros, to_micros};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder,
};

use super::entity::signing_key::{self, Column};
use super::optional_micros;
use crate::domain::keys::{KeyState, SigningKey};
use crate::secrets::KeyEncryptionKey;

/// The rotation keeps its public path here (`ccp keys rotate` calls it); it
/// is a use case and lives in `app::keys`.
pub use crate::app::keys::{Rotation, rotate};

const T: &str = "signing_keys";

/// Returns the keys published at `now`: the active one and the retired ones
/// whose tokens may still be valid, oldest first.
pub async fn published_keys<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
) -> Result<Vec<SigningKey>, DbErr> {
    signing_key::Entity::find()
        .filter(
            Condition::any()
                .add(Column::State.eq(KeyState::Active.as_str()))
                .add(Column::PublishUntilUs.gt(to_micros(now))),
        )
        .order_by_asc(Column::CreateUs)
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            Ok(SigningKey {
                state: decode_enum(&m.state, T, "state")?,
                create_time: from_micros(m.create_us, T, "create_us")?,
                publish_until: optional_micros(m.publish_until_us, T, "publish_until_us")?,
                kid: m.kid,
                public_key: m.public_key,
            })
        })
        .collect()
}

/// Returns the JWKS of the given keys.
pub fn jwks_of(keys: &[SigningKey]) -> String {
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

/// Creates a new active key (its private half sealed by `kek`) and returns
/// its id. Fails with a unique violation while another key is active.
pub async fn insert_new_key<C: ConnectionTrait>(
    db: &C,
    kek: &KeyEncryptionKey,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let seed: [u8; 32] = rand::random();
    let kid = format!("k{}", uuid::Uuid::now_v7().simple());
    let signer = AccessTokenSigner::from_seed(kid.clone(), &seed)?;
    let sealed = kek.seal(&seed, kid.as_bytes())?;
    signing_key::Entity::insert(signing_key::ActiveModel {
        kid: Set(kid.clone()),
        public_key: Set(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signer.public_key())
        ),
        private_key: Set(sealed),
        state: Set(KeyState::Active.as_str().to_owned()),
        create_us: Set(to_micros(now)),
        retire_us: Set(None),
        publish_until_us: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(kid)
}

/// Retires key `kid` if it is active, published until `publish_until`.
pub async fn retire<C: ConnectionTrait>(
    db: &C,
    kid: &str,
    now: DateTime<Utc>,
    publish_until: DateTime<Utc>,
) -> Result<(), DbErr> {
    signing_key::Entity::update_many()
        .col_expr(Column::State, Expr::value(KeyState::Retired.as_str()))
        .col_expr(Column::RetireUs, Expr::value(to_micros(now)))
        .col_expr(
            Column::PublishUntilUs,
            Expr::value(to_micros(publish_until)),
        )
        .filter(Column::Kid.eq(kid))
        .filter(Column::State.eq(KeyState::Active.as_str()))
        .exec(db)
        .await?;
    Ok(())
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

/// Returns the id of the active key, if any.
pub async fn active_kid<C: ConnectionTrait>(db: &C) -> Result<Option<String>, DbErr> {
    Ok(signing_key::Entity::find()
        .filter(Column::State.eq(KeyState::Active.as_str()))
        .one(db)
        .await?
        .map(|m| m.kid))
}

/// Loads the signer of key `kid`, opening its private half with `kek`.
pub async fn load_signer<C: ConnectionTrait>(
    db: &C,
    kek: &KeyEncryptionKey,
    kid: &str,
) -> anyhow::Result<AccessTokenSigner> {
    let row = signing_key::Entity::find_by_id(kid.to_owned())
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
