//! Domain -> proto answers. A write's answer is stored for replay as the
//! protobuf message the client gets, so use cases build it; the gRPC layer
//! only parses requests.

use ccp_platform::store::timestamp;
use ccp_proto::identity::v1 as pb;
use chrono::{DateTime, Utc};

use crate::domain::credential::{CredentialState, MachineCredential};
use crate::domain::keys::SigningKey;
use crate::domain::profile::{Language, Profile};

fn language(l: Language) -> pb::Language {
    match l {
        Language::En => pb::Language::En,
        Language::Fr => pb::Language::Fr,
    }
}

/// Returns a profile's choices per kind of notice, in the order of the kinds.
fn choices(p: &Profile) -> Vec<pb::NotificationChoice> {
    ccp_types::NOTICE_KINDS
        .iter()
        .filter_map(|kind| {
            p.fields
                .notification_choices
                .get(*kind)
                .map(|enabled| pb::NotificationChoice {
                    kind: (*kind).to_owned(),
                    enabled: *enabled,
                })
        })
        .collect()
}

/// Returns the proto of a profile.
pub fn profile(p: &Profile) -> pb::Profile {
    pb::Profile {
        name: p.name(),
        principal: format!("person:{}", p.id),
        legal_name: p.fields.legal_name.clone(),
        email: p.fields.email.clone(),
        phone: p.fields.phone.clone(),
        preferred_language: language(p.fields.preferred_language) as i32,
        email_notifications: p.fields.email_notifications,
        create_time: Some(timestamp(p.create_time)),
        update_time: Some(timestamp(p.update_time)),
        etag: p.version.to_string(),
        notification_choices: choices(p),
    }
}

/// Returns the facts summary of a profile.
pub fn summary(p: &Profile) -> pb::ProfileSummary {
    pb::ProfileSummary {
        profile_id: p.id.to_string(),
        principal: format!("person:{}", p.id),
        legal_name: p.fields.legal_name.clone(),
        email: p.fields.email.clone(),
        preferred_language: language(p.fields.preferred_language) as i32,
        email_notifications: p.fields.email_notifications,
        notification_choices: choices(p),
    }
}

/// Returns the proto of a credential, its state as of `now`.
pub fn credential(c: &MachineCredential, now: DateTime<Utc>) -> pb::MachineCredential {
    let state = match c.state(now) {
        CredentialState::Active => pb::MachineCredentialState::Active,
        CredentialState::Expired => pb::MachineCredentialState::Expired,
        CredentialState::Revoked => pb::MachineCredentialState::Revoked,
    };
    pb::MachineCredential {
        name: c.name(),
        principal: c.principal(),
        client_id: c.id.to_string(),
        display_name: c.display_name.clone(),
        business: c.business.to_string(),
        state: state as i32,
        create_time: Some(timestamp(c.create_time)),
        expire_time: Some(timestamp(c.expire_time)),
        revoke_time: c.revoke_time.map(timestamp),
        creator: c.creator.clone(),
        etag: c.version.to_string(),
    }
}

/// Returns the proto of a signing key.
pub fn signing_key(k: &SigningKey) -> pb::SigningKey {
    pb::SigningKey {
        kid: k.kid.clone(),
        algorithm: "EdDSA".to_owned(),
        public_key: k.public_key.clone(),
        state: if k.is_active() {
            pb::SigningKeyState::Active
        } else {
            pb::SigningKeyState::Retired
        } as i32,
        create_time: Some(timestamp(k.create_time)),
        publish_until: k.publish_until.map(timestamp),
    }
}
