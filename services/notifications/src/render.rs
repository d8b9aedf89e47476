//! Notices rendered from the message catalogues in `templates/<language>/notices.ftl` (Fluent),
//! one per language, with the values the event and the directory give.
//!
//! Every value is cleaned before it is used ([`clean`]): control characters (CR and LF above all,
//! which could forge a header) become spaces, and a value longer than [`MAX_VALUE_CHARS`] is cut.
//! A value is never parsed as Fluent, so `{ $x }` in a name stays text.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// The longest a value put into a notice may be, in characters; longer ones are cut and end
/// with `…` (a legal name is at most a few hundred characters; a free-text note may be longer).
pub const MAX_VALUE_CHARS: usize = 200;

/// A language notices are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// English (also when a profile has no preference).
    En,
    /// French.
    Fr,
}

impl Language {
    /// Returns the language of identity's `Language` enum value (English when unset).
    pub fn from_proto(value: i32) -> Self {
        match ccp_proto::identity::v1::Language::try_from(value) {
            Ok(ccp_proto::identity::v1::Language::Fr) => Self::Fr,
            _ => Self::En,
        }
    }

    /// Returns its tag (`en`, `fr`), as in `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
        }
    }
}

/// A notice rendered in one language: a subject (one line) and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject, with no control character.
    pub subject: String,
    /// The body, lines separated by `\n`.
    pub body: String,
    /// The language it is written in.
    pub language: Language,
}

/// Why a notice could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The catalogue has no such notice.
    #[error("no notice `{0}` in the {1} catalogue")]
    Missing(String, &'static str),
    /// The notice refers to a value that was not given, or the catalogue is malformed.
    #[error("notice `{0}` in {1}: {2}")]
    Format(String, &'static str, String),
}

/// The catalogues of every language, loaded once.
pub struct Catalogue {
    bundles: HashMap<Language, FluentBundle<FluentResource>>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue").finish_non_exhaustive()
    }
}

/// The catalogue files, built into the binary so that a deployment cannot miss them.
const SOURCES: [(Language, &str); 2] = [
    (Language::En, include_str!("../templates/en/notices.ftl")),
    (Language::Fr, include_str!("../templates/fr/notices.ftl")),
];

impl Catalogue {
    /// Loads the built-in catalogues. Fails when one does not parse (a test keeps them valid).
    pub fn builtin() -> Result<Self, RenderError> {
        let mut bundles = HashMap::new();
        for (language, source) in SOURCES {
            let resource = FluentResource::try_new(source.to_owned()).map_err(|(_, errors)| {
                RenderError::Format("*".into(), language.tag(), format!("{errors:?}"))
            })?;
            let tag = language
                .tag()
                .parse()
                .map_err(|e| RenderError::Format("*".into(), language.tag(), format!("{e}")))?;
            let mut bundle = FluentBundle::new_concurrent(vec![tag]);
            // Plain-text e-mail: no Unicode isolation marks around values.
            bundle.set_use_isolating(false);
            bundle.add_resource(resource).map_err(|errors| {
                RenderError::Format("*".into(), language.tag(), format!("{errors:?}"))
            })?;
            bundles.insert(language, bundle);
        }
        Ok(Self { bundles })
    }

    /// Renders notice `id` (`<id>-subject`, `<id>-body`) in `language` with `values`, each
    /// cleaned first ([`clean`]).
    pub fn render(
        &self,
        id: &str,
        language: Language,
        values: &[(&str, &str)],
    ) -> Result<Rendered, RenderError> {
        self.render_counted(id, language, values, &[])
    }

    /// Renders like [`Catalogue::render`], with `counts` given as numbers (a template may
    /// select on them, e.g. `{ $days -> [1] … *[other] … }`).
    pub fn render_counted(
        &self,
        id: &str,
        language: Language,
        values: &[(&str, &str)],
        counts: &[(&str, i64)],
    ) -> Result<Rendered, RenderError> {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            args.set(*name, FluentValue::from(clean(value)));
        }
        for (name, count) in counts {
            args.set(*name, FluentValue::from(*count));
        }
        let subject = self.format(&format!("{id}-subject"), language, &args)?;
        let body = self.format(&format!("{id}-body"), language, &args)?;
        Ok(Rendered {
            // The subject is a header: one line, whatever a template says.
            subject: clean_line(&subject),
            body,
            language,
        })
    }

    fn format(
        &self,
        id: &str,
        language: Language,
        args: &FluentArgs<'_>,
    ) -> Result<String, RenderError> {
        let missing = || RenderError::Missing(id.to_owned(), language.tag());
        let bundle = self.bundles.get(&language).ok_or_else(missing)?;
        let pattern = bundle
            .get_message(id)
            .and_then(|m| m.value())
            .ok_or_else(missing)?;
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(args), &mut errors);
        if let Some(error) = errors.first() {
            return Err(RenderError::Format(
                id.to_owned(),
                language.tag(),
                error.to_string(),
            ));
        }
        Ok(text.into_owned())
    }
}

/// Returns `value` fit to be put into a notice or a header: every control character (CR, LF,
/// tab, NUL, the Unicode line and paragraph separators…) replaced by a space, runs of spaces
/// collapsed, the ends trimmed, and cut to [`MAX_VALUE_CHARS`] characters ending in `…`.
pub fn clean(value: &str) -> String {
    let line = clean_line(value);
    if line.chars().count() <= MAX_VALUE_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_VALUE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Returns `value` on one line: control and separator characters become spaces, runs of
/// whitespace one space, the ends trimmed.
fn clean_line(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ARGS: [(&str, &str); 6] = [
        ("recipient_name", "Alex Martin"),
        ("recipient_business", "Imports Ltd."),
        ("provider", "123456789"),
        ("provider_name", "Brokers Inc."),
        ("client", "987654321"),
        ("client_name", "Imports Ltd."),
    ];

    #[test]
    fn both_languages_render_every_notice() {
        let catalogue = Catalogue::builtin().unwrap();
        let en = catalogue
            .render("relationship-request-received", Language::En, &ARGS)
            .unwrap();
        assert_eq!(en.subject, "Brokers Inc. asks to act for Imports Ltd.");
        assert!(en.body.starts_with("Hello Alex Martin,"), "{}", en.body);
        let fr = catalogue
            .render("relationship-request-received", Language::Fr, &ARGS)
            .unwrap();
        assert_eq!(fr.subject, "Brokers Inc. demande à agir pour Imports Ltd.");
        assert!(fr.body.starts_with("Bonjour Alex Martin,"), "{}", fr.body);
    }

    #[test]
    fn a_missing_value_or_notice_is_an_error_not_a_half_message() {
        let catalogue = Catalogue::builtin().unwrap();
        assert!(matches!(
            catalogue.render("relationship-request-received", Language::En, &ARGS[..2]),
            Err(RenderError::Format(..))
        ));
        assert!(matches!(
            catalogue.render("no-such-notice", Language::Fr, &ARGS),
            Err(RenderError::Missing(..))
        ));
    }

    #[test]
    fn values_cannot_break_lines_inject_fluent_or_run_long() {
        let catalogue = Catalogue::builtin().unwrap();
        let mut args = ARGS;
        args[3] = (
            "provider_name",
            "Evil\r\nBcc: victim@example.com\r\n\r\n{ $client }",
        );
        let long = "x".repeat(5_000);
        args[5] = ("client_name", &long);
        let r = catalogue
            .render("relationship-request-received", Language::En, &args)
            .unwrap();
        assert!(!r.subject.contains(['\r', '\n']), "{:?}", r.subject);
        assert!(
            r.subject
                .starts_with("Evil Bcc: victim@example.com { $client } asks"),
            "{:?}",
            r.subject
        );
        assert!(!r.body.contains('\r'));
        assert!(!r.body.contains("\nBcc:"));
        let cut = format!("{}…", "x".repeat(MAX_VALUE_CHARS - 1));
        assert!(r.body.contains(&cut) && !r.body.contains(&format!("{cut}x")));
        assert_eq!(clean(" a\u{2028}b\t\u{0}c  "), "a b c");
    }
}
