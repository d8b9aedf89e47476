//! E-mails: building one message per (event, recipient) with a stable Message-ID, and sending it
//! over SMTP or writing it as an `.eml` file (the embedded default), both with `lettre`.

use std::path::Path;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use sha2::{Digest as _, Sha256};

use crate::render::{Rendered, clean};

/// Returns the Message-ID of the notice of event `event_id` to `recipient` (a principal):
/// the same for the same pair on every replica and after every restart, so a resend after a crash
/// mid-send is recognisable as the same message, and different for any other pair.
pub fn message_id(event_id: &str, recipient: &str, domain: &str) -> String {
    let digest = Sha256::digest(format!("{event_id}\n{recipient}").as_bytes());
    format!("<{}@{domain}>", hex::encode(&digest[..16]))
}

/// Why a message could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address or a header is not acceptable (a bad recipient address above all); retrying
    /// cannot help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The mail server refused the message for good (a 5xx answer).
    #[error("mail refused: {0}")]
    Refused(String),
    /// The mail server could not be reached or answered with a transient error; retry later.
    #[error("mail unavailable: {0}")]
    Unavailable(String),
}

/// One recipient of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The principal (`person:<uuid>`), part of the Message-ID.
    pub principal: String,
    /// Display name (cleaned before use).
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// Builds the message of `notice` to `to` from `from`, with the given Message-ID.
pub fn build(
    from: &Mailbox,
    to: &Recipient,
    notice: &Rendered,
    message_id: &str,
) -> Result<Message, MailError> {
    let address = to
        .email
        .trim()
        .parse()
        .map_err(|e| MailError::Invalid(format!("recipient address: {e}")))?;
    let name = clean(&to.name);
    let mailbox = Mailbox::new((!name.is_empty()).then_some(name), address);
    Message::builder()
        .message_id(Some(message_id.to_owned()))
        .from(from.clone())
        .to(mailbox)
        .subject(notice.subject.clone())
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            notice.language.tag().to_owned(),
        ))
        .header(ContentType::TEXT_PLAIN)
        .body(notice.body.clone())
        .map_err(|e| MailError::Invalid(e.to_string()))
}

/// Returns the envelope of a message from `from` to `address` (a dead letter's, sent again).
pub fn envelope(from: &Mailbox, address: &str) -> Result<Envelope, MailError> {
    let to = address
        .trim()
        .parse()
        .map_err(|e| MailError::Invalid(format!("recipient address: {e}")))?;
    Envelope::new(Some(from.email.clone()), vec![to]).map_err(|e| MailError::Invalid(e.to_string()))
}

/// Where messages go: an SMTP server, or `.eml` files in a directory.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP server (`smtp://`, `smtps://`, STARTTLS with `?tls=required`; user and password
    /// in the URL).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message in a directory (the embedded mode; `ccp mail` lists them).
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Smtp(_) => "Mailer::Smtp",
            Self::Files(_) => "Mailer::Files",
        })
    }
}

impl Mailer {
    /// Returns a mailer sending to the SMTP server at `url`, giving up on a command after
    /// `timeout`. Fails on a malformed URL.
    pub fn smtp(url: &str, timeout: Duration) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Invalid(format!("smtp url: {e}")))?
            .timeout(Some(timeout))
            .build();
        Ok(Self::Smtp(transport))
    }

    /// Returns a mailer writing each message as an `.eml` file into `dir` (created if missing).
    pub fn files(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self::Files(AsyncFileTransport::<Tokio1Executor>::new(dir)))
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        self.send_raw(message.envelope(), &message.formatted())
            .await
    }

    /// Sends a message already built (`raw`, as [`Message::formatted`] made it) to the
    /// envelope's recipients: a dead letter is sent again this way, byte for byte.
    pub async fn send_raw(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), MailError> {
        match self {
            Self::Smtp(transport) => match transport.send_raw(envelope, raw).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(MailError::Refused(e.to_string())),
                Err(e) => Err(MailError::Unavailable(e.to_string())),
            },
            Self::Files(transport) => transport
                .send_raw(envelope, raw)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::render::Language;

    #[test]
    fn message_ids_are_stable_per_event_and_recipient() {
        let a = message_id("e1", "person:a", "ccp.example");
        assert_eq!(a, message_id("e1", "person:a", "ccp.example"));
        assert_ne!(a, message_id("e1", "person:b", "ccp.example"));
        assert_ne!(a, message_id("e2", "person:a", "ccp.example"));
        assert!(a.starts_with('<') && a.ends_with("@ccp.example>"), "{a}");
    }

    #[test]
    fn an_address_with_a_line_break_is_refused() {
        let notice = Rendered {
            subject: "s".into(),
            body: "b".into(),
            language: Language::Fr,
        };
        let from: Mailbox = "CCP <noreply@ccp.example>".parse().unwrap();
        let to = Recipient {
            principal: "person:a".into(),
            name: "A".into(),
            email: "a@example.com\r\nBcc: b@example.com".into(),
        };
        assert!(matches!(
            build(&from, &to, &notice, "<x@y>"),
            Err(MailError::Invalid(_))
        ));
        let to = Recipient {
            email: "a@example.com".into(),
            name: "Evil\r\nBcc: b@example.com".into(),
            ..to
        };
        let raw =
            String::from_utf8(build(&from, &to, &notice, "<x@y>").unwrap().formatted()).unwrap();
        assert!(!raw.contains("\nBcc:"), "{raw}");
        assert!(raw.contains("Content-Language: fr\r\n"), "{raw}");
        assert!(raw.contains("Message-ID: <x@y>\r\n"), "{raw}");
    }
}
