//! The language of the client's human output: `--language` (or `CCP_LANGUAGE`), else the
//! signed-in person's profile language (kept in the session), else English.
//!
//! Messages come from the Fluent catalogues `ccp/i18n/<en|fr>/client.ftl`, the technology of
//! the notification templates, built into the binary. Table headings, field labels and enum
//! values are looked up by the English text they replace (`DISPLAY NAME` → `heading-display-name`)
//! and fall back to it, so a new column prints in English until it is translated. JSON output
//! and the servers' own messages are not translated.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language the client prints in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Language {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

impl Language {
    /// Returns its tag (`en`, `fr`), as kept in the session file.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
        }
    }

    /// Returns the language of a tag; None for any other.
    pub fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "en" => Some(Self::En),
            "fr" => Some(Self::Fr),
            _ => None,
        }
    }

    /// Returns identity's `Language` value of it.
    pub fn proto(self) -> i32 {
        match self {
            Self::En => ccp_proto::identity::v1::Language::En as i32,
            Self::Fr => ccp_proto::identity::v1::Language::Fr as i32,
        }
    }

    /// Returns the language of identity's `Language` value; None when unset.
    pub fn from_proto(value: i32) -> Option<Self> {
        match ccp_proto::identity::v1::Language::try_from(value) {
            Ok(ccp_proto::identity::v1::Language::En) => Some(Self::En),
            Ok(ccp_proto::identity::v1::Language::Fr) => Some(Self::Fr),
            _ => None,
        }
    }
}

/// The language of this process's output (0 English, 1 French): a command sets it once it
/// knows the flag and the session.
static CURRENT: AtomicU8 = AtomicU8::new(0);

/// Makes the rest of the command print in `language`.
pub fn set(language: Language) {
    CURRENT.store(u8::from(language == Language::Fr), Ordering::Relaxed);
}

/// Returns the language output is printed in.
pub fn current() -> Language {
    if CURRENT.load(Ordering::Relaxed) == 1 {
        Language::Fr
    } else {
        Language::En
    }
}

/// The catalogue files, built into the binary.
const SOURCES: [(Language, &str); 2] = [
    (Language::En, include_str!("../../i18n/en/client.ftl")),
    (Language::Fr, include_str!("../../i18n/fr/client.ftl")),
];

type Bundle = FluentBundle<FluentResource>;

/// Returns the bundle of `language`, parsed once; None when it does not parse (a unit test
/// keeps both valid, and output then falls back to its English text).
fn bundle(language: Language) -> Option<&'static Bundle> {
    static BUNDLES: OnceLock<[Option<Bundle>; 2]> = OnceLock::new();
    let bundles = BUNDLES.get_or_init(|| {
        SOURCES.map(|(language, source)| {
            let resource = FluentResource::try_new(source.to_owned()).ok()?;
            let mut bundle = FluentBundle::new_concurrent(vec![language.tag().parse().ok()?]);
            // Terminal text: no Unicode isolation marks around values.
            bundle.set_use_isolating(false);
            bundle.add_resource(resource).ok()?;
            Some(bundle)
        })
    });
    bundles[usize::from(language == Language::Fr)].as_ref()
}

/// Formats message `id` in `language` with `args`; None when the catalogue lacks it.
fn format_in(language: Language, id: &str, args: Option<&FluentArgs<'_>>) -> Option<String> {
    let bundle = bundle(language)?;
    let pattern = bundle.get_message(id)?.value()?;
    let mut errors = Vec::new();
    let text = bundle.format_pattern(pattern, args, &mut errors);
    errors.is_empty().then(|| text.into_owned())
}

/// Returns message `id` in the current language (English when French lacks it, `id` itself
/// when both do).
pub fn t(id: &str) -> String {
    tf(id, &[])
}

/// Returns message `id` with `values` (given as plain text, never parsed as Fluent).
pub fn tf(id: &str, values: &[(&str, &str)]) -> String {
    tf_in(current(), id, values)
}

/// Returns message `id` in `language` with `values`, as [`tf`] says.
fn tf_in(language: Language, id: &str, values: &[(&str, &str)]) -> String {
    let mut args = FluentArgs::new();
    for (name, value) in values {
        args.set(*name, FluentValue::from(*value));
    }
    let args = (!values.is_empty()).then_some(&args);
    format_in(language, id, args)
        .or_else(|| format_in(Language::En, id, args))
        .unwrap_or_else(|| id.to_owned())
}

/// Returns the catalogue id of an English text under `prefix`: `DISPLAY NAME` →
/// `heading-display-name`.
fn id_of(prefix: &str, english: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + english.len() + 1);
    id.push_str(prefix);
    id.push('-');
    for c in english.trim().chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    id
}

/// Returns `english` in the current language when the catalogue has it under `prefix`.
fn by_english(prefix: &str, english: &str) -> String {
    by_english_in(current(), prefix, english)
}

/// Returns `english` in `language` when the catalogue has it under `prefix`.
fn by_english_in(language: Language, prefix: &str, english: &str) -> String {
    if language == Language::En {
        return english.to_owned();
    }
    format_in(language, &id_of(prefix, english), None).unwrap_or_else(|| english.to_owned())
}

/// A table's column heading (`NAME`, `DISPLAY NAME`) in the current language.
pub fn heading(english: &str) -> String {
    by_english("heading", english)
}

/// A field label of `key  value` output (`legal name`) in the current language.
pub fn label(english: &str) -> String {
    by_english("label", english)
}

/// An enum value's short name (`active`, `editor`) in the current language.
pub fn value(english: &str) -> String {
    by_english("value", english)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The ids of the messages of `source`.
    fn ids(source: &str) -> Vec<String> {
        source
            .lines()
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .filter_map(|l| l.split_once(" =").map(|(id, _)| id.trim().to_owned()))
            .collect()
    }

    #[test]
    fn both_catalogues_parse_and_have_the_same_messages() {
        for (language, _) in SOURCES {
            assert!(
                bundle(language).is_some(),
                "{} does not parse",
                language.tag()
            );
        }
        let en = ids(SOURCES[0].1);
        let fr = ids(SOURCES[1].1);
        assert!(en.len() > 40, "{en:?}");
        let missing_fr: Vec<_> = en.iter().filter(|id| !fr.contains(id)).collect();
        let missing_en: Vec<_> = fr.iter().filter(|id| !en.contains(id)).collect();
        assert!(missing_fr.is_empty(), "French lacks {missing_fr:?}");
        assert!(missing_en.is_empty(), "English lacks {missing_en:?}");
        for (language, _) in SOURCES {
            let bundle = bundle(language).unwrap();
            for id in &en {
                assert!(bundle.has_message(id), "{}: {id}", language.tag());
            }
        }
    }

    /// Every `t("…")` / `tf("…"` of the client names a message of the English catalogue.
    #[test]
    fn every_message_the_client_prints_is_in_the_catalogue() {
        let en = ids(SOURCES[0].1);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![dir];
        let mut used = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.ends_with("client/lang.rs") {
                    continue; // this test's own markers
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for marker in ["lang::t(", "lang::tf("] {
                    for (at, _) in text.match_indices(marker) {
                        let Some(rest) = text[at + marker.len()..].trim_start().strip_prefix('"')
                        else {
                            continue; // an id in a variable (`emit_headed`'s heading)
                        };
                        let id: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                            .collect();
                        assert!(
                            en.contains(&id),
                            "{}: `{id}` is not in i18n/en/client.ftl",
                            path.display()
                        );
                        used += 1;
                    }
                }
            }
        }
        assert!(used > 20, "found only {used} uses");
    }

    #[test]
    fn french_output_translates_and_falls_back_to_english() {
        // The process-wide language is left alone: tests run in parallel threads.
        let (fr, en) = (Language::Fr, Language::En);
        assert_eq!(by_english_in(fr, "heading", "DISPLAY NAME"), "NOM AFFICHÉ");
        assert_eq!(
            by_english_in(fr, "heading", "NO SUCH COLUMN"),
            "NO SUCH COLUMN"
        );
        assert_eq!(by_english_in(fr, "value", "active"), "actif");
        let signed = tf_in(fr, "signed-out", &[("principal", "person:{ $x }")]);
        assert_eq!(signed, "déconnecté : person:{ $x }");
        assert_eq!(by_english_in(en, "heading", "DISPLAY NAME"), "DISPLAY NAME");
        assert_eq!(tf_in(en, "not-signed-in", &[]), "not signed in");
        assert_eq!(tf_in(fr, "no-such-message", &[]), "no-such-message");
    }
}
