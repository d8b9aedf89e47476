//! Plain-Rust rules of identity: profiles, sessions, credentials. No prost,
//! no sea-orm. Values here are parsed: holding one proves it is valid.

pub mod credential;
pub mod profile;

use ccp_platform::error::FieldViolation;

/// A request id of a write: non-empty, at most 128 characters.
pub fn parse_request_id(value: &str) -> Result<String, FieldViolation> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldViolation::new("request_id", "is required"));
    }
    if trimmed.chars().count() > 128 {
        return Err(FieldViolation::new(
            "request_id",
            "must be at most 128 characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A CRA business number (BN9): nine digits, the last a Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bn9(String);

impl Bn9 {
    /// Parses a BN9, naming `field` when it is wrong.
    pub fn parse(value: &str, field: &str) -> Result<Self, FieldViolation> {
        let digits: Vec<u32> = value.chars().filter_map(|c| c.to_digit(10)).collect();
        if value.len() != 9 || digits.len() != 9 {
            return Err(FieldViolation::new(field, "a BN9 is exactly nine digits"));
        }
        let sum: u32 = digits
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    *d
                }
            })
            .sum();
        if !sum.is_multiple_of(10) {
            return Err(FieldViolation::new(field, "the BN9 check digit is wrong"));
        }
        Ok(Self(value.to_owned()))
    }

    /// Returns the nine digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses `businesses/{bn9}`.
    pub fn parse_parent(value: &str, field: &str) -> Result<Self, FieldViolation> {
        let bn = value
            .strip_prefix("businesses/")
            .ok_or_else(|| FieldViolation::new(field, "must be businesses/{bn9}"))?;
        Self::parse(bn, field)
    }
}

impl std::fmt::Display for Bn9 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bn9_check_digit() {
        assert!(Bn9::parse("123456782", "bn").is_ok());
        assert!(Bn9::parse("123456789", "bn").is_err());
        assert!(Bn9::parse("12345678", "bn").is_err());
        assert!(Bn9::parse_parent("businesses/123456782", "parent").is_ok());
    }
}
