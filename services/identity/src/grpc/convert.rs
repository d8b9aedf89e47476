//! proto <-> domain and store conversions.

use ccp_platform::error::FieldViolation;
use ccp_platform::store::timestamp;
use ccp_proto::identity::v1 as pb;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Bn9;
use crate::domain::credential::CredentialState;
use crate::domain::profile::{Language, RawProfileFields};
use crate::store::from_us;
use crate::store::keys::SigningKeyRow;
use crate::store::repo::{CredentialRow, ProfileRow};

fn language_to_proto(code: &str) -> pb::Language {
    match Language::from_code(code) {
        Some(Language::En) => pb::Language::En,
        Some(Language::Fr) => pb::Language::Fr,
        None => pb::Language::Unspecified,
    }
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
    }
}

/// Returns the raw fields of a stored profile.
pub fn raw_from_row(r: &ProfileRow) -> RawProfileFields {
    RawProfileFields {
        legal_name: r.legal_name.clone(),
        email: r.email.clone(),
        phone: r.phone.clone(),
        preferred_language: Language::from_code(&r.preferred_language),
        email_notifications: r.email_notifications,
    }
}

/// Returns the proto of a stored profile.
pub fn profile(r: &ProfileRow) -> pb::Profile {
    pb::Profile {
        name: format!("profiles/{}", r.id),
        principal: format!("person:{}", r.id),
        legal_name: r.legal_name.clone(),
        email: r.email.clone(),
        phone: r.phone.clone(),
        preferred_language: language_to_proto(&r.preferred_language) as i32,
        email_notifications: r.email_notifications,
        create_time: Some(timestamp(r.create_time())),
        update_time: Some(timestamp(r.update_time())),
        etag: r.version.to_string(),
    }
}

/// Returns the facts summary of a stored profile.
pub fn summary(r: &ProfileRow) -> pb::ProfileSummary {
    pb::ProfileSummary {
        profile_id: r.id.clone(),
        principal: format!("person:{}", r.id),
        legal_name: r.legal_name.clone(),
        email: r.email.clone(),
        preferred_language: language_to_proto(&r.preferred_language) as i32,
    }
}

/// Returns the proto of a stored credential, its state as of `now`.
pub fn credential(r: &CredentialRow, now: DateTime<Utc>) -> pb::MachineCredential {
    let state = match CredentialState::at(from_us(r.expire_us), r.revoke_us.map(from_us), now) {
        CredentialState::Active => pb::MachineCredentialState::Active,
        CredentialState::Expired => pb::MachineCredentialState::Expired,
        CredentialState::Revoked => pb::MachineCredentialState::Revoked,
    };
    pb::MachineCredential {
        name: format!("businesses/{}/machineCredentials/{}", r.business, r.id),
        principal: format!("credential:{}", r.id),
        client_id: r.id.clone(),
        display_name: r.display_name.clone(),
        business: r.business.clone(),
        state: state as i32,
        create_time: Some(timestamp(from_us(r.create_us))),
        expire_time: Some(timestamp(from_us(r.expire_us))),
        revoke_time: r.revoke_us.map(|v| timestamp(from_us(v))),
        creator: r.creator.clone(),
        etag: r.version.to_string(),
    }
}

/// Returns the proto of a signing key.
pub fn signing_key(k: &SigningKeyRow) -> pb::SigningKey {
    pb::SigningKey {
        kid: k.kid.clone(),
        algorithm: "EdDSA".to_owned(),
        public_key: k.public_key.clone(),
        state: if k.is_active() {
            pb::SigningKeyState::Active
        } else {
            pb::SigningKeyState::Retired
        } as i32,
        create_time: Some(timestamp(k.create_time())),
        publish_until: k.publish_until().map(timestamp),
    }
}

/// Parses `businesses/{bn9}/machineCredentials/{uuid}`.
pub fn parse_credential_name(name: &str) -> Result<(Bn9, Uuid), FieldViolation> {
    let bad = || FieldViolation::new("name", "must be businesses/{bn9}/machineCredentials/{uuid}");
    let rest = name.strip_prefix("businesses/").ok_or_else(bad)?;
    let (bn, id) = rest.split_once("/machineCredentials/").ok_or_else(bad)?;
    let bn = Bn9::parse(bn, "name")?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((bn, id))
}
