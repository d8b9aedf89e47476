//! Personal profiles (R-ID-2): create (which starts a session that names
//! the profile), read and update one's own.

use ccp_platform::auth::Caller;
use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::store::{Begun, Change, WriteBy, Written};
use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1 as pb;
use ccp_types::RequestId;

use super::{Core, wire};
use crate::domain::IdentityError;
use crate::domain::profile::{Profile, ProfileFields, RawProfileFields};
use crate::store::profiles;

/// An editable field of a profile, as an update mask names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    /// `legal_name`.
    LegalName,
    /// `email`.
    Email,
    /// `phone`.
    Phone,
    /// `preferred_language`.
    PreferredLanguage,
    /// `email_notifications`.
    EmailNotifications,
    /// `notification_choices` (the whole list).
    NotificationChoices,
}

/// An update of one's own profile, as far as the request alone can parse it:
/// the rest (the merge with the stored profile) needs the store.
#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    /// The write's request id, when valid.
    pub request_id: Option<RequestId>,
    /// The fields to change.
    pub paths: Vec<ProfileField>,
    /// The incoming values.
    pub incoming: RawProfileFields,
    /// The etag the caller read.
    pub etag: String,
    /// What the request got wrong so far.
    pub violations: Vec<FieldViolation>,
}

/// Creates the caller's profile and returns it with a session that names it.
/// A replay returns the stored profile with a fresh session.
pub async fn create(
    core: &Core,
    caller: &Caller,
    request_id: RequestId,
    fields: ProfileFields,
) -> Result<pb::CreateProfileResponse> {
    let (person, issuer) = core.person_session(caller).await?;
    let principal = caller.principal.to_string();
    let mut w = match core
        .writer
        .begin::<pb::CreateProfileResponse>(WriteBy::idempotent(
            principal.clone(),
            "CreateProfile",
            request_id,
        ))
        .await?
    {
        Begun::Replayed(mut stored) => {
            // The stored response holds no session (refresh tokens are kept
            // only as hashes): a replay gets a fresh one.
            stored.session = Some(core.fresh_session(person, &issuer).await?);
            return Ok(stored);
        }
        Begun::Fresh(w) => *w,
    };
    let revision = w.bump_revision(&principal).await?;
    if profiles::get(w.txn(), person).await?.is_some() {
        return Err(IdentityError::ProfileExists.into());
    }
    let now = w.now();
    let profile = Profile::new(person, fields, now);
    if let Err(err) = profiles::insert(w.txn(), &profile).await {
        if ccp_platform::db::is_unique_violation(&err) {
            return Err(IdentityError::ProfileExists.into());
        }
        return Err(err.into());
    }
    let after = serde_json::to_string(&profile.fields).map_err(Error::internal)?;
    w.record(
        Change::new(
            EventType::ProfileCreated,
            "identity.profile.create",
            profile.name(),
        )
        .after(after)
        .principals([principal.clone()]),
    )
    .await?;
    let family = core.start_family(w.txn(), person, &issuer, now).await?;
    let stored = pb::CreateProfileResponse {
        profile: Some(wire::profile(&profile)),
        session: None,
        revision,
    };
    match w.commit(stored).await? {
        Written::Replayed(mut r) => {
            r.session = Some(core.fresh_session(person, &issuer).await?);
            Ok(r)
        }
        Written::Fresh(mut r) => {
            tracing::info!(principal = %principal, "profile created");
            r.session = Some(core.session(person, &family, Some(person), now).await?);
            Ok(r)
        }
    }
}

/// Returns the caller's own profile.
pub async fn get_mine(core: &Core, caller: &Caller) -> Result<pb::Profile> {
    let profile = caller.require_profile()?;
    core.person(caller).await?;
    let p = profiles::get(&core.db, profile)
        .await?
        .ok_or(IdentityError::NoProfile)?;
    Ok(wire::profile(&p))
}

/// Updates the caller's own profile, refusing a stale etag.
pub async fn update_mine(
    core: &Core,
    caller: &Caller,
    update: ProfileUpdate,
) -> Result<pb::UpdateMyProfileResponse> {
    let ProfileUpdate {
        request_id,
        paths,
        incoming,
        etag,
        mut violations,
    } = update;
    let profile = caller.require_profile()?;
    core.person(caller).await?;
    let current = profiles::get(&core.db, profile)
        .await?
        .ok_or(IdentityError::NoProfile)?;
    let mut raw = current.raw();
    for p in &paths {
        match p {
            ProfileField::LegalName => raw.legal_name = incoming.legal_name.clone(),
            ProfileField::Email => raw.email = incoming.email.clone(),
            ProfileField::Phone => raw.phone = incoming.phone.clone(),
            ProfileField::PreferredLanguage => raw.preferred_language = incoming.preferred_language,
            ProfileField::EmailNotifications => {
                raw.email_notifications = incoming.email_notifications;
            }
            ProfileField::NotificationChoices => {
                raw.notification_choices = incoming.notification_choices.clone();
            }
        }
    }
    let fields = raw.parse("profile.").map_err(|e| violations.extend(e)).ok();
    if !violations.is_empty() {
        return Err(Error::invalid(violations));
    }
    let (Some(request_id), Some(fields)) = (request_id, fields) else {
        return Err(Error::invalid(vec![]));
    };
    let principal = caller.principal.to_string();
    let mut w = match core
        .writer
        .begin(WriteBy::idempotent(
            principal.clone(),
            "UpdateMyProfile",
            request_id,
        ))
        .await?
    {
        Begun::Replayed(r) => return Ok(r),
        Begun::Fresh(w) => *w,
    };
    if etag != current.version.to_string() {
        return Err(IdentityError::StaleProfile.into());
    }
    let revision = w.bump_revision(&principal).await?;
    let next = current.updated(fields, w.now());
    if !profiles::update(w.txn(), &next).await? {
        return Err(IdentityError::StaleProfile.into());
    }
    let before = serde_json::to_string(&current.fields).map_err(Error::internal)?;
    let after = serde_json::to_string(&next.fields).map_err(Error::internal)?;
    w.record(
        Change::new(
            EventType::ProfileUpdated,
            "identity.profile.update",
            next.name(),
        )
        .before(before)
        .after(after)
        .principals([principal]),
    )
    .await?;
    let response = pb::UpdateMyProfileResponse {
        profile: Some(wire::profile(&next)),
        revision,
    };
    Ok(w.commit(response).await?.into_inner())
}
