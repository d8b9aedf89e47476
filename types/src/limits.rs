//! Input limits checked before any work (R-IN-1): the most entries of every
//! repeated field and the most characters of every string of a request.
//!
//! A service checks a request's limits first, before it parses a name or
//! opens a transaction, so a request of 100,000 repeated entries costs one
//! comparison, never one violation or one query per entry. A count over its
//! limit names the field once and skips the entries; a string is measured
//! only up to its limit (never the whole of a huge string).

use crate::FieldViolation;
use crate::text::{check_line, check_multiline};

/// The most characters of a resource name, a principal or a program account.
pub const NAME_MAX_CHARS: usize = 256;
/// The most characters of a page token.
pub const PAGE_TOKEN_MAX_CHARS: usize = 1024;
/// The most characters of an etag or a revision token.
pub const ETAG_MAX_CHARS: usize = 256;
/// The most characters of a display name (a group, a credential).
pub const DISPLAY_NAME_MAX_CHARS: usize = 200;
/// The most characters of a legal name (a person, a business).
pub const LEGAL_NAME_MAX_CHARS: usize = 300;
/// The most characters of an address line or a city.
pub const ADDRESS_LINE_MAX_CHARS: usize = 200;
/// The most characters of a province, a postal code or a country.
pub const ADDRESS_CODE_MAX_CHARS: usize = 32;
/// The most characters of an e-mail address.
pub const EMAIL_MAX_CHARS: usize = 254;
/// The most characters of a phone number.
pub const PHONE_MAX_CHARS: usize = 32;
/// The most characters of a short token of the contract (a question id, a
/// Terms & Conditions version, a field-mask path).
pub const TOKEN_MAX_CHARS: usize = 64;
/// The most characters of a known-fact answer.
pub const ANSWER_MAX_CHARS: usize = 200;
/// The most characters of a free-text note or reason.
pub const NOTE_MAX_CHARS: usize = crate::Note::MAX_CHARS;
/// The most characters of a signed token a caller presents (an ID token).
pub const ID_TOKEN_MAX_CHARS: usize = 16 * 1024;
/// The most characters of an opaque secret (a refresh token, a client secret).
pub const SECRET_MAX_CHARS: usize = 1024;

/// The earliest timestamp a request may carry: 0001-01-01T00:00:00Z.
pub const TIMESTAMP_MIN_SECONDS: i64 = -62_135_596_800;
/// The latest timestamp a request may carry: 9999-12-31T23:59:59Z.
pub const TIMESTAMP_MAX_SECONDS: i64 = 253_402_300_799;

/// The most known-fact answers of one registration.
pub const MAX_ANSWERS: usize = 50;
/// The most program roles of one grant or group.
pub const MAX_PROGRAM_ROLES: usize = 1000;
/// The most notice choices of one profile (one per kind of notice).
pub const MAX_NOTIFICATION_CHOICES: usize = 32;
/// The most principals of one group change (or a new group's members).
pub const MAX_PRINCIPALS: usize = 1000;
/// The most program accounts of one relationship request or relationship.
pub const MAX_PROGRAM_ACCOUNTS: usize = 1000;
/// The most visibility rules of one relationship.
pub const MAX_VISIBILITY: usize = 8;
/// The most clients of one client-group call (a group may hold more, added
/// over several calls).
pub const MAX_CLIENTS: usize = 10_000;
/// The most paths of one field mask.
pub const MAX_MASK_PATHS: usize = 16;
/// The most profile ids of one `GetProfiles` call.
pub const MAX_PROFILE_IDS: usize = 1000;

/// The violations of a request's limits, collected field by field.
#[derive(Debug, Default)]
pub struct Limits {
    violations: Vec<FieldViolation>,
}

impl Limits {
    /// Returns an empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks one line of text (a name, an id, a token): at most `max`
    /// characters and no control character.
    pub fn line(&mut self, field: &str, text: &str, max: usize) -> &mut Self {
        if too_long(text, max) {
            self.violations.push(long(field, max));
        } else if let Err(v) = check_line(text, field) {
            self.violations.push(v);
        }
        self
    }

    /// Checks only the length of `text`: at most `max` characters (its own
    /// parser names what else is wrong with it, e.g. a request id).
    pub fn chars(&mut self, field: &str, text: &str, max: usize) -> &mut Self {
        if too_long(text, max) {
            self.violations.push(long(field, max));
        }
        self
    }

    /// Checks a timestamp's parts against protobuf's own range for one:
    /// years 1 to 9999 and nanos 0 to 999,999,999 (so no date arithmetic
    /// downstream can overflow and both databases store the same instant).
    pub fn timestamp(&mut self, field: &str, seconds: i64, nanos: i32) -> &mut Self {
        if !(TIMESTAMP_MIN_SECONDS..=TIMESTAMP_MAX_SECONDS).contains(&seconds)
            || !(0..1_000_000_000).contains(&nanos)
        {
            self.violations.push(FieldViolation::new(
                field,
                "must be a valid timestamp (years 1 to 9999, nanos 0 to 999,999,999)",
            ));
        }
        self
    }

    /// Checks multi-line text (a note, a reason): at most `max` characters,
    /// no control character other than line breaks and tabs.
    pub fn multiline(&mut self, field: &str, text: &str, max: usize) -> &mut Self {
        if too_long(text, max) {
            self.violations.push(long(field, max));
        } else if let Err(v) = check_multiline(text, field) {
            self.violations.push(v);
        }
        self
    }

    /// Checks that `items` holds at most `max` entries; true when it does
    /// (the caller then checks the entries).
    pub fn count<T>(&mut self, field: &str, items: &[T], max: usize) -> bool {
        if items.len() > max {
            self.violations.push(FieldViolation::new(
                field,
                format!("must have at most {max} entries (has {})", items.len()),
            ));
            return false;
        }
        true
    }

    /// Checks a repeated string field: at most `max` entries, each a line
    /// of at most `max_chars` characters.
    pub fn lines(
        &mut self,
        field: &str,
        items: &[String],
        max: usize,
        max_chars: usize,
    ) -> &mut Self {
        if self.count(field, items, max) {
            for (i, text) in items.iter().enumerate() {
                self.line(&format!("{field}[{i}]"), text, max_chars);
            }
        }
        self
    }

    /// Adds a violation found by a check of the caller's own.
    pub fn push(&mut self, violation: FieldViolation) -> &mut Self {
        self.violations.push(violation);
        self
    }

    /// Returns true when nothing was violated.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// Returns the violations, in the order they were found.
    pub fn into_violations(self) -> Vec<FieldViolation> {
        self.violations
    }
}

/// True when `text` has more than `max` characters, counting at most `max + 1`.
fn too_long(text: &str, max: usize) -> bool {
    text.len() > max && text.chars().nth(max).is_some()
}

fn long(field: &str, max: usize) -> FieldViolation {
    FieldViolation::new(field, format!("must be at most {max} characters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_in_1_limits_name_the_field_once_however_many_entries() {
        let mut limits = Limits::new();
        let many = vec!["x\u{0}".to_owned(); 100_000];
        limits.lines("clients", &many, MAX_CLIENTS, NAME_MAX_CHARS);
        let v = limits.into_violations();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].field, "clients");
        assert!(v[0].description.contains("at most 10000"), "{v:?}");
    }

    #[test]
    fn r_in_1_strings_are_measured_in_characters_up_to_the_limit() {
        let mut limits = Limits::new();
        limits
            .line("a", &"é".repeat(10), 10)
            .line("b", &"é".repeat(11), 10)
            .line("c", "nul\u{0}", 10)
            .multiline("d", "two\nlines", 10)
            .multiline("e", "bell\u{7}", 10);
        let fields: Vec<_> = limits
            .into_violations()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["b", "c", "e"]);
    }

    #[test]
    fn r_in_1_timestamps_stay_within_protobufs_range() {
        let mut limits = Limits::new();
        limits
            .timestamp("ok", 0, 0)
            .timestamp("max", TIMESTAMP_MAX_SECONDS, 999_999_999)
            .timestamp("year0", TIMESTAMP_MIN_SECONDS - 1, 0)
            .timestamp("year10000", TIMESTAMP_MAX_SECONDS + 1, 0)
            .timestamp("nanos", 0, -1)
            .timestamp("huge", i64::MAX, 0);
        let fields: Vec<_> = limits
            .into_violations()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["year0", "year10000", "nanos", "huge"]);
    }

    #[test]
    fn r_in_1_entries_within_the_count_are_checked_one_by_one() {
        let mut limits = Limits::new();
        limits.lines("p", &["ok".to_owned(), "a\u{1b}".to_owned()], 2, 10);
        let v = limits.into_violations();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].field, "p[1]");
    }
}
