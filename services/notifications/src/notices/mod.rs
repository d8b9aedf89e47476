//! From a domain event to the e-mails it calls for: who receives it, in which language, each
//! message once.
//!
//! Delegation's events (`relationships`): a relationship request received, approved or rejected,
//! a relationship ended or expired, an expiry reminder. Accounts' events (`employees`): an
//! employee access request received, approved or rejected. Identity's events (`credentials`): a
//! machine credential expiring within 30 days. The table of notices and recipients is in
//! docs/notifications.md.

mod credentials;
mod employees;
mod relationships;

use std::sync::Arc;
use std::time::Duration;

use ccp_platform::clock::Clock;
use ccp_proto::common::v1::{DomainEvent, EventType};
use lettre::message::Mailbox;
use sea_orm::DatabaseConnection;

use crate::dead_letters::Failing;
use crate::directory::Directory;
use crate::mail::{self, MailError, Mailer, Recipient};
use crate::render::Catalogue;
use crate::store;

/// The notice a client's managers get when a provider's relationship request reaches them.
pub const RELATIONSHIP_REQUEST_RECEIVED: &str = "relationship-request-received";
/// Both sides' managers: the client approved a request; the relationship began.
pub const RELATIONSHIP_REQUEST_APPROVED: &str = "relationship-request-approved";
/// Both sides' managers: the client rejected a request (with its reason).
pub const RELATIONSHIP_REQUEST_REJECTED: &str = "relationship-request-rejected";
/// Both sides' managers: one side ended the relationship (who, and their note).
pub const RELATIONSHIP_ENDED: &str = "relationship-ended";
/// Both sides' managers: the relationship reached its expiry.
pub const RELATIONSHIP_EXPIRED: &str = "relationship-expired";
/// Both sides' managers and the provider's assigned employees: 30, 7 or 1 days to expiry.
pub const RELATIONSHIP_EXPIRY_REMINDER: &str = "relationship-expiry-reminder";
/// The business's managers and its programs' managers: a person asked to join it.
pub const EMPLOYEE_REQUEST_RECEIVED: &str = "employee-request-received";
/// The requester: their request to join a business was approved.
pub const EMPLOYEE_REQUEST_APPROVED: &str = "employee-request-approved";
/// The requester: their request was rejected (with the reason).
pub const EMPLOYEE_REQUEST_REJECTED: &str = "employee-request-rejected";
/// The business's managers: one of its machine credentials expires within 30 days.
pub const CREDENTIAL_EXPIRY_REMINDER: &str = "credential-expiry-reminder";

/// Every notice, each a `<id>-subject` and `<id>-body` in every language's catalogue, and each a
/// kind people choose to receive or not ([`ccp_types::NOTICE_KINDS`], the same list).
pub const ALL: [&str; 10] = [
    RELATIONSHIP_REQUEST_RECEIVED,
    RELATIONSHIP_REQUEST_APPROVED,
    RELATIONSHIP_REQUEST_REJECTED,
    RELATIONSHIP_ENDED,
    RELATIONSHIP_EXPIRED,
    RELATIONSHIP_EXPIRY_REMINDER,
    EMPLOYEE_REQUEST_RECEIVED,
    EMPLOYEE_REQUEST_APPROVED,
    EMPLOYEE_REQUEST_REJECTED,
    CREDENTIAL_EXPIRY_REMINDER,
];

/// What handling one event did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Messages delivered now.
    pub sent: usize,
    /// Messages the ledger says were delivered before (a redelivered event).
    pub already_sent: usize,
    /// Recipients passed over: opted out (of e-mail, or of this kind of notice), no address, an
    /// address that is not one, a message already a dead letter (a redelivered event).
    pub skipped: usize,
    /// Messages given up on now (refused for good, or not taken within `give_up_after`): each
    /// is a dead letter an operator can list and replay.
    pub failed: usize,
}

/// Why an event could not be handled now; it is handled again later (its messages already
/// delivered are not sent again).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The directory (accounts, identity) did not answer.
    #[error("directory: {0}")]
    Directory(anyhow::Error),
    /// The mail server could not be reached.
    #[error("{0}")]
    Mail(MailError),
    /// The database did not answer.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A notice could not be rendered (a catalogue defect).
    #[error("{0}")]
    Render(#[from] crate::render::RenderError),
}

/// Sends the notices events call for; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    db: DatabaseConnection,
    pub(crate) mailer: Mailer,
    catalogue: Arc<Catalogue>,
    directory: Arc<dyn Directory>,
    pub(crate) from: Mailbox,
    domain: String,
    pub(crate) clock: Clock,
    /// How long a message the mail server does not take is retried before it is given up on.
    pub(crate) give_up_after: Duration,
    /// How long a consumer's lease on its stream lasts.
    pub(crate) lease: Duration,
    /// The messages failing now (shared by the clones: the consumers of every stream).
    pub(crate) failing: Arc<std::sync::Mutex<Failing>>,
    /// This notifier's id as a lease holder (random, one per [`Notifier::new`]).
    pub(crate) holder: Arc<str>,
    /// The leases it took (the consumers' names), given up at shutdown.
    pub(crate) held: Arc<std::sync::Mutex<Vec<&'static str>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("mailer", &self.mailer)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Who receives a notice: `principals`, told it is about the business named `about` (the
/// side they are on), in the order given; a principal in two audiences gets one message.
pub(crate) struct Audience {
    /// `person:<uuid>` principals (others are ignored).
    pub principals: Vec<String>,
    /// The name of the business the notice concerns them through.
    pub about: String,
}

/// What one notice says: its id in the catalogues, its values and its counts (numbers Fluent
/// may select on, like the days of a reminder).
pub(crate) struct Notice<'a> {
    pub kind: &'static str,
    pub values: Vec<(&'a str, &'a str)>,
    pub counts: Vec<(&'a str, i64)>,
}

impl Notifier {
    /// Returns a notifier sending from `from` through `mailer`, recording deliveries in `db`;
    /// Message-IDs end in `@<domain>`.
    pub fn new(
        db: DatabaseConnection,
        mailer: Mailer,
        directory: Arc<dyn Directory>,
        from: Mailbox,
        domain: String,
        clock: Clock,
    ) -> Result<Self, NotifyError> {
        Ok(Self {
            db,
            mailer,
            catalogue: Arc::new(Catalogue::builtin()?),
            directory,
            from,
            domain,
            clock,
            give_up_after: Duration::from_secs(86_400),
            lease: Duration::from_secs(30),
            failing: Arc::default(),
            holder: uuid::Uuid::new_v4().to_string().into(),
            held: Arc::default(),
        })
    }

    /// Returns this notifier giving up on a message the mail server does not take (unreachable,
    /// a 4xx answer) after `after` (default a day): it becomes a dead letter and the consumer
    /// moves on.
    pub fn give_up_after(mut self, after: Duration) -> Self {
        self.give_up_after = after;
        self
    }

    /// Returns this notifier's consumers holding their streams' leases for `length` (default
    /// 30 s), renewed each third.
    pub fn lease(mut self, length: Duration) -> Self {
        self.lease = length;
        self
    }

    /// Returns the service's database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Sends what `event` calls for, each message once: a message the ledger holds is not sent
    /// again. Fails (to be retried) when the directory, the mail server or the database does not
    /// answer; what was delivered before the failure stays recorded.
    pub async fn handle(&self, event: &DomainEvent) -> Result<Outcome, NotifyError> {
        let mut outcome = Outcome::default();
        let o = &mut outcome;
        match event.r#type() {
            EventType::RelationshipRequestSent | EventType::RelationshipRequestVisible => {
                for pair in &event.pairs {
                    self.request_received(event, &pair.provider, &pair.client, o)
                        .await?;
                }
            }
            EventType::RelationshipRequestApproved
            | EventType::RelationshipRequestRejected
            | EventType::RelationshipEnded
            | EventType::RelationshipExpiryReminder => {
                for pair in &event.pairs {
                    self.relationship_news(event, &pair.provider, &pair.client, o)
                        .await?;
                }
            }
            EventType::EmployeeRequestCreated => self.employee_request_received(event, o).await?,
            EventType::EmployeeRequestApproved | EventType::EmployeeRequestRejected => {
                self.employee_request_decided(event, o).await?;
            }
            EventType::CredentialExpiryReminder => self.credential_expiry(event, o).await?,
            _ => {}
        }
        Ok(outcome)
    }

    /// Returns the business `bn`'s facts and the name to call it by (its BN when it has no
    /// legal name).
    pub(crate) async fn business(
        &self,
        bn: &str,
    ) -> Result<(crate::directory::Business, String), NotifyError> {
        let facts = self
            .directory
            .business(bn)
            .await
            .map_err(NotifyError::Directory)?;
        let name = if facts.name.trim().is_empty() {
            bn.to_owned()
        } else {
            facts.name.clone()
        };
        Ok((facts, name))
    }

    /// Returns the legal name of the person `principal`, or `None` when it has no profile (a
    /// machine credential, `system`).
    pub(crate) async fn person_name(&self, principal: &str) -> Result<Option<String>, NotifyError> {
        if !principal.starts_with("person:") {
            return Ok(None);
        }
        let people = self
            .directory
            .people(&[principal.to_owned()])
            .await
            .map_err(NotifyError::Directory)?;
        Ok(people
            .into_iter()
            .find(|p| p.principal == principal)
            .map(|p| p.name))
    }

    /// Sends `notice` to every person of `audiences` who wants its kind (their choice for it,
    /// else their opt-in) and has an address, in their language, with `recipient_name` and `recipient_business` added to its values.
    pub(crate) async fn notify(
        &self,
        event: &DomainEvent,
        notice: &Notice<'_>,
        audiences: &[Audience],
        outcome: &mut Outcome,
    ) -> Result<(), NotifyError> {
        let mut order: Vec<(&str, &str)> = Vec::new();
        for audience in audiences {
            for principal in &audience.principals {
                if !order.iter().any(|(p, _)| p == principal) {
                    order.push((principal, &audience.about));
                }
            }
        }
        if order.is_empty() {
            return Ok(());
        }
        let principals: Vec<String> = order.iter().map(|(p, _)| (*p).to_owned()).collect();
        let people = self
            .directory
            .people(&principals)
            .await
            .map_err(NotifyError::Directory)?;
        for (principal, about) in order {
            let Some(person) = people.iter().find(|p| p.principal == principal) else {
                continue;
            };
            if !person.wants(notice.kind) || person.email.trim().is_empty() {
                outcome.skipped += 1;
                continue;
            }
            let mut values = notice.values.clone();
            values.push(("recipient_name", &person.name));
            values.push(("recipient_business", about));
            let rendered = self.catalogue.render_counted(
                notice.kind,
                person.language,
                &values,
                &notice.counts,
            )?;
            let to = Recipient {
                principal: person.principal.clone(),
                name: person.name.clone(),
                email: person.email.clone(),
            };
            self.deliver(event, notice.kind, &to, &rendered, outcome)
                .await?;
        }
        Ok(())
    }

    /// Delivers one message unless the ledger or the dead letters hold it, then records it. A
    /// message the mail server refuses for good becomes a dead letter at once; one it does not
    /// take now fails the event (retried with backoff) until `give_up_after`, then becomes one.
    async fn deliver(
        &self,
        event: &DomainEvent,
        kind: &str,
        to: &Recipient,
        notice: &crate::render::Rendered,
        outcome: &mut Outcome,
    ) -> Result<(), NotifyError> {
        let id = mail::message_id(&event.id, &to.principal, &self.domain);
        if store::was_sent(&self.db, &id).await? {
            outcome.already_sent += 1;
            return Ok(());
        }
        if store::is_dead_letter(&self.db, &id).await? {
            // Given up on before: only an operator's replay sends it again.
            outcome.skipped += 1;
            return Ok(());
        }
        let message = match mail::build(&self.from, to, notice, &id) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(event = %event.id, recipient = %to.principal, error = %err, "notice not sent");
                outcome.skipped += 1;
                return Ok(());
            }
        };
        let raw = message.formatted();
        match self.mailer.send_raw(message.envelope(), &raw).await {
            Ok(()) => self.delivered(&id),
            Err(err) => {
                let letter = crate::dead_letters::Letter {
                    message_id: &id,
                    event_id: &event.id,
                    recipient: to,
                    notice: kind,
                    raw: &raw,
                };
                // Err (the event is retried) until the message is given up on.
                self.give_up_or_retry(letter, err).await?;
                outcome.failed += 1;
                return Ok(());
            }
        }
        // A crash right here resends the same Message-ID on restart (at least once).
        store::record_sent(
            &self.db,
            &id,
            &event.id,
            &to.principal,
            kind,
            self.clock.now(),
        )
        .await?;
        outcome.sent += 1;
        Ok(())
    }
}

/// Returns the text of `key` in the event's `details_json` (empty when absent or not text).
pub(crate) fn detail(event: &DomainEvent, key: &str) -> String {
    serde_json::from_str::<serde_json::Value>(&event.details_json)
        .ok()
        .and_then(|v| v.get(key).and_then(|x| x.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// Returns the texts of the list `key` in the event's `details_json` (empty when absent).
pub(crate) fn detail_list(event: &DomainEvent, key: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(&event.details_json)
        .ok()
        .and_then(|v| {
            v.get(key).and_then(|x| x.as_array()).map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Returns the date part (`YYYY-MM-DD`, UTC) of an RFC 3339 instant, or the text as given.
pub(crate) fn expire_date(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// Returns the number `key` in the event's `details_json` (0 when absent or not a number).
pub(crate) fn detail_number(event: &DomainEvent, key: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(&event.details_json)
        .ok()
        .and_then(|v| v.get(key).and_then(serde_json::Value::as_i64))
        .unwrap_or(0)
}

/// Returns `yes` when `text` has something to show, else `no` (a Fluent selector).
pub(crate) fn given(text: &str) -> &'static str {
    if text.trim().is_empty() { "no" } else { "yes" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::render::Language;

    #[test]
    fn every_notice_renders_in_both_languages_and_reminders_count_their_days() {
        let catalogue = Catalogue::builtin().unwrap();
        let values = [
            ("recipient_name", "Alex"),
            ("recipient_business", "Imports Ltd."),
            ("provider", "123456789"),
            ("provider_name", "Brokers Inc."),
            ("client", "987654321"),
            ("client_name", "Imports Ltd."),
            ("reason", "no"),
            ("ended_by_side", "provider"),
            ("ended_by_name", "Bo"),
            ("ended_by_business", "Brokers Inc."),
            ("has_note", "yes"),
            ("note", "bye"),
            ("expire_date", "2027-01-15"),
            ("business", "987654321"),
            ("business_name", "Imports Ltd."),
            ("requester_name", "Rita"),
            ("credential_name", "ITN sync"),
        ];
        for kind in ALL {
            let en = catalogue
                .render_counted(kind, Language::En, &values, &[("days", 7)])
                .unwrap();
            let fr = catalogue
                .render_counted(kind, Language::Fr, &values, &[("days", 7)])
                .unwrap();
            assert_ne!(en.subject, fr.subject, "{kind}");
            assert!(en.body.starts_with("Hello Alex,"), "{kind}: {}", en.body);
            assert!(fr.body.starts_with("Bonjour Alex,"), "{kind}: {}", fr.body);
            assert!(en.body.contains("Imports Ltd."), "{kind}: {}", en.body);
        }
        let remind = |days| {
            catalogue
                .render_counted(
                    RELATIONSHIP_EXPIRY_REMINDER,
                    Language::En,
                    &values,
                    &[("days", days)],
                )
                .unwrap()
                .subject
        };
        assert!(remind(1).ends_with("expires tomorrow"), "{}", remind(1));
        assert!(remind(7).ends_with("expires in 7 days"), "{}", remind(7));
        // A note's absence is said, not shown empty.
        let mut without = values;
        without[10] = ("has_note", "no");
        let fr = catalogue
            .render(RELATIONSHIP_ENDED, Language::Fr, &without)
            .unwrap();
        assert!(fr.body.contains("Aucune note"), "{}", fr.body);
        assert!(!fr.body.contains("Sa note"), "{}", fr.body);
        let credential = catalogue
            .render_counted(
                CREDENTIAL_EXPIRY_REMINDER,
                Language::Fr,
                &values,
                &[("days", 30)],
            )
            .unwrap();
        assert!(
            credential.subject.contains("ITN sync") && credential.subject.ends_with("30 jours"),
            "{}",
            credential.subject
        );
        assert!(
            credential.body.contains("2027-01-15"),
            "{}",
            credential.body
        );
    }

    #[test]
    fn the_notices_are_the_kinds_people_choose_among() {
        assert_eq!(ALL, ccp_types::NOTICE_KINDS);
    }
}
