//! proto -> domain: each request parsed into what its use case takes, every
//! bad field named.

use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::paging::{PageKey, PageScope};
use ccp_platform::store::{AuditScope, from_timestamp};
use ccp_proto::identity::v1 as pb;
use ccp_types::{Bn9, RequestId, parse_business_child};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::app::audit::AuditPage;
use crate::app::credentials::{CredentialPage, NewCredential};
use crate::app::profiles::{ProfileField, ProfileUpdate};
use crate::domain::credential;
use crate::domain::profile::{Language, ProfileFields, RawProfileFields};

/// Collects the violations of one request.
#[derive(Debug, Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn check<T>(&mut self, r: std::result::Result<T, FieldViolation>) -> Option<T> {
        r.map_err(|v| self.0.push(v)).ok()
    }

    fn check_all<T>(&mut self, r: Result<T>) -> Option<T> {
        r.map_err(|e| self.0.extend(e.violations().to_vec())).ok()
    }

    fn push(&mut self, field: &str, description: &str) {
        self.0.push(FieldViolation::new(field, description));
    }

    fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(self.0))
        }
    }
}

/// Every field violated and nothing returned: only when `finish` passed but
/// a value is missing, which cannot happen.
fn incomplete() -> Error {
    Error::invalid(vec![])
}

/// Returns the raw fields of a proto profile.
pub fn raw_fields(p: &pb::Profile) -> RawProfileFields {
    RawProfileFields {
        legal_name: p.legal_name.clone(),
        email: p.email.clone(),
        phone: p.phone.clone(),
        preferred_language: match pb::Language::try_from(p.preferred_language) {
            Ok(pb::Language::En) => Some(Language::En),
            Ok(pb::Language::Fr) => Some(Language::Fr),
            _ => None,
        },
        email_notifications: p.email_notifications,
        notification_choices: p
            .notification_choices
            .iter()
            .map(|c| (c.kind.clone(), c.enabled))
            .collect(),
    }
}

/// Parses a sign-out's request id.
pub fn sign_out(req: &pb::SignOutRequest) -> Result<RequestId> {
    RequestId::parse(&req.request_id).map_err(|v| Error::invalid(vec![v]))
}

/// Parses a CreateProfile request.
pub fn create_profile(req: &pb::CreateProfileRequest) -> Result<(RequestId, ProfileFields)> {
    let mut v = Violations::default();
    let request_id = v.check(RequestId::parse(&req.request_id));
    let fields = match &req.profile {
        None => {
            v.push("profile", "is required");
            None
        }
        Some(p) => raw_fields(p)
            .parse("profile.")
            .map_err(|e| v.0.extend(e))
            .ok(),
    };
    v.finish()?;
    request_id.zip(fields).ok_or_else(incomplete)
}

/// Parses an UpdateMyProfile request as far as it alone can be.
pub fn update_profile(req: pb::UpdateMyProfileRequest) -> Result<ProfileUpdate> {
    const FIELDS: [(&str, ProfileField); 6] = [
        ("legal_name", ProfileField::LegalName),
        ("email", ProfileField::Email),
        ("phone", ProfileField::Phone),
        ("preferred_language", ProfileField::PreferredLanguage),
        ("email_notifications", ProfileField::EmailNotifications),
        ("notification_choices", ProfileField::NotificationChoices),
    ];
    let mut v = Violations::default();
    let request_id = v.check(RequestId::parse(&req.request_id));
    let paths: Vec<String> = match &req.update_mask {
        Some(mask) if !mask.paths.is_empty() => mask.paths.clone(),
        _ => FIELDS.iter().map(|(f, _)| (*f).to_owned()).collect(),
    };
    let mut fields = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        match FIELDS.iter().find(|(name, _)| name == p) {
            Some((_, field)) => fields.push(*field),
            None => v.0.push(FieldViolation::new(
                format!("update_mask.paths[{i}]"),
                format!("`{p}` cannot be updated"),
            )),
        }
    }
    let Some(patch) = req.profile else {
        v.push("profile", "is required");
        return Err(Error::invalid(v.0));
    };
    if patch.etag.is_empty() {
        v.push("profile.etag", "is required");
    }
    Ok(ProfileUpdate {
        request_id,
        paths: fields,
        incoming: raw_fields(&patch),
        etag: patch.etag,
        violations: v.0,
    })
}

/// Parses a CreateMachineCredential request (its expiry checked at `now`).
pub fn create_credential(
    req: &pb::CreateMachineCredentialRequest,
    now: DateTime<Utc>,
) -> Result<NewCredential> {
    let mut v = Violations::default();
    let request_id = v.check(RequestId::parse(&req.request_id));
    let business = v.check(ccp_types::BusinessRef::parse(&req.parent, "parent"));
    let display_name = v
        .check(credential::parse_display_name(&req.display_name).map_err(|e| e.on("display_name")));
    let expire_time = match req.expire_time.as_ref().map(from_timestamp) {
        None => {
            v.push("expire_time", "is required");
            None
        }
        Some(None) => {
            v.push("expire_time", "is out of range");
            None
        }
        Some(Some(t)) => v.check(
            credential::check_expiry(t, now)
                .map(|()| t)
                .map_err(|e| e.on("expire_time")),
        ),
    };
    v.finish()?;
    match (request_id, business, display_name, expire_time) {
        (Some(request_id), Some(business), Some(display_name), Some(expire_time)) => {
            Ok(NewCredential {
                request_id,
                business,
                display_name,
                expire_time,
            })
        }
        _ => Err(incomplete()),
    }
}

/// Parses a ListMachineCredentials request.
pub fn list_credentials(
    req: &pb::ListMachineCredentialsRequest,
    key: &PageKey,
    caller: &str,
) -> Result<CredentialPage> {
    let mut v = Violations::default();
    let business = v.check(ccp_types::BusinessRef::parse(&req.parent, "parent"));
    let size = v.check_all(ccp_platform::paging::page_size(req.page_size, 50, 500));
    let pages = PageScope {
        key: key.clone(),
        rpc: "identity.ListMachineCredentials",
        parent: business
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        filter: format!("show_inactive={}", req.show_inactive),
        caller: caller.to_owned(),
    };
    // A token is checked against the parent it names only once that parses.
    let after = match &business {
        Some(_) => v.check_all(pages.decode(&req.page_token)).flatten(),
        None => None,
    };
    v.finish()?;
    let (Some(business), Some(size)) = (business, size) else {
        return Err(incomplete());
    };
    Ok(CredentialPage {
        business,
        size,
        after,
        show_inactive: req.show_inactive,
        pages,
    })
}

/// Parses `businesses/{bn9}/machineCredentials/{uuid}`.
pub fn parse_credential_name(name: &str) -> std::result::Result<(Bn9, Uuid), FieldViolation> {
    let child = parse_business_child(name, "machineCredentials", "name")?;
    let id = child.uuid("name")?;
    Ok((child.business, id))
}

/// Parses a RevokeMachineCredential request.
pub fn revoke_credential(
    req: &pb::RevokeMachineCredentialRequest,
) -> Result<(RequestId, Bn9, Uuid, String)> {
    let mut v = Violations::default();
    let request_id = v.check(RequestId::parse(&req.request_id));
    let name = v.check(parse_credential_name(&req.name));
    let reason = v.check(credential::parse_reason(&req.reason).map_err(|e| e.on("reason")));
    v.finish()?;
    match (request_id, name, reason) {
        (Some(request_id), Some((bn, id)), Some(reason)) => Ok((request_id, bn, id, reason)),
        _ => Err(incomplete()),
    }
}

/// Parses a ListAuditEvents request of `caller` (principal).
pub fn list_audit(
    req: &pb::ListAuditEventsRequest,
    key: &PageKey,
    caller: &str,
) -> Result<AuditPage> {
    let mut v = Violations::default();
    let scope = if req.parent == "profiles/me" {
        Some(AuditScope::Actor(caller.to_owned()))
    } else {
        match ccp_types::BusinessRef::parse(&req.parent, "parent") {
            Ok(bn) => Some(AuditScope::Business(bn.to_string())),
            Err(_) => {
                v.push(
                    "parent",
                    "must be businesses/{bn9}, the bare BN9 or profiles/me",
                );
                None
            }
        }
    };
    let size = v.check_all(ccp_platform::paging::page_size(req.page_size, 50, 500));
    let pages = PageScope {
        key: key.clone(),
        rpc: "identity.ListAuditEvents",
        parent: match &scope {
            Some(AuditScope::Business(bn)) => bn.clone(),
            _ => req.parent.clone(),
        },
        filter: format!(
            "start_time={:?}",
            req.start_time.as_ref().map(|t| (t.seconds, t.nanos))
        ),
        caller: caller.to_owned(),
    };
    // A token is checked against the parent it names only once that parses.
    let after = match &scope {
        Some(_) => v.check_all(pages.decode(&req.page_token)).flatten(),
        None => None,
    };
    let after = match after.map(|a| a.parse::<i64>()) {
        None => Some(0),
        Some(Ok(seq)) => Some(seq),
        Some(Err(_)) => {
            v.push("page_token", "is not a token this list returned");
            None
        }
    };
    let start = match req.start_time.as_ref().map(from_timestamp) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => {
            v.push("start_time", "is out of range");
            None
        }
    };
    v.finish()?;
    let (Some(scope), Some(size), Some(after)) = (scope, size, after) else {
        return Err(incomplete());
    };
    // Records are named under the canonical parent, whichever form was asked.
    let parent = match &scope {
        AuditScope::Business(bn) => format!("businesses/{bn}"),
        AuditScope::Actor(_) => req.parent.clone(),
    };
    Ok(AuditPage {
        scope,
        parent,
        size,
        after,
        start,
        pages,
    })
}

/// Parses a GetProfiles request: at most 1000 uuids, duplicates dropped.
pub fn profile_ids(req: &pb::GetProfilesRequest) -> Result<Vec<Uuid>> {
    if req.profile_ids.len() > 1000 {
        return Err(Error::invalid_field(
            "profile_ids",
            "at most 1000 ids per call",
        ));
    }
    let mut v = Violations::default();
    let mut ids: Vec<Uuid> = Vec::with_capacity(req.profile_ids.len());
    for (i, id) in req.profile_ids.iter().enumerate() {
        match Uuid::parse_str(id) {
            Ok(u) => {
                if !ids.contains(&u) {
                    ids.push(u);
                }
            }
            Err(_) => v.0.push(FieldViolation::new(
                format!("profile_ids[{i}]"),
                "must be a uuid",
            )),
        }
    }
    v.finish()?;
    Ok(ids)
}

/// Parses a GetCredential request's id.
pub fn credential_id(req: &pb::GetCredentialRequest) -> Result<Uuid> {
    Uuid::parse_str(&req.credential_id)
        .map_err(|_| Error::invalid_field("credential_id", "must be a uuid"))
}
