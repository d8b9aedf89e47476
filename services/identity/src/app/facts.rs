//! The facts other services read about identity: profiles by id and a
//! credential's state.

use ccp_platform::error::Result;
use ccp_platform::store::timestamp;
use ccp_proto::identity::v1 as pb;
use uuid::Uuid;

use super::{Core, wire};
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
