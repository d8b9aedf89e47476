//! Machine credentials (R-ID-4): create (the secret is shown once), list,
//! revoke, and the client-credentials exchange with its bad-secret throttle.

use ccp_platform::auth::{Caller, Principal};
use ccp_platform::error::{Error, Result};
use ccp_platform::store::{Begun, Change, WriteBy, Written, timestamp};
use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;
use ccp_types::{Bn9, RequestId};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Core, wire};
use crate::domain::IdentityError;
use crate::domain::credential::{self, CredentialState, MachineCredential, Throttle};
use crate::secrets;
use crate::store::credentials;
use crate::store::revocations::{self, Revoked};

/// A credential to create.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// The write's request id.
    pub request_id: RequestId,
    /// The business it acts for.
    pub business: Bn9,
    /// Its label.
    pub display_name: String,
    /// When it expires (checked against the clock).
    pub expire_time: DateTime<Utc>,
}

/// Creates a machine credential; the answer holds its secret, shown this
/// once. A replay returns the credential without its secret.
pub async fn create(
    core: &Core,
    caller: &Caller,
    new: NewCredential,
) -> Result<pb::CreateMachineCredentialResponse> {
    let (principal, begun) =
        begin_by_person(core, caller, "CreateMachineCredential", new.request_id).await?;
    let mut w = match begun {
        Begun::Replayed(r) => return Ok(r),
        Begun::Fresh(w) => *w,
    };
    let secret = secrets::new_client_secret();
    let hasher = core.hasher.clone();
    let to_hash = secret.clone();
    let secret_hash = tokio::task::spawn_blocking(move || hasher.hash(&to_hash))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    let revision = w.bump_revision(new.business.as_str()).await?;
    let now = w.now();
    let created = MachineCredential {
        id: Uuid::now_v7(),
        business: new.business,
        display_name: new.display_name,
        secret_hash,
        creator: principal.clone(),
        create_time: now,
        expire_time: new.expire_time,
        revoke_time: None,
        revoke_reason: None,
        version: 1,
    };
    credentials::insert(w.txn(), &created).await?;
    w.record(
        Change::new(
            EventType::CredentialCreated,
            "identity.credential.create",
            created.name(),
        )
        .acting_for(created.business.as_str())
        .after(created.audit_json())
        .principals([created.principal()]),
    )
    .await?;
    let stored = pb::CreateMachineCredentialResponse {
        credential: Some(wire::credential(&created, now)),
        client_secret: String::new(),
        revision,
    };
    match w.commit(stored).await? {
        Written::Replayed(r) => Ok(r),
        Written::Fresh(r) => {
            tracing::info!(credential = %created.id, business = %created.business, "machine credential created");
            Ok(pb::CreateMachineCredentialResponse {
                client_secret: secret,
                ..r
            })
        }
    }
}

/// Starts `method` by a signed-in person with a profile, idempotent on
/// `request_id`; returns the person's principal too.
async fn begin_by_person<R: prost::Message + Default>(
    core: &Core,
    caller: &Caller,
    method: &'static str,
    request_id: RequestId,
) -> Result<(String, Begun<R>)> {
    caller.require_profile()?;
    core.person(caller).await?;
    let principal = caller.principal.to_string();
    let begun = core
        .writer
        .begin(WriteBy::idempotent(principal.clone(), method, request_id))
        .await?;
    Ok((principal, begun))
}

/// A page of a business's credentials.
#[derive(Debug, Clone)]
pub struct CredentialPage {
    /// The business.
    pub business: Bn9,
    /// At most this many.
    pub size: usize,
    /// After this credential id.
    pub after: Option<String>,
    /// What its page tokens are bound to.
    pub pages: ccp_platform::paging::PageScope,
    /// Revoked and expired ones too.
    pub show_inactive: bool,
}

/// Lists a business's credentials, oldest first.
pub async fn list(
    core: &Core,
    caller: &Caller,
    page: CredentialPage,
) -> Result<pb::ListMachineCredentialsResponse> {
    core.check_caller(caller).await?;
    let now = core.now();
    let rows = credentials::list(
        &core.db,
        &page.business,
        page.after.as_deref(),
        (!page.show_inactive).then_some(now),
        page.size as u64 + 1,
    )
    .await?;
    let (rows, next) = page
        .pages
        .finish_page(rows, page.size, |c| c.id.to_string());
    Ok(pb::ListMachineCredentialsResponse {
        credentials: rows.iter().map(|c| wire::credential(c, now)).collect(),
        next_page_token: next,
    })
}

/// Revokes a credential of `business`.
pub async fn revoke(
    core: &Core,
    caller: &Caller,
    request_id: RequestId,
    business: Bn9,
    id: Uuid,
    reason: String,
) -> Result<pb::RevokeMachineCredentialResponse> {
    let (_, begun) = begin_by_person(core, caller, "RevokeMachineCredential", request_id).await?;
    let mut w = match begun {
        Begun::Replayed(r) => return Ok(r),
        Begun::Fresh(w) => *w,
    };
    let revision = w.bump_revision(business.as_str()).await?;
    let current = credentials::get(w.txn(), id)
        .await?
        .filter(|c| c.business == business)
        .ok_or(IdentityError::NoSuchCredential)?;
    let now = w.now();
    if current.revoke_time.is_some() || !credentials::revoke(w.txn(), id, &reason, now).await? {
        return Err(IdentityError::CredentialRevoked.into());
    }
    let after = current.revoked(&reason, now);
    revocations::record(w.txn(), Revoked::Principal(after.principal()), now).await?;
    w.record(
        Change::new(
            EventType::CredentialRevoked,
            "identity.credential.revoke",
            after.name(),
        )
        .acting_for(business.as_str())
        .before(current.audit_json())
        .after(after.audit_json())
        .principals([after.principal()]),
    )
    .await?;
    let response = pb::RevokeMachineCredentialResponse {
        credential: Some(wire::credential(&after, now)),
        revision,
    };
    let written = w.commit(response).await?;
    if !written.is_replay() {
        tracing::info!(credential = %id, business = %business, "machine credential revoked");
    }
    Ok(written.into_inner())
}

/// Exchanges a client id and secret for an access token acting for the
/// credential's business, counting bad secrets (slow down, then lock out).
pub async fn issue_token(core: &Core, client_id: &str, secret: String) -> Result<pb::MachineToken> {
    let refused = || Error::from(IdentityError::ClientRefused);
    let client = Uuid::parse_str(client_id)
        .ok()
        .filter(|u| u.hyphenated().to_string() == client_id)
        .ok_or_else(refused)?;
    if secret.is_empty() || secret.len() > 256 {
        return Err(refused());
    }
    let m = &core.settings.machine_credentials;
    let now = core.now();
    // Count the attempt before checking the secret, atomically, so that
    // concurrent guesses are all counted and cannot outrun the lockout.
    let window = i64::try_from(m.failure_window_secs).unwrap_or(900) * 1_000_000;
    let attempt = credentials::count_attempt(&core.db, client, now, window).await?;
    if attempt.locked_until.is_some_and(|until| until > now) {
        return Err(IdentityError::ClientLocked.into());
    }
    let n = u32::try_from(attempt.failures).unwrap_or(u32::MAX);
    let throttle = credential::throttle(n, m.slowdown_after, m.slowdown_ms, m.lockout_after);
    let row = credentials::get(&core.db, client).await?;
    if throttle == Throttle::Lock {
        lock(core, client, row.as_ref(), now).await?;
        return Err(IdentityError::ClientLocked.into());
    }
    let hash = row
        .as_ref()
        .map_or_else(|| core.dummy_hash.clone(), |r| r.secret_hash.clone());
    let hasher = core.hasher.clone();
    let good = tokio::task::spawn_blocking(move || hasher.verify(&secret, &hash))
        .await
        .map_err(Error::internal)?;
    let Some(row) = row.filter(|_| good) else {
        if let Throttle::SlowDown(delay) = throttle {
            tokio::time::sleep(delay).await;
        }
        tracing::info!(client_id = %client, attempt = n, "bad client secret");
        return Err(refused());
    };
    credentials::forgive_attempt(&core.db, client).await?;
    if row.state(core.now()) != CredentialState::Active {
        return Err(refused());
    }
    let now = core.now();
    let principal = Principal::Credential(client);
    let business = row.business.to_string();
    let (token, exp) = core
        .mint(
            principal,
            None,
            None,
            Some(&business),
            now,
            // Never past the credential's own expiry.
            Some(row.expire_time),
        )
        .await?;
    Ok(pb::MachineToken {
        access_token: token,
        expire_time: Some(timestamp(exp)),
        principal: principal.to_string(),
        business,
    })
}

/// Locks a client id after repeated bad secrets, with an audit record.
async fn lock(
    core: &Core,
    client: Uuid,
    row: Option<&MachineCredential>,
    now: DateTime<Utc>,
) -> Result<()> {
    let m = &core.settings.machine_credentials;
    let until = now + Duration::seconds(i64::try_from(m.lockout_secs).unwrap_or(900));
    let mut w = match core.writer.begin::<()>(WriteBy::system()).await? {
        Begun::Replayed(()) => return Ok(()),
        Begun::Fresh(w) => *w,
    };
    credentials::lock_client(w.txn(), client, until, now).await?;
    let target = row.map_or_else(|| format!("clients/{client}"), MachineCredential::name);
    let mut change = Change::audit("identity.credential.lock", target).after(serde_json::json!({
        "locked_until": until.to_rfc3339(),
        "reason": "repeated bad secrets",
    }));
    if let Some(r) = row {
        change = change.acting_for(r.business.as_str());
    }
    w.record(change).await?;
    w.commit(()).await?;
    tracing::warn!(client_id = %client, "client id locked after repeated bad secrets");
    Ok(())
}
