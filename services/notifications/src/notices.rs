//! From a domain event to the e-mails it calls for: who receives it, in which language, each
//! message once.
//!
//! Handled so far: a relationship request received (`RELATIONSHIP_REQUEST_SENT` to a registered
//! client, or `RELATIONSHIP_REQUEST_VISIBLE` when the client registers) → the client's business
//! account managers who opted in to e-mail. The other notices of issue 20 are listed in
//! docs/notifications.md.

use std::sync::Arc;

use ccp_platform::clock::Clock;
use ccp_proto::common::v1::{DomainEvent, EventType};
use lettre::message::Mailbox;
use sea_orm::DatabaseConnection;

use crate::directory::Directory;
use crate::mail::{self, MailError, Mailer, Recipient};
use crate::render::Catalogue;
use crate::store;

/// The notice a client's managers get when a provider's relationship request reaches them.
pub const RELATIONSHIP_REQUEST_RECEIVED: &str = "relationship-request-received";

/// What handling one event did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Messages delivered now.
    pub sent: usize,
    /// Messages the ledger says were delivered before (a redelivered event).
    pub already_sent: usize,
    /// Recipients passed over: opted out, no address, an address the mail server refused.
    pub skipped: usize,
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
    mailer: Mailer,
    catalogue: Arc<Catalogue>,
    directory: Arc<dyn Directory>,
    from: Mailbox,
    domain: String,
    clock: Clock,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("mailer", &self.mailer)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
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
        })
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
        match event.r#type() {
            EventType::RelationshipRequestSent | EventType::RelationshipRequestVisible => {
                for pair in &event.pairs {
                    self.request_received(event, &pair.provider, &pair.client, &mut outcome)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(outcome)
    }

    async fn request_received(
        &self,
        event: &DomainEvent,
        provider: &str,
        client: &str,
        outcome: &mut Outcome,
    ) -> Result<(), NotifyError> {
        let client_facts = self
            .directory
            .business(client)
            .await
            .map_err(NotifyError::Directory)?;
        if client_facts.managers.is_empty() {
            // Not registered: its managers hear of it when it registers (REQUEST_VISIBLE).
            return Ok(());
        }
        let provider_facts = self
            .directory
            .business(provider)
            .await
            .map_err(NotifyError::Directory)?;
        let name_or_bn = |name: &str, bn: &str| {
            if name.trim().is_empty() {
                bn.to_owned()
            } else {
                name.to_owned()
            }
        };
        let provider_name = name_or_bn(&provider_facts.name, provider);
        let client_name = name_or_bn(&client_facts.name, client);
        let people = self
            .directory
            .people(&client_facts.managers)
            .await
            .map_err(NotifyError::Directory)?;
        for person in people {
            if !person.email_notifications || person.email.trim().is_empty() {
                outcome.skipped += 1;
                continue;
            }
            let notice = self.catalogue.render(
                RELATIONSHIP_REQUEST_RECEIVED,
                person.language,
                &[
                    ("recipient_name", &person.name),
                    ("provider", provider),
                    ("provider_name", &provider_name),
                    ("client", client),
                    ("client_name", &client_name),
                ],
            )?;
            let to = Recipient {
                principal: person.principal.clone(),
                name: person.name.clone(),
                email: person.email.clone(),
            };
            self.deliver(event, RELATIONSHIP_REQUEST_RECEIVED, &to, &notice, outcome)
                .await?;
        }
        Ok(())
    }

    /// Delivers one message unless the ledger holds it, then records it.
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
        let message = match mail::build(&self.from, to, notice, &id) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(event = %event.id, recipient = %to.principal, error = %err, "notice not sent");
                outcome.skipped += 1;
                return Ok(());
            }
        };
        match self.mailer.send(message).await {
            Ok(()) => {}
            Err(err @ (MailError::Refused(_) | MailError::Invalid(_))) => {
                // A dead-letter list to replay these is still to come (issue 20).
                tracing::warn!(event = %event.id, recipient = %to.principal, error = %err, "notice refused by the mail server");
                outcome.skipped += 1;
                return Ok(());
            }
            Err(err) => return Err(NotifyError::Mail(err)),
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
