//! `ccp registry import FILE`: loads CRA registry records from a CSV or JSON
//! file and upserts them through the accounts service's internal
//! ImportRegistry RPC, then prints the records accepted and rejected.
//!
//! JSON: `{"records": [{"bn9", "legal_name", "address": {line1, line2, city,
//! province, postal_code, country}, "program_accounts": [{"reference",
//! "display_name"}], "known_facts": [{"id", "text_en", "text_fr", "format":
//! "AMOUNT"|"DATE"|"TEXT", "answer"}]}]}` (a bare array works too).
//!
//! CSV: a header row, then one record per row with the columns `bn9,
//! legal_name, line1, line2, city, province, postal_code, country,
//! program_accounts, known_facts`; `program_accounts` is
//! `RM0001=ABC Windows;RM0002=ABC Doors` and `known_facts` is
//! `id|FORMAT|answer|question en|question fr` separated by `;`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::common::v1::Address;
use serde::Deserialize;

use crate::settings::SuiteSettings;

/// The most records sent in one ImportRegistry call.
const BATCH: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JsonFile {
    Wrapped { records: Vec<JsonRecord> },
    Bare(Vec<JsonRecord>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonAddress {
    line1: String,
    line2: String,
    city: String,
    province: String,
    postal_code: String,
    country: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonProgram {
    reference: String,
    display_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonFact {
    id: String,
    text_en: String,
    text_fr: String,
    format: String,
    answer: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonRecord {
    bn9: String,
    legal_name: String,
    address: JsonAddress,
    program_accounts: Vec<JsonProgram>,
    known_facts: Vec<JsonFact>,
}

fn format_of(s: &str) -> i32 {
    match s.trim().to_ascii_uppercase().as_str() {
        "AMOUNT" => pb::AnswerFormat::Amount as i32,
        "DATE" => pb::AnswerFormat::Date as i32,
        "TEXT" => pb::AnswerFormat::Text as i32,
        _ => pb::AnswerFormat::Unspecified as i32,
    }
}

impl From<JsonRecord> for pb::RegistryRecord {
    fn from(r: JsonRecord) -> Self {
        pb::RegistryRecord {
            bn9: r.bn9,
            legal_name: r.legal_name,
            address: Some(Address {
                line1: r.address.line1,
                line2: r.address.line2,
                city: r.address.city,
                province: r.address.province,
                postal_code: r.address.postal_code,
                country: r.address.country,
            }),
            program_accounts: r
                .program_accounts
                .into_iter()
                .map(|p| pb::RegistryProgramAccount {
                    reference: p.reference,
                    display_name: p.display_name,
                })
                .collect(),
            known_facts: r
                .known_facts
                .into_iter()
                .map(|f| pb::KnownFact {
                    question: Some(pb::KnownFactQuestion {
                        id: f.id,
                        text_en: f.text_en,
                        text_fr: f.text_fr,
                        format: format_of(&f.format),
                    }),
                    answer: f.answer,
                })
                .collect(),
        }
    }
}

/// Parses CSV text (RFC 4180 quoting, the `csv` crate) into rows of
/// fields, leaving out blank rows.
fn csv_rows(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("CSV record {} is malformed", line + 1))?;
        let row: Vec<String> = record.iter().map(str::to_owned).collect();
        if row.iter().any(|field| !field.trim().is_empty()) {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Parses the CSV form; a malformed row becomes a record that the service
/// rejects with a reason naming the field.
fn parse_csv(text: &str) -> anyhow::Result<Vec<pb::RegistryRecord>> {
    let rows = csv_rows(text)?;
    let Some((header, body)) = rows.split_first() else {
        return Ok(Vec::new());
    };
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let cols: Vec<Option<usize>> = [
        "bn9",
        "legal_name",
        "line1",
        "line2",
        "city",
        "province",
        "postal_code",
        "country",
        "program_accounts",
        "known_facts",
    ]
    .iter()
    .map(|n| col(n))
    .collect();
    if cols[0].is_none() {
        anyhow::bail!("the CSV header must name the columns, starting with bn9");
    }
    let get = |row: &Vec<String>, i: usize| -> String {
        cols[i]
            .and_then(|c| row.get(c))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    Ok(body
        .iter()
        .map(|row| pb::RegistryRecord {
            bn9: get(row, 0),
            legal_name: get(row, 1),
            address: Some(Address {
                line1: get(row, 2),
                line2: get(row, 3),
                city: get(row, 4),
                province: get(row, 5),
                postal_code: get(row, 6),
                country: get(row, 7),
            }),
            program_accounts: get(row, 8)
                .split(';')
                .filter(|s| !s.trim().is_empty())
                .map(|p| {
                    let (reference, name) = p.split_once('=').unwrap_or((p, ""));
                    pb::RegistryProgramAccount {
                        reference: reference.trim().to_owned(),
                        display_name: name.trim().to_owned(),
                    }
                })
                .collect(),
            known_facts: get(row, 9)
                .split(';')
                .filter(|s| !s.trim().is_empty())
                .map(|f| {
                    let parts: Vec<&str> = f.split('|').map(str::trim).collect();
                    let part = |i: usize| parts.get(i).copied().unwrap_or("").to_owned();
                    pb::KnownFact {
                        question: Some(pb::KnownFactQuestion {
                            id: part(0),
                            text_en: part(3),
                            text_fr: part(4),
                            format: format_of(&part(1)),
                        }),
                        answer: part(2),
                    }
                })
                .collect(),
        })
        .collect())
}

/// Reads registry records from a `.csv` or `.json` file.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<pb::RegistryRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        parse_csv(&text)
    } else {
        records_from_json(&text).with_context(|| format!("{} is not registry JSON", path.display()))
    }
}

/// Parses registry records from the JSON form (`{"records": [...]}` or a bare array).
pub fn records_from_json(text: &str) -> anyhow::Result<Vec<pb::RegistryRecord>> {
    let file: JsonFile = serde_json::from_str(text)?;
    let records = match file {
        JsonFile::Wrapped { records } | JsonFile::Bare(records) => records,
    };
    Ok(records.into_iter().map(Into::into).collect())
}

/// Returns the accounts endpoint a client should call for a listen address.
fn endpoint_of(scheme: &str, listen: &str) -> String {
    let listen = listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "127.0.0.1:");
    format!("{scheme}://{listen}")
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Records inserted or updated.
    pub accepted: i32,
    /// Records rejected, with their 0-based index in the file and the reason.
    pub rejected: Vec<pb::RejectedRecord>,
    /// Program accounts newly linked to registered businesses.
    pub linked: Vec<String>,
}

/// Runs `ccp registry import FILE`: sends the records in batches and prints
/// the report. `endpoint` overrides the configured accounts address.
pub async fn import(
    settings: SuiteSettings,
    file: &Path,
    endpoint: Option<String>,
) -> anyhow::Result<()> {
    let report = import_file(settings, file, endpoint).await?;
    println!(
        "registry import from {}: {} accepted, {} rejected",
        file.display(),
        report.accepted,
        report.rejected.len()
    );
    for r in &report.rejected {
        println!(
            "  rejected record {} (bn9 {:?}): {}",
            r.index + 1,
            r.bn9,
            r.reason
        );
    }
    if !report.linked.is_empty() {
        println!(
            "  linked to registered businesses: {}",
            report.linked.join(", ")
        );
    }
    Ok(())
}

/// Reads a registry file and upserts its records through ImportRegistry
/// (batches of at most 10,000), returning the combined report.
pub async fn import_file(
    settings: SuiteSettings,
    file: &Path,
    endpoint: Option<String>,
) -> anyhow::Result<ImportReport> {
    let records = read_records(file)?;
    let tokens = settings.internal_tokens()?;
    let endpoint = endpoint.unwrap_or_else(|| {
        endpoint_of(
            settings.accounts.server.scheme(),
            settings.accounts.server.facts_listen(),
        )
    });
    let channel = ccp_platform::context::lazy_channel_with(
        &endpoint,
        Duration::from_secs(120),
        &settings.common.upstream,
    )?;
    let mut client = AccountFactsClient::new(channel).max_decoding_message_size(64 << 20);
    let mut accepted = 0;
    let mut linked = Vec::new();
    let mut rejected = Vec::new();
    for (batch_no, batch) in records.chunks(BATCH).enumerate() {
        let mut request = tonic::Request::new(pb::ImportRegistryRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            records: batch.to_vec(),
        });
        let token = tokens.mint("platform:ccp-registry");
        request.metadata_mut().insert(
            ccp_platform::auth::INTERNAL_TOKEN_HEADER,
            token.parse().context("internal token")?,
        );
        let response = client
            .import_registry(request)
            .await
            .with_context(|| format!("ImportRegistry at {endpoint}"))?
            .into_inner();
        accepted += response.accepted;
        linked.extend(response.linked_program_accounts);
        for mut r in response.rejected {
            r.index += i32::try_from(batch_no * BATCH).unwrap_or(i32::MAX);
            rejected.push(r);
        }
    }
    Ok(ImportReport {
        accepted,
        rejected,
        linked,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_rows_are_parsed_with_quotes() {
        let text = "bn9,legal_name,line1,line2,city,province,postal_code,country,program_accounts,known_facts\n\
                    123456782,\"ABC Windows & Doors, Inc.\",1 Main St,,Toronto,ON,M5H 2N2,CA,RM0001=ABC Windows;RM0002=ABC Doors,\"total|AMOUNT|12.50|Total?|Total ?\"\n";
        let records = parse_csv(text).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].legal_name, "ABC Windows & Doors, Inc.");
        assert_eq!(records[0].program_accounts.len(), 2);
        assert_eq!(records[0].known_facts[0].answer, "12.50");
        assert_eq!(
            records[0].known_facts[0].question.as_ref().unwrap().format,
            pb::AnswerFormat::Amount as i32
        );
    }

    #[test]
    fn the_demo_registry_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/registry.json");
        let records = read_records(&path).unwrap();
        assert!(records.iter().any(|r| r.bn9 == "123456782"));
        assert!(records.iter().any(|r| r.bn9 == "888316171"));
        assert_eq!(
            endpoint_of("http", "0.0.0.0:50052"),
            "http://127.0.0.1:50052"
        );
        assert_eq!(
            endpoint_of("https", "[::]:50052"),
            "https://127.0.0.1:50052"
        );
    }
}
