//! Leases on background jobs (`sweep_leases`): taken, renewed and released
//! through `ccp_platform::store::lease`, the one conditional upsert every
//! service's leases use (two replicas can never both hold one).

use ccp_platform::store::lease;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

/// The table of this schema's leases.
const TABLE: &str = "sweep_leases";

/// Takes or renews the lease `name` for `holder` until `until`: succeeds
/// (true) when nobody holds it, `holder` already does, or the holder's lease
/// lapsed at or before `now`; false when another holder's lease runs.
pub async fn take_lease<C: ConnectionTrait>(
    db: &C,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    lease::take_lease(db, TABLE, name, holder, now, until).await
}

/// Gives the lease `name` up at `now` when `holder` holds it, so another
/// replica may take it without waiting for it to lapse.
pub async fn release_lease<C: ConnectionTrait>(
    db: &C,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    lease::release_lease(db, TABLE, name, holder, now).await
}
