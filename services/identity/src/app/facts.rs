//! The facts other services read about identity: profiles by id, a
//! credential's state and the revocations in force.

use ccp_platform::error::Result;
use ccp_platform::store::timestamp;
use ccp_proto::identity::v1 as pb;
use uuid::Uuid;

use super::{Core, wire};
use crate::store::revocations::{self, Revoked};
use crate::store::{credentials, profiles};

/// Returns the profiles among `ids` (distinct) and the ids without one.
pub async fn get_profiles(core: &Core, ids: &[Uuid]) -> Result<pb::GetProfilesResponse> {
    let found = profiles::get_many(&core.db, ids).await?;
    let known: std::collections::HashSet<Uuid> = found.iter().map(|p| p.id).collect();
    let missing = ids
        .iter()
        .filter(|id| !known.contains(id))
        .map(Uuid::to_string)
        .collect();
    Ok(pb::GetProfilesResponse {
        profiles: found.iter().map(wire::summary).collect(),
        missing,
    })
}

/// Returns what is known of credential `id` (`exists: false` when unknown).
pub async fn get_credential(core: &Core, id: Uuid) -> Result<pb::CredentialFacts> {
    let Some(c) = credentials::get(&core.db, id).await? else {
        return Ok(pb::CredentialFacts::default());
    };
    Ok(pb::CredentialFacts {
        exists: true,
        principal: c.principal(),
        business: c.business.to_string(),
        expire_time: Some(timestamp(c.expire_time)),
        revoked: c.revoke_time.is_some(),
        revoke_time: c.revoke_time.map(timestamp),
        display_name: c.display_name,
    })
}

/// The most revocations one ListRevocations page holds.
pub const MAX_REVOCATIONS_PAGE: i32 = 10_000;

/// Returns the revocations in force after cursor `after` (R-GW-4).
pub async fn list_revocations(
    core: &Core,
    after: i64,
    page_size: i32,
) -> Result<pb::ListRevocationsResponse> {
    let size = match page_size {
        0 => 1_000,
        n => n.clamp(1, MAX_REVOCATIONS_PAGE),
    };
    let (found, cursor, more) = revocations::list(
        &core.db,
        after.max(0),
        core.now(),
        u64::try_from(size).unwrap_or(1_000),
    )
    .await?;
    Ok(pb::ListRevocationsResponse {
        revocations: found
            .into_iter()
            .map(|r| pb::Revocation {
                sequence: r.sequence,
                subject: Some(match r.revoked {
                    Revoked::Family(id) => pb::revocation::Subject::TokenFamily(id),
                    Revoked::Principal(p) => pb::revocation::Subject::Principal(p),
                }),
                expire_time: Some(timestamp(r.expire_time)),
            })
            .collect(),
        cursor,
        more,
    })
}
