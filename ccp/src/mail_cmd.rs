//! `ccp mail`: the e-mails `ccp up` wrote as `.eml` files (no SMTP server configured) under
//! `<data_dir>/mail` (`notifications.mail_dir`): a list, newest last (time, to, subject,
//! Message-ID), and `ccp mail show <n|message-id>` for one. Parsed with `mailparse`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mailparse::MailHeaderMap as _;
use serde::Serialize;

/// One `.eml` file, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailEntry {
    /// Its place in the list, from 1 (oldest first).
    pub number: usize,
    /// Its `Date`, RFC 3339 in UTC (empty when it has none that parses).
    pub time: String,
    /// Its `From`.
    pub from: String,
    /// Its `To`.
    pub to: String,
    /// Its `Subject` (decoded).
    pub subject: String,
    /// Its `Message-ID`.
    pub message_id: String,
    /// The file.
    pub file: PathBuf,
    #[serde(skip)]
    epoch: i64,
}

/// Returns the mail directory of the suite: `notifications.mail_dir` when configured, else
/// `<data_dir>/mail`.
pub fn mail_dir(configured: &str, data_dir: &Path) -> PathBuf {
    if configured.is_empty() {
        data_dir.join("mail")
    } else {
        PathBuf::from(configured)
    }
}

/// Reads every `.eml` file in `dir`, oldest first (by `Date`, then file name), numbered from 1.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<MailEntry>> {
    let files = std::fs::read_dir(dir).with_context(|| {
        format!(
            "no mail directory at {} (`ccp up` writes each e-mail there as an .eml file when no \
             SMTP server is configured)",
            dir.display()
        )
    })?;
    let mut entries = Vec::new();
    for file in files {
        let path = file?.path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let (headers, _) = mailparse::parse_headers(&raw)
            .with_context(|| format!("{} is not an e-mail", path.display()))?;
        let get = |name: &str| headers.get_first_value(name).unwrap_or_default();
        let epoch = mailparse::dateparse(&get("Date")).unwrap_or(i64::MIN);
        entries.push(MailEntry {
            number: 0,
            time: chrono::DateTime::from_timestamp(epoch, 0)
                .filter(|_| epoch != i64::MIN)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default(),
            from: get("From"),
            to: get("To"),
            subject: get("Subject"),
            message_id: get("Message-ID"),
            file: path,
            epoch,
        });
    }
    entries.sort_by(|a, b| (a.epoch, &a.file).cmp(&(b.epoch, &b.file)));
    for (i, entry) in entries.iter_mut().enumerate() {
        entry.number = i + 1;
    }
    Ok(entries)
}

/// Returns the entry `key` names: its number in the list, or its Message-ID (with or without
/// angle brackets).
pub fn find<'a>(entries: &'a [MailEntry], key: &str) -> anyhow::Result<&'a MailEntry> {
    let key = key.trim();
    if let Ok(n) = key.parse::<usize>() {
        return entries.get(n.wrapping_sub(1)).with_context(|| {
            format!(
                "no e-mail number {n}: there are {} (see `ccp mail`)",
                entries.len()
            )
        });
    }
    let bare = |id: &str| {
        id.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    };
    entries
        .iter()
        .find(|e| bare(&e.message_id) == bare(key))
        .with_context(|| format!("no e-mail has Message-ID {key} (see `ccp mail`)"))
}

/// Returns one e-mail as `ccp mail show` prints it: its main headers, a blank line and its
/// text (decoded from its transfer encoding and charset).
pub fn show(entry: &MailEntry) -> anyhow::Result<String> {
    let raw =
        std::fs::read(&entry.file).with_context(|| format!("reading {}", entry.file.display()))?;
    let mail = mailparse::parse_mail(&raw)
        .with_context(|| format!("{} is not an e-mail", entry.file.display()))?;
    let body = mail
        .get_body()
        .with_context(|| format!("{}: the text does not decode", entry.file.display()))?;
    let mut out = String::new();
    for (name, value) in [
        ("Date", mail.headers.get_first_value("Date")),
        ("From", Some(entry.from.clone())),
        ("To", Some(entry.to.clone())),
        ("Subject", Some(entry.subject.clone())),
        ("Message-ID", Some(entry.message_id.clone())),
        (
            "Content-Language",
            mail.headers.get_first_value("Content-Language"),
        ),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push_str(&format!("{name}: {value}\n"));
        }
    }
    out.push('\n');
    // Lines as the terminal's: the message's CRLF line ends become LF.
    out.push_str(body.replace("\r\n", "\n").trim_end());
    out.push('\n');
    Ok(out)
}

/// Prints the list as a table (or JSON).
pub fn print_list(entries: &[MailEntry], json: bool) {
    if json {
        crate::client::output::print_json(&serde_json::to_value(entries).unwrap_or_default());
        return;
    }
    let mut table =
        crate::client::output::Table::new(&["#", "TIME", "TO", "SUBJECT", "MESSAGE-ID"]);
    for e in entries {
        table.row(vec![
            e.number.to_string(),
            e.time.clone(),
            e.to.clone(),
            e.subject.clone(),
            e.message_id.clone(),
        ]);
    }
    table.print();
}
