//! What the client prints: aligned tables for people, proto3 JSON for scripts.
//!
//! JSON is the canonical proto3 mapping of the response message (lowerCamelCase
//! names, enums by name, RFC 3339 timestamps, 64-bit integers as strings),
//! with default values included so scripts always find every field.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use prost_types::Timestamp;

/// Returns the descriptor pool of every CCP contract.
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(ccp_proto::FILE_DESCRIPTOR_SET).unwrap_or_else(|err| {
            // The set is generated at build time; a failure here is a build defect.
            panic!("the compiled-in descriptor set does not decode: {err}")
        })
    })
}

/// Returns the proto3 JSON of `message`.
pub fn to_json<M: prost::Message + prost::Name>(message: &M) -> serde_json::Value {
    let Some(descriptor) = pool().get_message_by_name(&M::full_name()) else {
        return serde_json::Value::Null;
    };
    let Ok(dynamic) = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()) else {
        return serde_json::Value::Null;
    };
    let options = SerializeOptions::new().skip_default_fields(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap_or(serde_json::Value::Null)
}

/// Returns the JSON array of `items`.
pub fn to_json_list<M: prost::Message + prost::Name>(items: &[M]) -> serde_json::Value {
    serde_json::Value::Array(items.iter().map(to_json).collect())
}

/// The fields whose `name` is the primary result of a response, in order of
/// preference (an approval's relationship or member before its request).
const PRIMARY: &[&str] = &[
    "relationship",
    "member",
    "credential",
    "group",
    "assignment",
    "business",
    "request",
    "profile",
];

/// Returns what `--quiet` prints for a message: its `name` (or `resource`),
/// else the name of its primary nested resource.
pub fn primary_name(json: &serde_json::Value) -> Option<String> {
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    text(json, "name")
        .or_else(|| text(json, "resource"))
        .or_else(|| {
            PRIMARY.iter().find_map(|field| match json.get(*field) {
                // A reference by name (e.g. MyBusiness.business).
                Some(serde_json::Value::String(name)) if !name.is_empty() => Some(name.clone()),
                Some(nested) => text(nested, "name"),
                None => None,
            })
        })
}

/// Prints one JSON document on stdout.
pub fn print_json(value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(_) => println!("null"),
    }
}

/// Formats a timestamp as RFC 3339 (seconds), or `-` when unset.
pub fn time(ts: Option<&Timestamp>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
}

/// Returns an enum's short name in the output's language: `ROLE_EDITOR` → `editor` (`-` when
/// unspecified).
pub fn enum_name(full: &str, prefix: &str) -> String {
    let short = full.strip_prefix(prefix).unwrap_or(full);
    if short == "UNSPECIFIED" || short.is_empty() {
        "-".to_owned()
    } else {
        super::lang::value(&short.to_lowercase().replace('_', " "))
    }
}

/// The width tables fit when stdout is not a terminal (a pipe, a file).
const WIDTH_OFF_TERMINAL: u16 = 100;

/// The widest a prose column's floor goes for its longest word (a longer
/// word, e.g. a URL in a note, may break).
const MAX_WORD_COLUMNS: usize = 40;

/// A table of text cells (comfy-table, no borders), its columns fitted to
/// the terminal's width (100 columns when stdout is not a terminal): long
/// cells of prose wrap within their column; a column of single words
/// (names, principals, actions) never does.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Returns an empty table with these column headings (English; printed in the output's
    /// language).
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| super::lang::heading(h)).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table to fit `width` columns (or `(none)` when it has no rows).
    pub fn render_within(&self, width: u16) -> String {
        if self.rows.is_empty() {
            return format!("{}\n", super::lang::t("none"));
        }
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_width(width)
            .set_header(self.header.clone());
        for row in &self.rows {
            let mut cells = row.clone();
            cells.resize(self.header.len(), String::new());
            table.add_row(cells);
        }
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
        // A column of single words (names, principals, actions) never wraps:
        // people copy them into the next command and scripts grep them. A
        // column of prose wraps between words, never inside one: it is at
        // least as wide as its longest word (up to MAX_WORD_COLUMNS), so a
        // table of long names runs wider than the terminal rather than
        // printing a column one letter wide.
        for (i, column) in table.column_iter_mut().enumerate() {
            let cells = || self.rows.iter().filter_map(|row| row.get(i));
            let words_only = cells().all(|cell| !cell.contains(char::is_whitespace));
            if words_only {
                column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
            } else {
                let longest_word = cells()
                    .chain(self.header.get(i))
                    .flat_map(|cell| cell.split_whitespace())
                    .map(|word| word.chars().count())
                    .max()
                    .unwrap_or(1);
                // The floor counts the column's padding (2) too.
                let floor = u16::try_from(longest_word.min(MAX_WORD_COLUMNS) + 2).unwrap_or(2);
                column.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
                    comfy_table::Width::Fixed(floor),
                ));
            }
        }
        let mut out = String::new();
        for line in table.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Renders the table for stdout: the terminal's width, else 100 columns.
    pub fn render(&self) -> String {
        let width = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            comfy_table::Table::new()
                .width()
                .unwrap_or(WIDTH_OFF_TERMINAL)
        } else {
            WIDTH_OFF_TERMINAL
        };
        self.render_within(width)
    }

    /// Prints the table on stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Prints `key  value` lines with aligned keys (English; printed in the output's language).
pub fn print_fields(fields: &[(&str, String)]) {
    let labels: Vec<String> = fields.iter().map(|(k, _)| super::lang::label(k)).collect();
    let width = labels.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    for (key, (_, value)) in labels.iter().zip(fields) {
        println!("{key:<width$}  {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_say_none_when_empty() {
        let mut table = Table::new(&["NAME", "ROLE"]);
        assert_eq!(table.render(), "(none)\n");
        table.row(vec!["alice".into(), "bam".into()]);
        table.row(vec!["bo".into(), "editor RM0001".into()]);
        assert_eq!(
            table.render_within(100),
            "NAME   ROLE\nalice  bam\nbo     editor RM0001\n"
        );
    }

    #[test]
    fn a_table_fits_the_width_wrapping_long_cells() {
        let mut table = Table::new(&["NAME", "NOTE"]);
        let note = "a long justification note that goes on and on ".repeat(4);
        table.row(vec![
            "businesses/123456782/employeeRequests/0197".into(),
            note,
        ]);
        let text = table.render_within(60);
        assert!(text.lines().count() > 2, "the note wraps:\n{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= 60, "{line:?} is wider than 60");
        }
        assert!(
            text.contains("businesses/123456782/employeeRequests/0197"),
            "{text}"
        );
    }

    #[test]
    fn a_prose_column_beside_long_names_wraps_between_words_only() {
        let mut table = Table::new(&["MEMBER", "NAME", "ROLES"]);
        let member = "businesses/123456782/members/person:857a71ae-d8c8-41d5-bd11-8742b879d218";
        table.row(vec![
            member.into(),
            "Erin Roy".into(),
            "editor:RM0001 reader:RM0002".into(),
        ]);
        let text = table.render_within(100);
        for word in [member, "Erin", "Roy", "editor:RM0001", "reader:RM0002"] {
            assert!(text.contains(word), "{word} is printed whole:\n{text}");
        }
        assert!(
            text.lines().count() <= 4,
            "a few lines, not a letter per line:\n{text}"
        );
    }

    #[test]
    fn quiet_prints_the_primary_resource_name() {
        let approval = serde_json::json!({
            "request": {"name": "businesses/1/receivedRequests/r"},
            "relationship": {"name": "businesses/1/relationships/x"},
            "revision": "v"
        });
        assert_eq!(
            primary_name(&approval).as_deref(),
            Some("businesses/1/relationships/x")
        );
        let member = serde_json::json!({"name": "businesses/1/members/person:p"});
        assert_eq!(
            primary_name(&member).as_deref(),
            Some("businesses/1/members/person:p")
        );
        assert_eq!(primary_name(&serde_json::json!({"revision": "v"})), None);
        let mine = serde_json::json!({"business": "businesses/123456782", "legalName": "ABC"});
        assert_eq!(primary_name(&mine).as_deref(), Some("businesses/123456782"));
    }

    #[test]
    fn json_is_proto3_with_enum_names_and_defaults() {
        let grants = ccp_proto::common::v1::ProgramRole {
            program_account: "123456782RM0001".into(),
            role: ccp_proto::common::v1::Role::Editor as i32,
        };
        let json = to_json(&grants);
        assert_eq!(json["programAccount"], "123456782RM0001");
        assert_eq!(json["role"], "ROLE_EDITOR");
        let empty = to_json(&ccp_proto::common::v1::RoleGrants::default());
        assert_eq!(empty["businessManager"], false);
        assert_eq!(empty["programRoles"], serde_json::json!([]));
    }
}
