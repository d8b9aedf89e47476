//! Machine credentials (R-ID-4): a business's service account, its label,
//! its expiry (at most two years away) and its lifecycle.

use ccp_types::Bn9;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::FieldRule;

/// The longest a machine credential may live.
pub fn max_lifetime() -> Duration {
    Duration::days(730)
}

/// How long before its expiry a credential's business is reminded of it.
pub fn expiry_reminder_lead() -> Duration {
    Duration::days(30)
}

/// Returns the days a reminder at `now` tells of (the whole days left, rounded up, at most the
/// lead's 30): 30 when the sweep finds it as it falls due, fewer for a credential created with
/// less than 30 days to live.
pub fn reminder_days(expire: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let left = (expire - now).num_milliseconds().max(0);
    let day = Duration::days(1).num_milliseconds();
    ((left + day - 1) / day).clamp(1, expiry_reminder_lead().num_days())
}

/// Parses a display name: trimmed, 1–100 characters, no control characters.
pub fn parse_display_name(value: &str) -> Result<String, FieldRule> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldRule::Required);
    }
    if v.chars().count() > 100 {
        return Err(FieldRule::TooLong(100));
    }
    if v.chars().any(char::is_control) {
        return Err(FieldRule::ControlCharacters);
    }
    Ok(v.to_owned())
}

/// Checks an expiry: after `now` and at most two years after it.
pub fn check_expiry(expire: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), FieldRule> {
    if expire <= now {
        return Err(FieldRule::NotInFuture);
    }
    if expire > now + max_lifetime() {
        return Err(FieldRule::TooFarAway);
    }
    Ok(())
}

/// Parses a revocation reason: at most 500 characters, no control
/// characters but line breaks and tabs.
pub fn parse_reason(value: &str) -> Result<String, FieldRule> {
    let v = value.trim();
    if v.chars().count() > 500 {
        return Err(FieldRule::TooLong(500));
    }
    if ccp_types::check_multiline(v, "").is_err() {
        return Err(FieldRule::ControlCharacters);
    }
    Ok(v.to_owned())
}

/// A business's machine credential (its secret only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineCredential {
    /// The credential's id, also its client id.
    pub id: Uuid,
    /// The business it acts for.
    pub business: Bn9,
    /// Its label.
    pub display_name: String,
    /// The argon2id PHC string of its secret.
    pub secret_hash: String,
    /// The principal who created it.
    pub creator: String,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// When it expires.
    pub expire_time: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoke_time: Option<DateTime<Utc>>,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
    /// Its update counter (the etag).
    pub version: i64,
}

impl MachineCredential {
    /// Returns its resource name `businesses/{bn9}/machineCredentials/{id}`.
    pub fn name(&self) -> String {
        format!(
            "businesses/{}/machineCredentials/{}",
            self.business, self.id
        )
    }

    /// Returns its principal `credential:{id}`.
    pub fn principal(&self) -> String {
        format!("credential:{}", self.id)
    }

    /// Returns its state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> CredentialState {
        CredentialState::at(self.expire_time, self.revoke_time, now)
    }

    /// Returns it revoked at `now` for `reason`, one version later.
    pub fn revoked(&self, reason: &str, now: DateTime<Utc>) -> Self {
        Self {
            revoke_time: Some(now),
            revoke_reason: Some(reason.to_owned()),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// Returns what its audit records keep: never the secret or its hash.
    pub fn audit_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name(),
            "display_name": self.display_name,
            "business": self.business.as_str(),
            "creator": self.creator,
            "create_time": self.create_time.to_rfc3339(),
            "expire_time": self.expire_time.to_rfc3339(),
            "revoke_time": self.revoke_time.map(|t| t.to_rfc3339()),
            "revoke_reason": self.revoke_reason,
        })
    }
}

/// The lifecycle state of a credential at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialState {
    /// Usable.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl CredentialState {
    /// Returns the state at `now` of a credential expiring at `expire`, revoked at `revoked`.
    pub fn at(expire: DateTime<Utc>, revoked: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        if revoked.is_some() {
            Self::Revoked
        } else if expire <= now {
            Self::Expired
        } else {
            Self::Active
        }
    }
}

/// What a bad secret costs a client id, given the failures counted so far in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Go ahead and check the secret.
    Check,
    /// Check it after this delay.
    SlowDown(std::time::Duration),
    /// Refuse: the client id is (now) locked.
    Lock,
}

/// Decides the throttle for an attempt that is the `attempt`-th within the window.
pub fn throttle(
    attempt: u32,
    slowdown_after: u32,
    slowdown_ms: u64,
    lockout_after: u32,
) -> Throttle {
    if attempt > lockout_after {
        return Throttle::Lock;
    }
    if attempt > slowdown_after {
        let exp = (attempt - slowdown_after - 1).min(16);
        let ms = slowdown_ms.saturating_mul(1u64 << exp).min(5_000);
        return Throttle::SlowDown(std::time::Duration::from_millis(ms));
    }
    Throttle::Check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reminder_tells_the_whole_days_left_rounded_up_at_most_30() {
        let expire = DateTime::parse_from_rfc3339("2027-01-31T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(reminder_days(expire, expire - Duration::days(30)), 30);
        assert_eq!(reminder_days(expire, expire - Duration::days(45)), 30);
        assert_eq!(
            reminder_days(expire, expire - Duration::days(9) - Duration::hours(1)),
            10
        );
        assert_eq!(reminder_days(expire, expire - Duration::hours(3)), 1);
    }

    #[test]
    fn r_in_1_a_revocation_reason_refuses_control_characters() {
        assert_eq!(
            parse_reason("leaked\u{0}"),
            Err(FieldRule::ControlCharacters)
        );
        assert_eq!(
            parse_reason("leaked\nrotated"),
            Ok("leaked\nrotated".to_owned())
        );
    }

    #[test]
    fn throttle_slows_then_locks() {
        assert_eq!(throttle(1, 3, 100, 5), Throttle::Check);
        assert_eq!(throttle(3, 3, 100, 5), Throttle::Check);
        assert_eq!(
            throttle(4, 3, 100, 5),
            Throttle::SlowDown(std::time::Duration::from_millis(100))
        );
        assert_eq!(
            throttle(5, 3, 100, 5),
            Throttle::SlowDown(std::time::Duration::from_millis(200))
        );
        assert_eq!(throttle(6, 3, 100, 5), Throttle::Lock);
    }

    #[test]
    fn expiry_is_at_most_two_years() {
        let now = Utc::now();
        assert!(check_expiry(now + Duration::days(730), now).is_ok());
        assert!(check_expiry(now + Duration::days(731), now).is_err());
        assert!(check_expiry(now, now).is_err());
    }
}
