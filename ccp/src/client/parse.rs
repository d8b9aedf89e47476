//! Parsing of what people type: business numbers, programs, role grants,
//! expiry instants and enum words. Business numbers are parsed with the
//! shared vocabulary (`ccp_types::Bn9`, check digit included); the services
//! validate the rest (program references, ownership) and name the field.

use ccp_proto::common::v1::{Action, ProgramRole, Role, RoleGrants};
use ccp_types::Bn9;
use chrono::{DateTime, NaiveDate, Utc};
use prost_types::Timestamp;

use super::CliError;

/// Returns the BN9 of `text`: `123456782`, `businesses/123456782` or any
/// resource name under it.
pub fn bn9(text: &str) -> Result<String, CliError> {
    let text = text.trim();
    let bn = text
        .strip_prefix("businesses/")
        .map_or(text, |rest| rest.split('/').next().unwrap_or(rest));
    match Bn9::parse(bn, "") {
        Ok(bn9) => Ok(bn9.to_string()),
        Err(_) if bn.is_empty() => Err(CliError::usage(format!(
            "`{text}` is not a business number: 9 digits (a BN9), e.g. 123456782"
        ))),
        // The vocabulary's words: the shape, or the check digit that does not match.
        Err(violation) => Err(CliError::usage(format!(
            "`{text}` {}",
            violation.description
        ))),
    }
}

/// Returns the BN9 of each of `texts`.
pub fn bn9s(texts: &[String]) -> Result<Vec<String>, CliError> {
    texts.iter().map(|t| bn9(t)).collect()
}

/// Returns `businesses/{bn9}`.
pub fn business(text: &str) -> Result<String, CliError> {
    Ok(format!("businesses/{}", bn9(text)?))
}

/// Returns the BN9 a resource name lives under (`businesses/{bn9}/…`).
pub fn owner_of(name: &str) -> Result<String, CliError> {
    if !name.starts_with("businesses/") {
        return Err(CliError::usage(format!(
            "`{name}` is not a resource name: expected businesses/<BN9>/… as printed by the list commands"
        )));
    }
    bn9(name)
}

/// Returns a principal from `person:<uuid>`, `credential:<uuid>` or a member
/// name `businesses/{bn9}/members/{principal}` (as `-q` prints after an approval).
pub fn principal(text: &str) -> String {
    let text = text.trim();
    text.split_once("/members/")
        .map_or(text, |(_, principal)| principal)
        .to_owned()
}

/// Returns a BN15 for `text`: `RM0001` is completed with `bn9`; a BN15 is kept.
pub fn program(bn9: &str, text: &str) -> String {
    let text = text.trim().to_uppercase();
    if text.len() == 6 && text.starts_with("RM") {
        format!("{bn9}{text}")
    } else {
        text
    }
}

/// Parses a role word.
pub fn role(text: &str) -> Result<Role, CliError> {
    match text.trim().to_lowercase().as_str() {
        "bam" => Ok(Role::Bam),
        "pam" => Ok(Role::Pam),
        "editor" => Ok(Role::Editor),
        "reader" => Ok(Role::Reader),
        other => Err(CliError::usage(format!(
            "unknown role `{other}`: bam, pam, editor or reader"
        ))),
    }
}

/// Parses `--grant` values (`bam`, `pam:RM0002`, `editor:RM0001`,
/// `reader:123456782RM0002`) for a member of business `bn9`.
pub fn grants(bn9: &str, values: &[String]) -> Result<RoleGrants, CliError> {
    let mut grants = RoleGrants::default();
    for value in values {
        let (word, program_text) = match value.split_once(':') {
            Some((word, program_text)) => (word, Some(program_text)),
            None => (value.as_str(), None),
        };
        match (role(word)?, program_text) {
            (Role::Bam, None) => grants.business_manager = true,
            (Role::Bam, Some(_)) => {
                return Err(CliError::usage(
                    "bam is business-wide: write `--grant bam` without a program",
                ));
            }
            (_, None) => {
                return Err(CliError::usage(format!(
                    "`{value}` names no program: write e.g. `--grant {word}:RM0001`"
                )));
            }
            (role, Some(program_text)) => grants.program_roles.push(ProgramRole {
                program_account: program(bn9, program_text),
                role: role as i32,
            }),
        }
    }
    Ok(grants)
}

/// Parses an action word.
pub fn action(text: &str) -> Result<Action, CliError> {
    match text.trim().to_lowercase().as_str() {
        "view" => Ok(Action::View),
        "edit" => Ok(Action::Edit),
        "manage" => Ok(Action::Manage),
        other => Err(CliError::usage(format!(
            "unknown action `{other}`: view, edit or manage"
        ))),
    }
}

/// Parses an expiry: a duration from `now` (humantime: `90d`, `12h`,
/// `30m`, `45s`, `1h 30m`, `2weeks`), a date (`2027-03-01`, midnight UTC) or
/// an RFC 3339 instant.
pub fn instant(now: DateTime<Utc>, text: &str) -> Result<Timestamp, CliError> {
    let text = text.trim();
    let bad = || {
        CliError::usage(format!(
            "`{text}` is not an expiry: write a duration (90d, 12h, 30m, 45s), a date (2027-03-01) or an RFC 3339 instant"
        ))
    };
    let at = if let Ok(duration) = humantime::parse_duration(text) {
        let delta = chrono::Duration::from_std(duration).map_err(|_| bad())?;
        now.checked_add_signed(delta).ok_or_else(bad)?
    } else if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc()
    } else {
        DateTime::parse_from_rfc3339(text)
            .map_err(|_| bad())?
            .with_timezone(&Utc)
    };
    Ok(Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// Parses an RFC 3339 instant or a date (not a duration).
pub fn since(text: &str) -> Result<Timestamp, CliError> {
    if humantime::parse_duration(text.trim()).is_ok() {
        return Err(CliError::usage(
            "--since takes a date (2026-01-31) or an RFC 3339 instant",
        ));
    }
    instant(Utc::now(), text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::bare("123456782", "123456782")]
    #[case::business_name("businesses/123456782", "123456782")]
    #[case::inside_a_name("businesses/123456782/members/person:x", "123456782")]
    fn business_numbers_come_bare_or_inside_names(#[case] text: &str, #[case] expected: &str) {
        assert_eq!(bn9(text).unwrap(), expected);
    }

    #[rstest]
    #[case::too_short("12345678", "9 digits")]
    #[case::not_digits("12345678A", "9 digits")]
    #[case::empty("", "9 digits")]
    #[case::wrong_check_digit("123456789", "check digit")]
    fn malformed_business_numbers_say_why(#[case] text: &str, #[case] why: &str) {
        let Err(CliError::Usage(message)) = bn9(text) else {
            panic!("`{text}` is refused as a usage error");
        };
        assert!(message.contains(why), "{message}");
    }

    #[rstest]
    #[case::a_program_reference("rm0001", "123456782RM0001")]
    #[case::a_bn15_is_kept("888316171RM0001", "888316171RM0001")]
    fn programs_are_completed_with_the_business(#[case] text: &str, #[case] expected: &str) {
        assert_eq!(program("123456782", text), expected);
    }

    #[test]
    fn principals_come_bare_or_as_member_names() {
        assert_eq!(principal("person:abc"), "person:abc");
        assert_eq!(
            principal("businesses/888316171/members/person:abc"),
            "person:abc"
        );
    }

    #[test]
    fn grants_read_bam_and_role_program_pairs() {
        let g = grants(
            "123456782",
            &["bam".into(), "editor:RM0001".into(), "reader:RM0002".into()],
        )
        .unwrap();
        assert!(g.business_manager);
        assert_eq!(g.program_roles.len(), 2);
        assert_eq!(g.program_roles[0].program_account, "123456782RM0001");
        assert_eq!(g.program_roles[1].role, Role::Reader as i32);
    }

    #[rstest]
    #[case::a_role_without_a_program("editor")]
    #[case::bam_on_a_program("bam:RM0001")]
    #[case::an_unknown_role("owner:RM0001")]
    fn grants_refuse_what_cannot_be_granted(#[case] grant: &str) {
        assert!(grants("123456782", &[grant.to_owned()]).is_err());
    }

    #[test]
    fn expiries_read_durations_dates_and_instants() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            instant(now, "90d").unwrap().seconds,
            now.timestamp() + 90 * 86_400
        );
        assert_eq!(instant(now, "30s").unwrap().seconds, now.timestamp() + 30);
        assert_eq!(
            instant(now, "2026-04-01").unwrap().seconds,
            now.timestamp() + 90 * 86_400
        );
        assert_eq!(
            instant(now, "2026-01-01T01:00:00Z").unwrap().seconds,
            now.timestamp() + 3600
        );
        assert_eq!(
            instant(now, "1h 30m").unwrap().seconds,
            now.timestamp() + 5400
        );
        assert!(since("90d").is_err(), "--since takes no duration");
        assert!(since("2026-01-31").is_ok());
        assert!(instant(now, "soon").is_err());
        assert!(instant(now, "xd").is_err());
    }
}
