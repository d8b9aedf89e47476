//! Personal profiles (R-ID-2): the fields a person keeps, each parsed.

use std::collections::BTreeMap;

use ccp_types::FieldViolation;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::FieldRule;

/// A person's preferred language for correspondence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    En,
    /// French.
    Fr,
}

impl Language {
    /// Returns the stored code, `en` or `fr`.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
        }
    }

    /// Parses a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Self::En),
            "fr" => Some(Self::Fr),
            _ => None,
        }
    }
}

impl std::str::FromStr for Language {
    type Err = FieldRule;

    fn from_str(code: &str) -> Result<Self, FieldRule> {
        Self::from_code(code).ok_or(FieldRule::NoLanguage)
    }
}

/// A person's stored profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The person (the profile's id is the person's).
    pub id: Uuid,
    /// The editable fields.
    pub fields: ProfileFields,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// When it was last updated.
    pub update_time: DateTime<Utc>,
    /// Its update counter (the etag).
    pub version: i64,
}

impl Profile {
    /// Returns a new profile (version 1) of `person`.
    pub fn new(person: Uuid, fields: ProfileFields, now: DateTime<Utc>) -> Self {
        Self {
            id: person,
            fields,
            create_time: now,
            update_time: now,
            version: 1,
        }
    }

    /// Returns it with `fields`, updated at `now`, one version later.
    pub fn updated(&self, fields: ProfileFields, now: DateTime<Utc>) -> Self {
        Self {
            fields,
            update_time: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// Returns its resource name `profiles/{id}`.
    pub fn name(&self) -> String {
        format!("profiles/{}", self.id)
    }

    /// Returns its raw fields, to patch.
    pub fn raw(&self) -> RawProfileFields {
        RawProfileFields {
            legal_name: self.fields.legal_name.clone(),
            email: self.fields.email.clone(),
            phone: self.fields.phone.clone(),
            preferred_language: Some(self.fields.preferred_language),
            email_notifications: self.fields.email_notifications,
            notification_choices: self
                .fields
                .notification_choices
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }
}

/// The editable fields of a profile, all valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileFields {
    /// Legal name, 1–200 characters, white space collapsed.
    pub legal_name: String,
    /// E-mail address, lower-cased domain.
    pub email: String,
    /// Telephone number, may be empty.
    pub phone: String,
    /// Preferred language.
    pub preferred_language: Language,
    /// E-mail notification opt-in.
    pub email_notifications: bool,
    /// The choice per kind of notice (each a kind of [`ccp_types::NOTICE_KINDS`]); a kind
    /// without one follows `email_notifications`.
    pub notification_choices: BTreeMap<String, bool>,
}

impl ProfileFields {
    /// Returns whether the person wants notices of `kind`: their choice for it, else the opt-in.
    pub fn wants(&self, kind: &str) -> bool {
        self.notification_choices
            .get(kind)
            .copied()
            .unwrap_or(self.email_notifications)
    }
}

/// The raw fields as received, before parsing.
#[derive(Debug, Clone, Default)]
pub struct RawProfileFields {
    /// Legal name.
    pub legal_name: String,
    /// E-mail.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Language: None when unspecified or unknown.
    pub preferred_language: Option<Language>,
    /// Opt-in.
    pub email_notifications: bool,
    /// Choices per kind of notice (kind, enabled), as given.
    pub notification_choices: Vec<(String, bool)>,
}

/// Parses a legal name: trimmed, inner white space collapsed, 1–200 characters, no control characters.
pub fn parse_legal_name(value: &str) -> Result<String, FieldRule> {
    let collapsed = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return Err(FieldRule::Required);
    }
    if collapsed.chars().count() > 200 {
        return Err(FieldRule::TooLong(200));
    }
    if collapsed.chars().any(char::is_control) {
        return Err(FieldRule::ControlCharacters);
    }
    Ok(collapsed)
}

/// Parses an e-mail address: `local@domain`, at most 254 characters, a dotted domain.
pub fn parse_email(value: &str) -> Result<String, FieldRule> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldRule::Required);
    }
    if value.len() > 254 {
        return Err(FieldRule::TooLong(254));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(FieldRule::NotAnEmail);
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && local.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii());
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if !local_ok || !domain_ok {
        return Err(FieldRule::NotAnEmail);
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// Parses the choices per kind of notice: each a known kind, none chosen twice. Returns them
/// and the violations, each named `<field>[i].kind`.
pub fn parse_notification_choices(
    choices: &[(String, bool)],
    field: &str,
) -> (BTreeMap<String, bool>, Vec<FieldViolation>) {
    let mut parsed = BTreeMap::new();
    let mut violations = Vec::new();
    for (i, (kind, enabled)) in choices.iter().enumerate() {
        let at = format!("{field}[{i}].kind");
        if !ccp_types::is_notice_kind(kind) {
            violations.push(FieldRule::UnknownNoticeKind.on(at));
        } else if parsed.insert(kind.clone(), *enabled).is_some() {
            violations.push(FieldRule::ChosenTwice.on(at));
        }
    }
    (parsed, violations)
}

/// Parses a telephone number: empty, or digits, spaces, `+`, `-`, `(`, `)`,
/// 7–20 characters with at least 7 digits.
pub fn parse_phone(value: &str) -> Result<String, FieldRule> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let len = value.chars().count();
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'));
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if !allowed || !(7..=20).contains(&len) || digits < 7 {
        return Err(FieldRule::NotAPhone);
    }
    Ok(value.to_owned())
}

impl RawProfileFields {
    /// Parses every field, collecting every violation (named under `prefix`).
    pub fn parse(&self, prefix: &str) -> Result<ProfileFields, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        let mut field = |name: &str, r: Result<String, FieldRule>| match r {
            Ok(v) => Some(v),
            Err(why) => {
                violations.push(why.on(format!("{prefix}{name}")));
                None
            }
        };
        let legal_name = field("legal_name", parse_legal_name(&self.legal_name));
        let email = field("email", parse_email(&self.email));
        let phone = field("phone", parse_phone(&self.phone));
        let language = field(
            "preferred_language",
            self.preferred_language
                .map(|l| l.code().to_owned())
                .ok_or(FieldRule::NoLanguage),
        );
        let (notification_choices, bad_choices) = parse_notification_choices(
            &self.notification_choices,
            &format!("{prefix}notification_choices"),
        );
        violations.extend(bad_choices);
        match (legal_name, email, phone, language) {
            (Some(legal_name), Some(email), Some(phone), Some(language))
                if violations.is_empty() =>
            {
                Ok(ProfileFields {
                    legal_name,
                    email,
                    phone,
                    preferred_language: Language::from_code(&language).unwrap_or(Language::En),
                    email_notifications: self.email_notifications,
                    notification_choices,
                })
            }
            _ => Err(violations),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_and_name_every_violation() {
        let raw = RawProfileFields {
            legal_name: "  Jane   Doe ".into(),
            email: "Jane@Example.CA".into(),
            phone: "+1 (613) 555-0100".into(),
            preferred_language: Some(Language::Fr),
            email_notifications: true,
            notification_choices: vec![("relationship-ended".into(), false)],
        };
        let p = raw.parse("profile.").ok();
        assert_eq!(p.as_ref().map(|p| p.legal_name.as_str()), Some("Jane Doe"));
        assert_eq!(
            p.as_ref().map(|p| p.wants("relationship-ended")),
            Some(false)
        );
        assert_eq!(
            p.as_ref().map(|p| p.wants("relationship-expired")),
            Some(true)
        );
        assert_eq!(p.map(|p| p.email), Some("Jane@example.ca".to_owned()));
        let bad = RawProfileFields {
            legal_name: String::new(),
            email: "nope".into(),
            phone: "abc".into(),
            preferred_language: None,
            email_notifications: false,
            notification_choices: vec![
                ("relationship-ended".into(), true),
                ("no-such-notice".into(), true),
                ("relationship-ended".into(), false),
            ],
        };
        let v = bad.parse("profile.").err().unwrap_or_default();
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "profile.legal_name",
                "profile.email",
                "profile.phone",
                "profile.preferred_language",
                "profile.notification_choices[1].kind",
                "profile.notification_choices[2].kind",
            ]
        );
    }
}
