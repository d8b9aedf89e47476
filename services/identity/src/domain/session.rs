//! Sessions (R-ID-3): a sign-in starts a family of rotating refresh tokens;
//! presenting a rotated token again revokes the whole family.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The refresh tokens of one sign-in; its id is the access tokens' `sid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFamily {
    /// The family's id.
    pub id: String,
    /// The person signed in.
    pub person: Uuid,
    /// The issuer the person signed in through.
    pub issuer: String,
    /// When the family was started.
    pub create_time: DateTime<Utc>,
    /// When its refresh tokens stop working.
    pub expire_time: DateTime<Utc>,
    /// When it was revoked (signed out, or a token reused).
    pub revoke_time: Option<DateTime<Utc>>,
}

impl SessionFamily {
    /// Returns its resource name `sessions/{id}`.
    pub fn name(&self) -> String {
        format!("sessions/{}", self.id)
    }

    /// Returns the person's principal `person:{uuid}`.
    pub fn principal(&self) -> String {
        format!("person:{}", self.person)
    }

    /// Returns true while it is neither revoked nor expired at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoke_time.is_none() && self.expire_time > now
    }
}

/// One refresh token of a family (stored only as its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The family it belongs to.
    pub family_id: String,
    /// When it expires.
    pub expire_time: DateTime<Utc>,
    /// When it was rotated (used), if it was.
    pub used_time: Option<DateTime<Utc>>,
}
