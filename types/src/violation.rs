//! One bad field of a request.

use std::fmt;

/// One bad field of a request: where it is and what is wrong with it, in
/// words safe to show the caller (google.rpc.BadRequest.FieldViolation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `program_account` or `answers[1]`.
    pub field: String,
    /// What is wrong with it, safe to show the caller.
    pub description: String,
}

impl FieldViolation {
    /// Returns a violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }

    /// Returns the same violation with its field nested under `parent`
    /// (`address` + `postal_code` → `address.postal_code`).
    pub fn nested(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

impl std::error::Error for FieldViolation {}
