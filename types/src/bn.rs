//! Business numbers (R-AC-1): the BN9 with its Luhn check digit, program
//! references `RM0001`–`RM9999`, and the BN15 = BN9 + reference.

use std::fmt;

use crate::FieldViolation;

/// Returns whether the ASCII digits end with their Luhn check digit.
/// Anything but ASCII digits is not valid.
pub fn luhn_valid(digits: &[u8]) -> bool {
    match digits.split_last() {
        Some((last, body)) if last.is_ascii_digit() => {
            luhn_check_digit(body).is_some_and(|d| d == *last)
        }
        _ => false,
    }
}

/// Returns the Luhn check digit (as an ASCII digit) to append to `body`, or
/// None when `body` holds anything but ASCII digits.
pub fn luhn_check_digit(body: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    // The check digit will sit right of `body`, so `body`'s last digit is doubled.
    for (i, b) in body.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 {
            let twice = d * 2;
            if twice > 9 { twice - 9 } else { twice }
        } else {
            d
        };
    }
    let digit = (10 - sum % 10) % 10;
    u8::try_from(digit).ok().map(|d| b'0' + d)
}

/// A valid 9-digit CRA business number: nine ASCII digits, the last one the
/// Luhn check digit of the other eight. Kept inline (nine bytes, no heap):
/// the gateway clones BN9s into cache keys and facts maps on every call.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bn9([u8; 9]);

impl fmt::Debug for Bn9 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Bn9").field(&self.as_str()).finish()
    }
}

impl Bn9 {
    /// Parses a BN9, naming `field` in the violation.
    pub fn parse(text: &str, field: &str) -> Result<Self, FieldViolation> {
        if text.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        let bytes = text.as_bytes();
        if bytes.len() != 9 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(FieldViolation::new(
                field,
                "must be a business number of 9 digits (a BN9), e.g. 123456782",
            ));
        }
        if !luhn_valid(bytes) {
            return Err(FieldViolation::new(
                field,
                "is not a valid business number: its last digit is not the check digit of the other eight",
            ));
        }
        let mut digits = [0u8; 9];
        digits.copy_from_slice(bytes);
        Ok(Self(digits))
    }

    /// Parses a BN9, returning None when it is not valid.
    pub fn try_new(text: &str) -> Option<Self> {
        Self::parse(text, "").ok()
    }

    /// Returns the BN9 whose first eight digits are `base` (0..=99,999,999).
    pub fn from_base(base: u32) -> Option<Self> {
        if base > 99_999_999 {
            return None;
        }
        let body = format!("{base:08}");
        let check = luhn_check_digit(body.as_bytes())?;
        let mut digits = [0u8; 9];
        digits[..8].copy_from_slice(body.as_bytes());
        digits[8] = check;
        Some(Self(digits))
    }

    /// Parses a business's resource name `businesses/{bn9}`, naming `field`.
    pub fn parse_name(name: &str, field: &str) -> Result<Self, FieldViolation> {
        crate::parse_business_name(name, field)
    }

    /// Returns the digits.
    pub fn as_str(&self) -> &str {
        // Nine ASCII digits by construction (`parse`, `from_base`): always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Returns the resource name `businesses/{bn9}`.
    pub fn resource_name(&self) -> String {
        format!("businesses/{}", self.as_str())
    }
}

impl fmt::Display for Bn9 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Bn9 {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// A valid program reference: the program code `RM` and a number 0001–9999.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramReference(String);

impl ProgramReference {
    /// Parses `RMnnnn`, naming `field`.
    pub fn parse(text: &str, field: &str) -> Result<Self, FieldViolation> {
        if text.len() != 6 || !text.is_ascii() {
            return Err(FieldViolation::new(
                field,
                "must be a program code and 4 digits, e.g. RM0001",
            ));
        }
        let (code, number) = text.split_at(2);
        if code != "RM" {
            return Err(FieldViolation::new(field, "program code must be RM"));
        }
        if !number.bytes().all(|c| c.is_ascii_digit()) {
            return Err(FieldViolation::new(field, "reference must be 4 digits"));
        }
        if number == "0000" {
            return Err(FieldViolation::new(field, "reference must be 0001–9999"));
        }
        Ok(Self(text.to_owned()))
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

/// A valid program account number: a BN9 and a program reference, written
/// together as 15 characters (`123456782RM0001`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bn15 {
    bn9: Bn9,
    reference: ProgramReference,
}

impl Bn15 {
    /// Parses a 15-character program account number, naming `field`.
    pub fn parse(text: &str, field: &str) -> Result<Self, FieldViolation> {
        if text.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if text.len() != 15 || !text.is_ascii() {
            return Err(FieldViolation::new(
                field,
                "must be a program account number of 15 characters: 9 digits, RM and 4 digits (a BN15), e.g. 123456782RM0001",
            ));
        }
        let (bn, reference) = text.split_at(9);
        let bn9 = Bn9::parse(bn, field)?;
        let reference = ProgramReference::parse(reference, field)?;
        Ok(Self { bn9, reference })
    }

    /// Parses a BN15, returning None when it is not valid.
    pub fn try_new(text: &str) -> Option<Self> {
        Self::parse(text, "").ok()
    }

    /// Returns a BN15 from its parts.
    pub fn new(bn9: Bn9, reference: ProgramReference) -> Self {
        Self { bn9, reference }
    }

    /// Parses a program account's resource name
    /// `businesses/{bn9}/programAccounts/{RMnnnn}`, naming `field`.
    pub fn parse_name(name: &str, field: &str) -> Result<Self, FieldViolation> {
        crate::parse_program_account_name(name, field)
    }

    /// Returns the BN9.
    pub fn bn9(&self) -> &Bn9 {
        &self.bn9
    }

    /// Returns the program reference.
    pub fn reference(&self) -> &ProgramReference {
        &self.reference
    }

    /// Returns the resource name `businesses/{bn9}/programAccounts/{RMnnnn}`.
    pub fn resource_name(&self) -> String {
        format!("businesses/{}/programAccounts/{}", self.bn9, self.reference)
    }
}

impl fmt::Display for Bn15 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.bn9, self.reference)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("123456782", true)]
    #[case("888316171", true)]
    #[case("000000000", true)]
    #[case("123456789", false)]
    #[case("12345678", false)]
    #[case("1234567822", false)]
    #[case("12345678a", false)]
    #[case("١٢٣٤٥٦٧٨٢", false)]
    #[case("", false)]
    fn r_ac_1_bn9(#[case] text: &str, #[case] valid: bool) {
        assert_eq!(Bn9::parse(text, "bn").is_ok(), valid, "{text}");
    }

    #[rstest]
    #[case("123456782RM0001", true)]
    #[case("123456782RM9999", true)]
    #[case("123456782RM0000", false)]
    #[case("123456782RT0001", false)]
    #[case("123456782RM001", false)]
    #[case("123456789RM0001", false)]
    #[case("123456782rm0001", false)]
    fn r_ac_1_bn15(#[case] text: &str, #[case] valid: bool) {
        assert_eq!(Bn15::parse(text, "program").is_ok(), valid, "{text}");
    }

    #[test]
    fn r_ac_1_a_wrong_check_digit_is_named_as_such() {
        let err = Bn9::parse("999999999", "bn").err().map(|v| v.description);
        assert!(err.is_some_and(|d| d.contains("check digit")));
    }

    #[test]
    fn a_bn15_names_its_parts_and_resource() {
        let p = Bn15::parse("123456782RM0002", "f").expect("valid");
        assert_eq!(p.bn9().as_str(), "123456782");
        assert_eq!(p.reference().as_str(), "RM0002");
        assert_eq!(p.to_string(), "123456782RM0002");
        assert_eq!(
            p.resource_name(),
            "businesses/123456782/programAccounts/RM0002"
        );
    }

    proptest! {
        /// The inline form reads, shows and orders as the digits do.
        #[test]
        fn a_bn9_reads_shows_and_orders_as_its_digits(a in 0u32..100_000_000, b in 0u32..100_000_000) {
            let (x, y) = (Bn9::from_base(a).expect("in range"), Bn9::from_base(b).expect("in range"));
            let parsed = Bn9::parse(x.as_str(), "bn").expect("valid");
            prop_assert_eq!(&parsed, &x);
            prop_assert_eq!(x.as_str(), format!("{a:08}{}", &x.as_str()[8..]));
            prop_assert_eq!(x.to_string(), x.as_str());
            prop_assert_eq!(format!("{x:?}"), format!("Bn9({:?})", x.as_str()));
            prop_assert_eq!(x.resource_name(), format!("businesses/{}", x.as_str()));
            prop_assert_eq!(x.cmp(&y), x.as_str().cmp(y.as_str()));
        }

        #[test]
        fn every_base_has_exactly_one_check_digit(base in 0u32..100_000_000) {
            let bn = Bn9::from_base(base).expect("in range");
            prop_assert!(Bn9::parse(bn.as_str(), "bn").is_ok());
            let body = &bn.as_str()[..8];
            let valid = (b'0'..=b'9')
                .filter(|d| {
                    let mut t = body.as_bytes().to_vec();
                    t.push(*d);
                    luhn_valid(&t)
                })
                .count();
            prop_assert_eq!(valid, 1);
        }

        #[test]
        fn one_changed_digit_breaks_the_check(base in 0u32..100_000_000, pos in 0usize..9, delta in 1u8..10) {
            let bn = Bn9::from_base(base).expect("in range");
            let mut t = bn.as_str().as_bytes().to_vec();
            t[pos] = b'0' + (t[pos] - b'0' + delta) % 10;
            prop_assert!(!luhn_valid(&t));
        }
    }
}
