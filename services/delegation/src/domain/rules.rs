//! Request and relationship lifecycles, visibility rules, notes and the
//! reminder schedule (R-DE-1..5).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::DelegationError;

/// Returns `text` trimmed when it is `min`–`max` characters after trimming
/// and holds no control character but line breaks and tabs (R-IN-1: the same
/// text is valid on SQLite and PostgreSQL, and no NUL reaches either).
pub fn bounded_text(text: &str, min: usize, max: usize) -> Result<String, DelegationError> {
    let trimmed = text.trim();
    if ccp_types::check_multiline(trimmed, "").is_err() {
        return Err(DelegationError::ControlCharacters);
    }
    let len = trimmed.chars().count();
    if len < min {
        return Err(DelegationError::TooShort { min, max });
    }
    if len > max {
        return Err(DelegationError::TooLong { max });
    }
    Ok(trimmed.to_owned())
}

/// Implements `FromStr` from an enum's `parse` of its stored spelling.
macro_rules! from_spelling {
    ($($t:ty),*) => {$(
        impl std::str::FromStr for $t {
            type Err = ();
            fn from_str(text: &str) -> Result<Self, ()> {
                Self::parse(text).ok_or(())
            }
        }
    )*};
}

from_spelling!(RequestState, Level, Visibility, EndReason, AssignmentRole);

/// The lifecycle of a relationship request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for the client (or for the client to register).
    Pending,
    /// Approved; a relationship exists.
    Approved,
    /// Rejected by the client.
    Rejected,
    /// Withdrawn by the provider.
    Withdrawn,
    /// Not answered in time.
    Expired,
}

impl RequestState {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Withdrawn => "WITHDRAWN",
            Self::Expired => "EXPIRED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "PENDING" => Self::Pending,
            "APPROVED" => Self::Approved,
            "REJECTED" => Self::Rejected,
            "WITHDRAWN" => Self::Withdrawn,
            "EXPIRED" => Self::Expired,
            _ => return None,
        })
    }

    /// Returns the state as seen at `now`: a pending request past its expiry
    /// is expired whether or not the sweep recorded it.
    pub fn at(self, expire: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match (self, expire) {
            (Self::Pending, Some(e)) if now >= e => Self::Expired,
            (s, _) => s,
        }
    }

    /// Checks that a decision (approve, reject, withdraw) may be taken.
    pub fn decide(self) -> Result<(), DelegationError> {
        match self {
            Self::Pending => Ok(()),
            other => Err(DelegationError::NotPending(other)),
        }
    }
}

/// Business or program level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Every program of the client, present and future.
    Business,
    /// The chosen program accounts.
    Program,
}

impl Level {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Business => "BUSINESS",
            Self::Program => "PROGRAM",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "BUSINESS" => Some(Self::Business),
            "PROGRAM" => Some(Self::Program),
            _ => None,
        }
    }
}

/// Whose submissions a provider may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Visibility {
    /// Submitted by the provider (always).
    SubmittedByProvider,
    /// Submitted by the client.
    SubmittedByClient,
    /// Submitted by other businesses.
    SubmittedByOtherBusinesses,
}

impl Visibility {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubmittedByProvider => "PROVIDER",
            Self::SubmittedByClient => "CLIENT",
            Self::SubmittedByOtherBusinesses => "OTHER",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "PROVIDER" => Self::SubmittedByProvider,
            "CLIENT" => Self::SubmittedByClient,
            "OTHER" => Self::SubmittedByOtherBusinesses,
            _ => return None,
        })
    }
}

/// Visibility rules: a set that always holds "submitted by the provider".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityRules(BTreeSet<Visibility>);

impl VisibilityRules {
    /// Returns the rules, or a reason when the provider's own submissions are missing.
    pub fn new(items: impl IntoIterator<Item = Visibility>) -> Result<Self, DelegationError> {
        let set: BTreeSet<Visibility> = items.into_iter().collect();
        if !set.contains(&Visibility::SubmittedByProvider) {
            return Err(DelegationError::ProviderVisibilityMissing);
        }
        Ok(Self(set))
    }

    /// Returns the rules in order.
    pub fn iter(&self) -> impl Iterator<Item = Visibility> + '_ {
        self.0.iter().copied()
    }
}

/// Why a relationship ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its expiry instant passed.
    Expired,
    /// The client ended it.
    EndedByClient,
    /// The provider ended it.
    EndedByProvider,
}

impl EndReason {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "EXPIRED",
            Self::EndedByClient => "ENDED_BY_CLIENT",
            Self::EndedByProvider => "ENDED_BY_PROVIDER",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "EXPIRED" => Self::Expired,
            "ENDED_BY_CLIENT" => Self::EndedByClient,
            "ENDED_BY_PROVIDER" => Self::EndedByProvider,
            _ => return None,
        })
    }
}

/// A relationship's state at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationshipStatus {
    /// In force (strictly before its expiry instant, not ended).
    Active,
    /// Ended at `at` for `reason`.
    Ended {
        /// When.
        at: DateTime<Utc>,
        /// Why.
        reason: EndReason,
    },
}

impl RelationshipStatus {
    /// Returns the status at `now` of a relationship expiring at `expire`,
    /// with its recorded ending if any. Never active at or after `expire`.
    pub fn at(
        expire: DateTime<Utc>,
        recorded: Option<(DateTime<Utc>, EndReason)>,
        now: DateTime<Utc>,
    ) -> Self {
        match recorded {
            Some((at, reason)) => Self::Ended { at, reason },
            None if now >= expire => Self::Ended {
                at: expire,
                reason: EndReason::Expired,
            },
            None => Self::Active,
        }
    }

    /// Returns true when active.
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Active)
    }
}

/// The reminder thresholds, in days before expiry (R-DE-4).
pub const REMINDER_DAYS: [i64; 3] = [30, 7, 1];

/// Returns, for each threshold of [`REMINDER_DAYS`], the instant its reminder
/// is due, or None when it is already past at `now` (skipped).
pub fn reminder_schedule(expire: DateTime<Utc>, now: DateTime<Utc>) -> [Option<DateTime<Utc>>; 3] {
    REMINDER_DAYS.map(|days| {
        let due = expire - Duration::days(days);
        (due >= now).then_some(due)
    })
}

/// Checks an expiry instant chosen at `now`: in the future and at most
/// `max_days` days ahead.
pub fn check_expiry(
    expire: DateTime<Utc>,
    now: DateTime<Utc>,
    max_days: i64,
) -> Result<(), DelegationError> {
    if expire <= now {
        return Err(DelegationError::ExpiryNotInFuture);
    }
    if expire > now + Duration::days(max_days) {
        return Err(DelegationError::ExpiryTooFar { max_days });
    }
    Ok(())
}

/// Editor or Reader, the roles of an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AssignmentRole {
    /// View only.
    Reader,
    /// Create, view and edit.
    Editor,
}

impl AssignmentRole {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "READER",
            Self::Editor => "EDITOR",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "READER" => Some(Self::Reader),
            "EDITOR" => Some(Self::Editor),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap_or_default()
    }

    #[test]
    fn r_in_1_free_text_refuses_control_characters_but_not_line_breaks() {
        assert_eq!(
            bounded_text("a\u{0}b", 1, 500),
            Err(DelegationError::ControlCharacters)
        );
        assert_eq!(
            bounded_text(" two\nlines\t ", 1, 500),
            Ok("two\nlines".to_owned())
        );
    }

    #[test]
    fn never_active_at_expiry() {
        let e = t(1000);
        assert!(RelationshipStatus::at(e, None, t(999)).is_active());
        assert!(!RelationshipStatus::at(e, None, t(1000)).is_active());
    }

    #[test]
    fn past_thresholds_are_skipped() {
        let now = t(0);
        let s = reminder_schedule(now + Duration::days(10), now);
        assert_eq!(s[0], None);
        assert!(s[1].is_some() && s[2].is_some());
    }

    #[test]
    fn visibility_needs_provider() {
        assert!(VisibilityRules::new([Visibility::SubmittedByClient]).is_err());
        assert!(VisibilityRules::new([Visibility::SubmittedByProvider]).is_ok());
    }
}
