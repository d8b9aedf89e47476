//! Request ids of writes and bounded free text.

use std::fmt;

use crate::FieldViolation;

/// The most characters a request id may have.
pub const REQUEST_ID_MAX_CHARS: usize = 128;

/// The idempotency key of a write: the caller's text trimmed of surrounding
/// white space, 1–128 printable characters (no control characters). A retry
/// with the same id returns the first answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(String);

impl RequestId {
    /// The one message every service gives for a bad request id.
    pub const RULE: &'static str =
        "must be 1–128 printable characters (the write's idempotency key)";

    /// Parses the `request_id` field of a write.
    pub fn parse(text: &str) -> Result<Self, FieldViolation> {
        let trimmed = text.trim();
        let count = trimmed.chars().count();
        if count == 0 || count > REQUEST_ID_MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(FieldViolation::new("request_id", Self::RULE));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Returns a fresh random request id (for writes the system makes itself).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Returns the id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks one line of free text (a name, a title, an address line): no NUL
/// and no other control character, so what is stored is the same on SQLite
/// and PostgreSQL and nothing can break a log line, a header or a CSV row.
pub fn check_line(text: &str, field: &str) -> Result<(), FieldViolation> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(control_violation(field, c)),
        None => Ok(()),
    }
}

/// Checks multi-line free text (a note, a reason): as [`check_line`], but
/// line feeds, carriage returns and tabs are allowed.
pub fn check_multiline(text: &str, field: &str) -> Result<(), FieldViolation> {
    match text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some(c) => Err(control_violation(field, c)),
        None => Ok(()),
    }
}

fn control_violation(field: &str, c: char) -> FieldViolation {
    FieldViolation::new(
        field,
        format!(
            "must not contain control characters (found U+{:04X})",
            u32::from(c)
        ),
    )
}

/// A required free-text note (a justification, a reason): not blank, at most
/// [`Note::MAX_CHARS`] characters, kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Note(String);

impl Note {
    /// The most characters a note may have.
    pub const MAX_CHARS: usize = 500;

    /// Parses a required note, naming `field`.
    pub fn parse(text: &str, field: &str) -> Result<Self, FieldViolation> {
        if text.trim().is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        Self::check_length(text, field)?;
        Ok(Self(text.to_owned()))
    }

    /// Parses an optional note (empty is allowed), naming `field`.
    pub fn parse_optional(text: &str, field: &str) -> Result<Option<Self>, FieldViolation> {
        if text.is_empty() {
            return Ok(None);
        }
        Self::check_length(text, field)?;
        Ok(Some(Self(text.to_owned())))
    }

    fn check_length(text: &str, field: &str) -> Result<(), FieldViolation> {
        check_multiline(text, field)?;
        if text.chars().count() > Self::MAX_CHARS {
            return Err(FieldViolation::new(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(())
    }

    /// Returns the text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the text, consuming the note.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("req-1", Some("req-1"))]
    #[case("  req-1 \n", Some("req-1"))]
    #[case("", None)]
    #[case("   ", None)]
    #[case("a\u{0}b", None)]
    #[case("a\u{7}b", None)]
    fn request_ids_are_trimmed_printable_and_bounded(
        #[case] text: &str,
        #[case] expected: Option<&str>,
    ) {
        let parsed = RequestId::parse(text).ok();
        assert_eq!(parsed.as_ref().map(RequestId::as_str), expected);
    }

    #[test]
    fn request_ids_have_one_message_and_length_bound() {
        let ok = "x".repeat(REQUEST_ID_MAX_CHARS);
        assert!(RequestId::parse(&ok).is_ok());
        let long = RequestId::parse(&"x".repeat(REQUEST_ID_MAX_CHARS + 1));
        let empty = RequestId::parse("");
        for err in [long, empty] {
            let v = err.expect_err("refused");
            assert_eq!(
                (v.field.as_str(), v.description.as_str()),
                ("request_id", RequestId::RULE)
            );
        }
    }

    #[rstest]
    #[case("Suite 200", true, true)]
    #[case("line one\nline two\ttab", false, true)]
    #[case("nul\u{0}inside", false, false)]
    #[case("bell\u{7}", false, false)]
    #[case("del\u{7f}", false, false)]
    #[case("c1\u{85}", false, false)]
    fn r_in_1_free_text_refuses_control_characters(
        #[case] text: &str,
        #[case] line: bool,
        #[case] multiline: bool,
    ) {
        assert_eq!(check_line(text, "f").is_ok(), line, "{text:?}");
        assert_eq!(check_multiline(text, "f").is_ok(), multiline, "{text:?}");
    }

    #[test]
    fn r_ac_3_notes_are_required_bounded_and_kept_as_given() {
        assert!(Note::parse("a\u{0}b", "note").is_err());
        assert!(Note::parse("two\nlines", "note").is_ok());
        assert!(Note::parse(" ", "note").is_err());
        assert!(Note::parse(&"é".repeat(Note::MAX_CHARS), "note").is_ok());
        assert!(Note::parse(&"é".repeat(Note::MAX_CHARS + 1), "note").is_err());
        assert_eq!(
            Note::parse(" hi ", "note").map(Note::into_string),
            Ok(" hi ".to_owned())
        );
        assert_eq!(Note::parse_optional("", "note"), Ok(None));
    }
}
