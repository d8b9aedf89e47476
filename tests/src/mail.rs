//! The e-mail a world's notifier wrote: each `.eml` file of its mail directory parsed with
//! `mailparse` into the fields the stories assert on.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mailparse::MailHeaderMap as _;

/// One message the notifier wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The `.eml` file.
    pub file: PathBuf,
    /// Every Message-ID header (one in a well-formed message).
    pub message_ids: Vec<String>,
    /// The recipient's address (the one `To` mailbox; lower case).
    pub to: String,
    /// The recipient's display name (empty when none).
    pub to_name: String,
    /// Every `To` mailbox's address (one in a well-formed message).
    pub recipients: Vec<String>,
    /// The subject (decoded).
    pub subject: String,
    /// The `Content-Language` (`en`, `fr`).
    pub language: String,
    /// The plain-text body (decoded).
    pub body: String,
}

impl Mail {
    /// Parses the `.eml` file at `path`.
    pub fn parse(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let mail =
            mailparse::parse_mail(&raw).with_context(|| format!("parse {}", path.display()))?;
        let headers = mail.get_headers();
        let mut recipients = Vec::new();
        let mut to_name = String::new();
        for header in headers.get_all_headers("To") {
            for addr in mailparse::addrparse_header(header)?.iter() {
                match addr {
                    mailparse::MailAddr::Single(single) => {
                        if recipients.is_empty() {
                            to_name = single.display_name.clone().unwrap_or_default();
                        }
                        recipients.push(single.addr.to_lowercase());
                    }
                    mailparse::MailAddr::Group(group) => recipients
                        .extend(group.addrs.iter().map(|single| single.addr.to_lowercase())),
                }
            }
        }
        Ok(Self {
            file: path.to_path_buf(),
            message_ids: headers.get_all_values("Message-ID"),
            to: recipients.first().cloned().unwrap_or_default(),
            to_name,
            recipients,
            subject: headers.get_first_value("Subject").unwrap_or_default(),
            language: headers
                .get_first_value("Content-Language")
                .unwrap_or_default(),
            body: mail.get_body()?,
        })
    }

    /// Returns the one Message-ID (empty when there is not exactly one).
    pub fn message_id(&self) -> &str {
        match self.message_ids.as_slice() {
            [one] => one,
            _ => "",
        }
    }
}

/// Parses every `.eml` file in `dir` (none when it does not exist yet), in file-name order.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<Mail>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("read {}", dir.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files.iter().map(|f| Mail::parse(f)).collect()
}
