//! Dead letters: messages the notifier gave up on, kept exactly as built (same Message-ID) so
//! an operator can list them and send them again (`ccp notifications failed|retry`).
//!
//! A message the mail server refuses for good (a 5xx answer) is a dead letter at once. One it
//! does not take now (unreachable, a 4xx answer) fails its event, which the consumer retries
//! with backoff, until `give_up_after` has passed since the message first failed, or since the
//! mail server last took anything (so a long outage does not hold each later message up for a
//! whole `give_up_after` of its own); then it is a dead letter and the consumer moves on. Those
//! instants are this process's (a restart gives a message a new `give_up_after`): kept in
//! memory, since only the process retrying the event needs them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::DbErr;

use crate::Notifier;
use crate::mail::{self, MailError, Recipient};
use crate::notices::NotifyError;
use crate::store::{self, DeadLetter};

/// The most messages remembered as failing; past it, those failing for longer than twice
/// `give_up_after` (their events were handled elsewhere, by another replica) are forgotten.
const MAX_FAILING: usize = 10_000;

/// The messages failing now and since when the mail server has taken nothing.
#[derive(Debug, Default)]
pub struct Failing {
    /// Since when the mail server has taken nothing; None once it took a message.
    down_since: Option<DateTime<Utc>>,
    /// Each failing message's first failure and attempts.
    messages: HashMap<String, (DateTime<Utc>, i64)>,
}

/// A message that could not be delivered, as [`Notifier::give_up_or_retry`] needs it.
pub(crate) struct Letter<'a> {
    pub message_id: &'a str,
    pub event_id: &'a str,
    pub recipient: &'a Recipient,
    pub notice: &'a str,
    /// The message as built ([`lettre::Message::formatted`]).
    pub raw: &'a [u8],
}

/// What sending a dead letter again did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// Delivered now: recorded as sent, no longer a dead letter.
    Sent,
    /// The ledger already held it: nothing sent, no longer a dead letter.
    AlreadySent,
}

/// Why a dead letter could not be sent again.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No dead letter has that Message-ID.
    #[error("no failed notice has Message-ID {0}")]
    NotFound(String),
    /// The mail server did not take it (it stays a dead letter, its attempt counted).
    #[error("{0}")]
    Mail(MailError),
    /// The database did not answer.
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

/// What sending every dead letter again did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Delivered now.
    pub sent: usize,
    /// Already sent before.
    pub already_sent: usize,
    /// Failed again.
    pub failed: usize,
    /// The last error of those that failed again.
    pub last_error: String,
}

/// Returns `id` in angle brackets, as Message-IDs are kept (`<…@…>`), trimmed.
pub fn normalise_message_id(id: &str) -> String {
    let id = id.trim();
    if id.starts_with('<') && id.ends_with('>') {
        id.to_owned()
    } else {
        format!("<{}>", id.trim_start_matches('<').trim_end_matches('>'))
    }
}

impl Notifier {
    fn failing(&self) -> std::sync::MutexGuard<'_, Failing> {
        // A panic while holding this lock leaves plain data behind: keep using it.
        self.failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that the mail server took message `id`.
    pub(crate) fn delivered(&self, id: &str) {
        let mut failing = self.failing();
        failing.down_since = None;
        failing.messages.remove(id);
    }

    /// Decides what becomes of a message the mail server did not take: Ok once it is a dead
    /// letter (refused for good, or failing for `give_up_after`), else the error, so that its
    /// event is retried.
    pub(crate) async fn give_up_or_retry(
        &self,
        letter: Letter<'_>,
        err: MailError,
    ) -> Result<(), NotifyError> {
        let now = self.clock.now();
        let give_up_after =
            chrono::Duration::from_std(self.give_up_after).unwrap_or(chrono::Duration::MAX);
        let (first, attempts, give_up) = {
            let mut failing = self.failing();
            if failing.messages.len() >= MAX_FAILING {
                failing
                    .messages
                    .retain(|_, (first, _)| now - *first < give_up_after * 2);
            }
            let entry = failing
                .messages
                .entry(letter.message_id.to_owned())
                .or_insert((now, 0));
            entry.1 += 1;
            let (first, attempts) = *entry;
            let give_up = match err {
                // The server answered: it is up, and this message will never do.
                MailError::Refused(_) | MailError::Invalid(_) => {
                    failing.down_since = None;
                    true
                }
                MailError::Unavailable(_) => {
                    let down = *failing.down_since.get_or_insert(now);
                    now - first.min(down) >= give_up_after
                }
            };
            if give_up {
                failing.messages.remove(letter.message_id);
            }
            (first, attempts, give_up)
        };
        if !give_up {
            return Err(NotifyError::Mail(err));
        }
        tracing::warn!(
            event = %letter.event_id,
            recipient = %letter.recipient.principal,
            message_id = %letter.message_id,
            attempts,
            error = %err,
            "notice given up on: a dead letter (`ccp notifications failed`)"
        );
        store::record_dead_letter(
            &self.db().clone(),
            &DeadLetter {
                message_id: letter.message_id.to_owned(),
                event_id: letter.event_id.to_owned(),
                recipient: letter.recipient.principal.clone(),
                address: letter.recipient.email.trim().to_owned(),
                notice: letter.notice.to_owned(),
                // lettre writes headers and a transfer-encoded body: ASCII, never lossy here.
                message: String::from_utf8_lossy(letter.raw).into_owned(),
                error: err.to_string(),
                attempts,
                first_failed: first,
                last_failed: now,
            },
        )
        .await?;
        Ok(())
    }

    /// Returns at most `limit` dead letters by first failure then Message-ID, after the one
    /// whose [`DeadLetter::page_key`] is `after`.
    pub async fn failed_notices(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<DeadLetter>, DbErr> {
        store::dead_letters(self.db(), after, limit).await
    }

    /// Sends the dead letter `message_id` (with or without angle brackets) again, as it was
    /// built; see [`Replayed`] and [`ReplayError`].
    pub async fn retry_failed(&self, message_id: &str) -> Result<Replayed, ReplayError> {
        let id = normalise_message_id(message_id);
        let Some(letter) = store::dead_letter(self.db(), &id).await? else {
            return Err(ReplayError::NotFound(id));
        };
        self.resend(letter).await
    }

    /// Sends every dead letter again (those there when it starts), one by one.
    pub async fn retry_all_failed(&self) -> Result<ReplayReport, DbErr> {
        let mut report = ReplayReport::default();
        let mut after: Option<String> = None;
        let mut letters = Vec::new();
        // Bounded: the keyset walk ends at the last dead letter.
        loop {
            let page = store::dead_letters(self.db(), after.as_deref(), 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.page_key());
            letters.extend(page);
        }
        for letter in letters {
            match self.resend(letter).await {
                Ok(Replayed::Sent) => report.sent += 1,
                Ok(Replayed::AlreadySent) => report.already_sent += 1,
                // Replayed by another call meanwhile.
                Err(ReplayError::NotFound(_)) => {}
                Err(ReplayError::Mail(err)) => {
                    report.failed += 1;
                    report.last_error = err.to_string();
                }
                Err(ReplayError::Database(err)) => return Err(err),
            }
        }
        Ok(report)
    }

    /// Sends `letter` again unless the ledger holds it; delivered, it is recorded as sent and
    /// removed; failed, its attempt is counted.
    async fn resend(&self, letter: DeadLetter) -> Result<Replayed, ReplayError> {
        let db = self.db();
        let id = letter.message_id.clone();
        if store::was_sent(db, &id).await? {
            store::remove_dead_letter(db, &id).await?;
            return Ok(Replayed::AlreadySent);
        }
        let sent = match mail::envelope(&self.from, &letter.address) {
            Ok(envelope) => {
                self.mailer
                    .send_raw(&envelope, letter.message.as_bytes())
                    .await
            }
            Err(err) => Err(err),
        };
        let now = self.clock.now();
        match sent {
            Ok(()) => {
                self.delivered(&id);
                // A crash between these two leaves a dead letter the ledger holds: the next
                // replay finds it sent and removes it.
                store::record_sent(
                    db,
                    &id,
                    &letter.event_id,
                    &letter.recipient,
                    &letter.notice,
                    now,
                )
                .await?;
                store::remove_dead_letter(db, &id).await?;
                tracing::info!(message_id = %id, "failed notice delivered on replay");
                Ok(Replayed::Sent)
            }
            Err(err) => {
                store::record_dead_letter(
                    db,
                    &DeadLetter {
                        error: err.to_string(),
                        attempts: 1,
                        last_failed: now,
                        ..letter
                    },
                )
                .await?;
                Err(ReplayError::Mail(err))
            }
        }
    }
}

/// Returns the subject of a kept message (decoded), empty when it has none.
pub fn subject_of(message: &str) -> String {
    use mailparse::MailHeaderMap as _;
    mailparse::parse_headers(message.as_bytes())
        .ok()
        .and_then(|(headers, _)| headers.get_first_value("Subject"))
        .unwrap_or_default()
}
