//! Registry matching for registration (R-AC-2): names and addresses are
//! compared after normalization (trim, collapse white space, case fold,
//! Unicode NFC; postal codes upper-cased without spaces; punctuation stays
//! significant), and known-fact answers by their format.

use unicode_normalization::UnicodeNormalization as _;

/// How a known-fact answer is written and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// Dollars and cents, compared as a number of cents.
    Amount,
    /// `YYYY-MM-DD`.
    Date,
    /// Normalized text.
    Text,
}

impl AnswerFormat {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amount => "AMOUNT",
            Self::Date => "DATE",
            Self::Text => "TEXT",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "AMOUNT" => Some(Self::Amount),
            "DATE" => Some(Self::Date),
            "TEXT" => Some(Self::Text),
            _ => None,
        }
    }

    /// Returns the canonical form of an answer, or None when it is not
    /// written in this format.
    pub fn canonical(self, answer: &str) -> Option<String> {
        match self {
            Self::Amount => parse_cents(answer).map(|c| c.to_string()),
            Self::Date => chrono::NaiveDate::parse_from_str(answer.trim(), "%Y-%m-%d")
                .ok()
                .map(|d| d.format("%Y-%m-%d").to_string()),
            Self::Text => Some(normalize_text(answer)),
        }
    }
}

/// Parses an amount like `1234.56`, `1,234.5`, `$1234` into cents.
pub fn parse_cents(s: &str) -> Option<i64> {
    let s: String = s
        .trim()
        .trim_start_matches('$')
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, s),
    };
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w.to_owned(), f.to_owned()),
        None => (s.clone(), String::new()),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 15 {
        return None;
    }
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    let cents = whole.checked_mul(100)?.checked_add(frac)?;
    Some(if neg { -cents } else { cents })
}

/// Trims, collapses runs of white space, case folds and NFC-normalizes.
pub fn normalize_text(s: &str) -> String {
    let nfc: String = s.nfc().collect();
    let collapsed = nfc.split_whitespace().collect::<Vec<_>>().join(" ");
    let folded: String = collapsed.to_lowercase();
    folded.nfc().collect()
}

/// Upper-cases a postal code and removes every space.
pub fn normalize_postal_code(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

/// A postal address in plain Rust.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    /// First street line.
    pub line1: String,
    /// Second street line.
    #[serde(default)]
    pub line2: String,
    /// City.
    pub city: String,
    /// Province code.
    pub province: String,
    /// Postal code.
    pub postal_code: String,
    /// Country code (`CA` when empty).
    #[serde(default)]
    pub country: String,
}

impl Address {
    /// Returns the address in its comparison form.
    pub fn normalized(&self) -> Address {
        let country = if self.country.trim().is_empty() {
            "ca".to_owned()
        } else {
            normalize_text(&self.country)
        };
        Address {
            line1: normalize_text(&self.line1),
            line2: normalize_text(&self.line2),
            city: normalize_text(&self.city),
            province: normalize_text(&self.province),
            postal_code: normalize_postal_code(&self.postal_code),
            country,
        }
    }

    /// Returns true when both addresses are the same after normalization.
    pub fn matches(&self, other: &Address) -> bool {
        self.normalized() == other.normalized()
    }
}

/// Returns true when two names are the same after normalization.
pub fn names_match(a: &str, b: &str) -> bool {
    normalize_text(a) == normalize_text(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_ac_2_normalization() {
        assert!(names_match(
            "  ABC  Windows &\tDoors ",
            "abc windows & doors"
        ));
        assert!(!names_match(
            "ABC Windows & Doors Inc.",
            "ABC Windows & Doors Inc"
        ));
        assert!(names_match("Cafe\u{301}", "CAFÉ"));
        assert_eq!(normalize_postal_code("k1a 0b1"), "K1A0B1");
        assert_eq!(parse_cents("1,234.5"), Some(123_450));
        assert_eq!(parse_cents("12a"), None);
    }
}
