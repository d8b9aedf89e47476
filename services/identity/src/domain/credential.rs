//! Machine credentials (R-ID-4): a business's service account, its label,
//! its expiry (at most two years away) and its lifecycle.

use chrono::{DateTime, Duration, Utc};

/// The longest a machine credential may live.
pub fn max_lifetime() -> Duration {
    Duration::days(730)
}

/// Parses a display name: trimmed, 1–100 characters, no control characters.
pub fn parse_display_name(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("is required".to_owned());
    }
    if v.chars().count() > 100 {
        return Err("must be at most 100 characters".to_owned());
    }
    if v.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(v.to_owned())
}

/// Checks an expiry: after `now` and at most two years after it.
pub fn check_expiry(expire: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if expire <= now {
        return Err("must be in the future".to_owned());
    }
    if expire > now + max_lifetime() {
        return Err("must be at most 2 years away".to_owned());
    }
    Ok(())
}

/// Parses a revocation reason: at most 500 characters.
pub fn parse_reason(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.chars().count() > 500 {
        return Err("must be at most 500 characters".to_owned());
    }
    Ok(v.to_owned())
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
