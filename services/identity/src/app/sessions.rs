//! Sessions (R-ID-3): sign-in through a trusted issuer, refresh-token
//! rotation with family revocation on reuse, sign-out, and the checks that a
//! caller's session or credential is still live.

use ccp_platform::auth::{
    ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, AccessClaims, Caller, Principal,
};
use ccp_platform::error::{Error, Result};
use ccp_platform::store::{Begun, Change, WriteBy, timestamp};
use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;
use ccp_types::RequestId;
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::Core;
use crate::domain::IdentityError;
use crate::domain::credential::CredentialState;
use crate::domain::session::SessionFamily;
use crate::secrets;
use crate::store::revocations::{self, Revoked};
use crate::store::{credentials, profiles, sessions};

/// A session family just started (or rotated): its refresh token in clear,
/// to be minted into a session after commit.
pub(crate) struct NewFamily {
    family: String,
    refresh: String,
    expire: DateTime<Utc>,
}

impl Core {
    /// Signs an access token for `principal`, never valid past `not_after`.
    pub(crate) async fn mint(
        &self,
        principal: Principal,
        family: Option<&str>,
        profile: Option<Uuid>,
        business: Option<&str>,
        now: DateTime<Utc>,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<(String, DateTime<Utc>)> {
        let signer = self.keys.signer().await.map_err(Error::internal)?;
        let exp = not_after.map_or(now + self.access_ttl(), |n| n.min(now + self.access_ttl()));
        let claims = AccessClaims {
            iss: ACCESS_TOKEN_ISSUER.to_owned(),
            aud: ACCESS_TOKEN_AUDIENCE.to_owned(),
            sub: principal.to_string(),
            exp: exp.timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: Uuid::new_v4().to_string(),
            sid: family.map(str::to_owned),
            pid: profile.map(|p| p.to_string()),
            bn: business.map(str::to_owned),
        };
        let token = signer.sign(&claims).map_err(Error::internal)?;
        Ok((
            token,
            DateTime::from_timestamp(exp.timestamp(), 0).unwrap_or(exp),
        ))
    }

    /// Starts a session family for `person` in `txn` and returns its refresh
    /// token (to be minted into a session after commit).
    pub(crate) async fn start_family<C: ConnectionTrait>(
        &self,
        txn: &C,
        person: Uuid,
        issuer: &str,
        now: DateTime<Utc>,
    ) -> Result<NewFamily> {
        let family = SessionFamily {
            id: Uuid::new_v4().to_string(),
            person,
            issuer: issuer.to_owned(),
            create_time: now,
            expire_time: now + self.refresh_ttl(),
            revoke_time: None,
        };
        sessions::insert_family(txn, &family).await?;
        let refresh = secrets::new_refresh_token();
        sessions::insert_refresh(
            txn,
            &secrets::refresh_token_hash(&refresh),
            &family.id,
            now,
            family.expire_time,
        )
        .await?;
        Ok(NewFamily {
            family: family.id,
            refresh,
            expire: family.expire_time,
        })
    }

    /// Starts a fresh session family in its own transaction. Used when a
    /// replayed CreateProfile answers: its stored response holds no session
    /// (refresh tokens are kept only as hashes), and a session start is not
    /// audited (as at sign-in, the audit record is of the sign-in).
    pub(crate) async fn fresh_session(&self, person: Uuid, issuer: &str) -> Result<pb::Session> {
        let now = self.now();
        let txn = ccp_platform::db::begin_write(&self.db).await?;
        let family = self.start_family(&txn, person, issuer, now).await?;
        txn.commit().await?;
        self.session(person, &family, Some(person), now).await
    }

    /// Mints the session of `family`.
    pub(crate) async fn session(
        &self,
        person: Uuid,
        family: &NewFamily,
        profile: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<pb::Session> {
        let principal = Principal::Person(person);
        let (access, exp) = self
            .mint(principal, Some(&family.family), profile, None, now, None)
            .await?;
        Ok(pb::Session {
            access_token: access,
            access_token_expire_time: Some(timestamp(exp)),
            refresh_token: family.refresh.clone(),
            refresh_token_expire_time: Some(timestamp(family.expire)),
            principal: principal.to_string(),
            profile: profile.map(|p| format!("profiles/{p}")).unwrap_or_default(),
            profile_required: profile.is_none(),
        })
    }

    /// Returns the calling person, refusing tokens of a revoked or unknown
    /// session family (defence in depth: the gateway refuses them too).
    pub(crate) async fn person(&self, caller: &Caller) -> Result<Uuid> {
        self.person_session(caller).await.map(|(id, _)| id)
    }

    /// Like [`Core::person`], also returning the session's issuer.
    pub(crate) async fn person_session(&self, caller: &Caller) -> Result<(Uuid, String)> {
        let Principal::Person(id) = caller.principal else {
            return Err(IdentityError::NotAPerson.into());
        };
        let family = caller.session_family.ok_or(IdentityError::NoSession)?;
        match sessions::get_family(&self.db, &family.to_string()).await? {
            Some(f) if f.revoke_time.is_none() && f.person == id => Ok((id, f.issuer)),
            _ => Err(IdentityError::SessionEnded.into()),
        }
    }

    /// Refuses a caller whose session ended or whose credential is revoked,
    /// expired or unknown (defence in depth: the gateway refuses them too).
    pub(crate) async fn check_caller(&self, caller: &Caller) -> Result<()> {
        match caller.principal {
            Principal::Person(_) => self.person(caller).await.map(|_| ()),
            Principal::Credential(id) => {
                let row = credentials::get(&self.db, id).await?;
                let active = row.is_some_and(|c| {
                    Some(c.business.as_str()) == caller.business.as_deref()
                        && c.state(self.now()) == CredentialState::Active
                });
                if active {
                    Ok(())
                } else {
                    Err(IdentityError::CredentialInvalid.into())
                }
            }
        }
    }

    /// Revokes a family whose rotated refresh token was presented again.
    async fn revoke_family_for_reuse(&self, family: &SessionFamily) -> Result<()> {
        let principal = family.principal();
        let mut w = match self
            .writer
            .begin::<()>(WriteBy::once(principal.clone()))
            .await?
        {
            Begun::Replayed(()) => return Ok(()),
            Begun::Fresh(w) => *w,
        };
        w.bump_revision(&principal).await?;
        let now = w.now();
        if !sessions::revoke_family(w.txn(), &family.id, "refresh token reused", now).await? {
            // Revoked meanwhile: nothing to record, the unit rolls back.
            return Ok(());
        }
        revocations::record(w.txn(), Revoked::Family(family.id.clone()), now).await?;
        w.record(
            Change::new(
                EventType::SessionFamilyRevoked,
                "identity.session.revoke_family",
                family.name(),
            )
            .after(serde_json::json!({
                "family": family.id,
                "reason": "a rotated refresh token was presented again",
            }))
            .principals([principal.clone()])
            .token_families([family.id.clone()]),
        )
        .await?;
        w.commit(()).await?;
        tracing::warn!(principal = %principal, family = %family.id, "refresh token reuse: session family revoked");
        Ok(())
    }
}

/// Signs a person in with an id token of a trusted issuer: maps (issuer,
/// subject) to a person (a first sign-in creates one), starts a session
/// family and returns its session.
pub async fn sign_in(core: &Core, id_token: &str) -> Result<pb::Session> {
    if id_token.is_empty() || id_token.len() > 16 * 1024 {
        return Err(IdentityError::IdTokenRequired.into());
    }
    let identity = core.issuers.verify(id_token).await.map_err(|e| {
        tracing::info!(reason = %e, "id token refused");
        Error::from(IdentityError::IdTokenRefused)
    })?;
    // The person mapping, the session and the audit record commit together;
    // a concurrent first sign-in of the same subject loses on the primary
    // key and retries, finding the winner's person.
    let mut attempt = 0;
    let (w, person, first, family, profile) = loop {
        attempt += 1;
        // Read first outside the transaction, so that SQLite's write lock
        // (taken when the unit of work begins) is held for the writes only.
        let known = profiles::find_person(&core.db, &identity.issuer, &identity.subject).await?;
        let (person, first) = match known {
            Some(p) => (p, false),
            None => (Uuid::new_v4(), true),
        };
        let principal = Principal::Person(person).to_string();
        let w = match core.writer.begin::<()>(WriteBy::once(principal)).await? {
            Begun::Replayed(()) => {
                return Err(Error::internal(anyhow::anyhow!(
                    "a sign-in has no request id to replay"
                )));
            }
            Begun::Fresh(w) => *w,
        };
        let now = w.now();
        if first {
            match profiles::insert_identity(
                w.txn(),
                &identity.issuer,
                &identity.subject,
                person,
                now,
            )
            .await
            {
                Ok(()) => {}
                Err(err) if attempt < 3 && ccp_platform::db::is_unique_violation(&err) => {
                    drop(w);
                    continue;
                }
                Err(err) => return Err(err.into()),
            }
        }
        let profile = profiles::get(w.txn(), person).await?.map(|_| person);
        let family = core
            .start_family(w.txn(), person, &identity.issuer, now)
            .await?;
        break (w, person, first, family, profile);
    };
    let mut w = w;
    let now = w.now();
    w.record(
        Change::audit(
            "identity.session.sign_in",
            format!("sessions/{}", family.family),
        )
        .after(serde_json::json!({
            "issuer": identity.issuer_name,
            "first_sign_in": first,
            "profile_required": profile.is_none(),
        })),
    )
    .await?;
    w.commit(()).await?;
    tracing::info!(principal = %Principal::Person(person), issuer = %identity.issuer_name, first, "signed in");
    core.session(person, &family, profile, now).await
}

/// Rotates a refresh token: the presented one is used up and a new one of
/// the same family returned with a fresh access token. A used token presented
/// again revokes its whole family.
pub async fn refresh(core: &Core, refresh_token: &str) -> Result<pb::Session> {
    let refused = || Error::from(IdentityError::RefreshRefused);
    if refresh_token.is_empty() || refresh_token.len() > 512 {
        return Err(refused());
    }
    let hash = secrets::refresh_token_hash(refresh_token);
    let token = sessions::get_refresh(&core.db, &hash)
        .await?
        .ok_or_else(refused)?;
    let family = sessions::get_family(&core.db, &token.family_id)
        .await?
        .ok_or_else(refused)?;
    let now = core.now();
    if family.revoke_time.is_some() {
        return Err(refused());
    }
    if token.used_time.is_some() {
        core.revoke_family_for_reuse(&family).await?;
        return Err(refused());
    }
    if token.expire_time <= now || family.expire_time <= now {
        return Err(refused());
    }
    let principal = family.principal();
    let mut w = match core.writer.begin::<()>(WriteBy::once(principal)).await? {
        Begun::Replayed(()) => return Err(refused()),
        Begun::Fresh(w) => *w,
    };
    let now = w.now();
    if !sessions::use_refresh(w.txn(), &hash, now).await? {
        // Used concurrently: presented twice.
        drop(w);
        core.revoke_family_for_reuse(&family).await?;
        return Err(refused());
    }
    let refresh = secrets::new_refresh_token();
    sessions::insert_refresh(
        w.txn(),
        &secrets::refresh_token_hash(&refresh),
        &family.id,
        now,
        family.expire_time,
    )
    .await?;
    w.record(Change::audit("identity.session.refresh", family.name()))
        .await?;
    w.commit(()).await?;
    let profile = profiles::get(&core.db, family.person)
        .await?
        .map(|_| family.person);
    let new = NewFamily {
        family: family.id,
        refresh,
        expire: family.expire_time,
    };
    core.session(family.person, &new, profile, now).await
}

/// Signs the caller out: revokes the session family of their access token.
pub async fn sign_out(
    core: &Core,
    caller: &Caller,
    request_id: RequestId,
) -> Result<pb::SignOutResponse> {
    let Principal::Person(_) = caller.principal else {
        return Err(IdentityError::NothingToSignOut.into());
    };
    let family = caller
        .session_family
        .ok_or(IdentityError::NoSession)?
        .to_string();
    let principal = caller.principal.to_string();
    let mut w = match core
        .writer
        .begin(WriteBy::idempotent(
            principal.clone(),
            "SignOut",
            request_id,
        ))
        .await?
    {
        Begun::Replayed(r) => return Ok(r),
        Begun::Fresh(w) => *w,
    };
    let revision = w.bump_revision(&principal).await?;
    let revoked = sessions::revoke_family(w.txn(), &family, "signed out", w.now()).await?;
    if revoked {
        revocations::record(w.txn(), Revoked::Family(family.clone()), w.now()).await?;
    }
    w.record(
        Change::new(
            EventType::SessionSignedOut,
            "identity.session.sign_out",
            format!("sessions/{family}"),
        )
        .after(serde_json::json!({ "family": family, "revoked": revoked }))
        .principals([principal.clone()])
        .token_families([family.clone()]),
    )
    .await?;
    let written = w.commit(pb::SignOutResponse { revision }).await?;
    if !written.is_replay() {
        tracing::info!(principal = %principal, family = %family, "signed out");
    }
    Ok(written.into_inner())
}
