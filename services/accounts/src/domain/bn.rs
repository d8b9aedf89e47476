//! Business numbers (R-AC-1): BN9 with its Luhn check digit, program
//! references `RM0001`–`RM9999`, and BN15 = BN9 + reference.

use std::fmt;

use ccp_platform::error::FieldViolation;

/// A valid 9-digit CRA business number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bn9(String);

/// A valid program reference, `RM0001`–`RM9999`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramReference(String);

/// A valid program account number: a BN9 and a program reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bn15 {
    bn9: Bn9,
    reference: ProgramReference,
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl Bn9 {
    /// Parses a BN9, naming `field` in the violation.
    pub fn parse(s: &str, field: &str) -> Result<Self, FieldViolation> {
        let b = s.as_bytes();
        if s.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(FieldViolation::new(field, "must contain digits only"));
        }
        if b.len() != 9 {
            return Err(FieldViolation::new(field, "must be 9 digits"));
        }
        if !luhn_valid(b) {
            return Err(FieldViolation::new(
                field,
                "is not a valid business number (check digit)",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Parses `businesses/{bn9}`, naming `field`.
    pub fn parse_name(name: &str, field: &str) -> Result<Self, FieldViolation> {
        match name.strip_prefix("businesses/") {
            Some(bn) if !bn.contains('/') => Self::parse(bn, field),
            _ => Err(FieldViolation::new(field, "must be `businesses/{bn9}`")),
        }
    }

    /// Returns the digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the resource name `businesses/{bn9}`.
    pub fn resource_name(&self) -> String {
        format!("businesses/{}", self.0)
    }
}

impl fmt::Display for Bn9 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ProgramReference {
    /// Parses `RMnnnn`, naming `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self, FieldViolation> {
        if s.len() != 6 || !s.is_ascii() {
            return Err(FieldViolation::new(
                field,
                "must be a program code and 4 digits, e.g. RM0001",
            ));
        }
        let (code, number) = s.split_at(2);
        if code != "RM" {
            return Err(FieldViolation::new(field, "program code must be RM"));
        }
        if !number.bytes().all(|c| c.is_ascii_digit()) {
            return Err(FieldViolation::new(field, "reference must be 4 digits"));
        }
        if number == "0000" {
            return Err(FieldViolation::new(field, "reference must be 0001–9999"));
        }
        Ok(Self(s.to_owned()))
    }

    /// Returns `RMnnnn`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProgramReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Bn15 {
    /// Parses a 15-character program account number, naming `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self, FieldViolation> {
        if s.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if s.len() != 15 || !s.is_ascii() {
            return Err(FieldViolation::new(
                field,
                "must be 15 characters: 9 digits, RM and 4 digits",
            ));
        }
        let (bn, reference) = s.split_at(9);
        let bn9 = Bn9::parse(bn, field)?;
        let reference = ProgramReference::parse(reference, field)?;
        Ok(Self { bn9, reference })
    }

    /// Returns a BN15 from its parts.
    pub fn new(bn9: Bn9, reference: ProgramReference) -> Self {
        Self { bn9, reference }
    }

    /// Returns the BN9.
    pub fn bn9(&self) -> &Bn9 {
        &self.bn9
    }

    /// Returns the program reference.
    pub fn reference(&self) -> &ProgramReference {
        &self.reference
    }
}

impl fmt::Display for Bn15 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.bn9, self.reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_ac_1_luhn_examples() {
        assert!(Bn9::parse("123456782", "f").is_ok());
        assert!(Bn9::parse("888316171", "f").is_ok());
        assert!(Bn9::parse("123456789", "f").is_err());
        assert!(Bn9::parse("12345678", "f").is_err());
        assert!(Bn9::parse("12345678a", "f").is_err());
        assert!(Bn15::parse("123456782RM0001", "f").is_ok());
        assert!(Bn15::parse("123456782RM0000", "f").is_err());
        assert!(Bn15::parse("123456782RT0001", "f").is_err());
        assert!(Bn15::parse("123456782RM001", "f").is_err());
    }
}
