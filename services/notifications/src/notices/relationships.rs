//! Delegation's events: relationship requests received, approved and rejected, relationships
//! ended or expired, and the reminders 30, 7 and 1 days before an expiry.

use ccp_proto::common::v1::{DomainEvent, EventType};

use super::{
    Audience, Notice, Notifier, NotifyError, Outcome, RELATIONSHIP_ENDED, RELATIONSHIP_EXPIRED,
    RELATIONSHIP_EXPIRY_REMINDER, RELATIONSHIP_REQUEST_APPROVED, RELATIONSHIP_REQUEST_RECEIVED,
    RELATIONSHIP_REQUEST_REJECTED, detail, detail_number, expire_date, given,
};

impl Notifier {
    /// A request reached the client (`RELATIONSHIP_REQUEST_SENT` to a registered client,
    /// `RELATIONSHIP_REQUEST_VISIBLE` when it registers): its managers.
    pub(super) async fn request_received(
        &self,
        event: &DomainEvent,
        provider: &str,
        client: &str,
        outcome: &mut Outcome,
    ) -> Result<(), NotifyError> {
        let (client_facts, client_name) = self.business(client).await?;
        if client_facts.managers.is_empty() {
            // Not registered: its managers hear of it when it registers (REQUEST_VISIBLE).
            return Ok(());
        }
        let (_, provider_name) = self.business(provider).await?;
        let notice = Notice {
            kind: RELATIONSHIP_REQUEST_RECEIVED,
            values: vec![
                ("provider", provider),
                ("provider_name", &provider_name),
                ("client", client),
                ("client_name", &client_name),
            ],
            counts: Vec::new(),
        };
        let audience = Audience {
            principals: client_facts.managers,
            about: client_name.clone(),
        };
        self.notify(event, &notice, &[audience], outcome).await
    }

    /// An answer to a request, an end or a reminder: both sides' managers (and, for a
    /// reminder, the provider's employees assigned to the client, whom the event names).
    pub(super) async fn relationship_news(
        &self,
        event: &DomainEvent,
        provider: &str,
        client: &str,
        outcome: &mut Outcome,
    ) -> Result<(), NotifyError> {
        let (provider_facts, provider_name) = self.business(provider).await?;
        let (client_facts, client_name) = self.business(client).await?;
        let mut audiences = vec![
            Audience {
                principals: provider_facts.managers,
                about: provider_name.clone(),
            },
            Audience {
                principals: client_facts.managers,
                about: client_name.clone(),
            },
        ];
        let reason = detail(event, "reject_reason");
        let end_reason = detail(event, "end_reason");
        let note = detail(event, "note");
        let expire = expire_date(&detail(event, "expire_time"));
        let actor_name;
        let mut values = vec![
            ("provider", provider),
            ("provider_name", provider_name.as_str()),
            ("client", client),
            ("client_name", client_name.as_str()),
        ];
        let mut counts = Vec::new();
        let kind = match event.r#type() {
            EventType::RelationshipRequestApproved => RELATIONSHIP_REQUEST_APPROVED,
            EventType::RelationshipRequestRejected => {
                values.push(("reason", &reason));
                RELATIONSHIP_REQUEST_REJECTED
            }
            EventType::RelationshipEnded if end_reason == "EXPIRED" => RELATIONSHIP_EXPIRED,
            EventType::RelationshipEnded => {
                let (side, side_name) = if end_reason == "ENDED_BY_PROVIDER" {
                    ("provider", &provider_name)
                } else {
                    ("client", &client_name)
                };
                // The person who ended it, or their business when they have no profile.
                actor_name = self
                    .person_name(&event.actor)
                    .await?
                    .unwrap_or_else(|| side_name.clone());
                values.extend([
                    ("ended_by_side", side),
                    ("ended_by_name", actor_name.as_str()),
                    ("ended_by_business", side_name.as_str()),
                    ("has_note", given(&note)),
                    ("note", &note),
                ]);
                RELATIONSHIP_ENDED
            }
            EventType::RelationshipExpiryReminder => {
                counts.push(("days", detail_number(event, "days")));
                values.push(("expire_date", &expire));
                // The provider's employees assigned to the client (the event names them).
                audiences.push(Audience {
                    principals: event.principals.clone(),
                    about: provider_name.clone(),
                });
                RELATIONSHIP_EXPIRY_REMINDER
            }
            _ => return Ok(()),
        };
        let notice = Notice {
            kind,
            values,
            counts,
        };
        self.notify(event, &notice, &audiences, outcome).await
    }
}
