//! Business numbers: the 9-digit BN9 (Luhn check digit) and the 15-character
//! program account BN15 (`<bn9>RM<0001–9999>`). Accounts parses the same rules.

use std::fmt;

/// A valid 9-digit business number whose 9th digit is its Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bn9(String);

impl Bn9 {
    /// Returns the BN9 in `text`, or a reason safe to show the caller.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() != 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be 9 digits".to_owned());
        }
        if !luhn_valid(text) {
            return Err("check digit is wrong".to_owned());
        }
        Ok(Self(text.to_owned()))
    }

    /// Returns the digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Bn9 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A program account number: a BN9, the program `RM` and a reference 0001–9999.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bn15 {
    bn9: Bn9,
    text: String,
}

impl Bn15 {
    /// Returns the BN15 in `text`, or a reason safe to show the caller.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || "must be a BN9, `RM` and a reference 0001–9999".to_owned();
        if text.len() != 15 || !text.is_ascii() {
            return Err(bad());
        }
        let (bn, rest) = text.split_at(9);
        let bn9 = Bn9::parse(bn)?;
        let reference = rest.strip_prefix("RM").ok_or_else(bad)?;
        if reference.len() != 4 || !reference.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if reference == "0000" {
            return Err(bad());
        }
        Ok(Self {
            bn9,
            text: text.to_owned(),
        })
    }

    /// Returns the business the program account belongs to.
    pub fn bn9(&self) -> &Bn9 {
        &self.bn9
    }

    /// Returns the BN15 text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Bn15 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bn9_check_digit() {
        assert!(Bn9::parse("123456782").is_ok());
        assert!(Bn9::parse("888316171").is_ok());
        assert!(Bn9::parse("123456789").is_err());
        assert!(Bn9::parse("12345678").is_err());
        assert!(Bn9::parse("12345678a").is_err());
    }

    #[test]
    fn bn15_program_and_reference() {
        let p = Bn15::parse("123456782RM0001").ok();
        assert_eq!(p.map(|p| p.bn9().to_string()), Some("123456782".to_owned()));
        assert!(Bn15::parse("123456782RM9999").is_ok());
        assert!(Bn15::parse("123456782RM0000").is_err());
        assert!(Bn15::parse("123456782RT0001").is_err());
        assert!(Bn15::parse("123456789RM0001").is_err());
        assert!(Bn15::parse("123456782RM001").is_err());
    }
}
