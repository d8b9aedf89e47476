//! Accounts' events: a person's request to join a business as an employee, received (its
//! managers and its programs' managers) and answered (the requester).

use ccp_proto::common::v1::{DomainEvent, EventType};

use super::{
    Audience, EMPLOYEE_REQUEST_APPROVED, EMPLOYEE_REQUEST_RECEIVED, EMPLOYEE_REQUEST_REJECTED,
    Notice, Notifier, NotifyError, Outcome, detail, detail_list, given,
};

/// Returns the BN9 of the business an employee request event is about: from its subject
/// (`businesses/<bn9>/employeeRequests/<id>`), else the one business it names.
fn business_of(event: &DomainEvent) -> Option<String> {
    event
        .subject
        .strip_prefix("businesses/")
        .and_then(|rest| rest.split('/').next())
        .filter(|bn| !bn.is_empty())
        .map(str::to_owned)
        .or_else(|| event.businesses.first().cloned())
}

/// Returns the requester an employee request event names (its one principal).
fn requester_of(event: &DomainEvent) -> Option<&str> {
    event
        .principals
        .iter()
        .find(|p| p.starts_with("person:"))
        .map(String::as_str)
}

impl Notifier {
    /// `EMPLOYEE_REQUEST_CREATED`: the business's managers, and the managers of its programs
    /// (the request names no program, so all of them are concerned; accounts lists them in the
    /// event's `program_managers`).
    pub(super) async fn employee_request_received(
        &self,
        event: &DomainEvent,
        outcome: &mut Outcome,
    ) -> Result<(), NotifyError> {
        let (Some(bn), Some(requester)) = (business_of(event), requester_of(event)) else {
            tracing::warn!(event = %event.id, "employee request event without business or requester");
            return Ok(());
        };
        let (facts, business_name) = self.business(&bn).await?;
        let requester_name = self
            .person_name(requester)
            .await?
            .unwrap_or_else(|| requester.to_owned());
        let note = detail(event, "note");
        let notice = Notice {
            kind: EMPLOYEE_REQUEST_RECEIVED,
            values: vec![
                ("business", &bn),
                ("business_name", &business_name),
                ("requester_name", &requester_name),
                ("has_note", given(&note)),
                ("note", &note),
            ],
            counts: Vec::new(),
        };
        let audiences = [
            Audience {
                principals: facts.managers,
                about: business_name.clone(),
            },
            Audience {
                principals: detail_list(event, "program_managers"),
                about: business_name.clone(),
            },
        ];
        self.notify(event, &notice, &audiences, outcome).await
    }

    /// `EMPLOYEE_REQUEST_APPROVED` / `_REJECTED` (with the reason): the requester.
    pub(super) async fn employee_request_decided(
        &self,
        event: &DomainEvent,
        outcome: &mut Outcome,
    ) -> Result<(), NotifyError> {
        let (Some(bn), Some(requester)) = (business_of(event), requester_of(event)) else {
            tracing::warn!(event = %event.id, "employee request event without business or requester");
            return Ok(());
        };
        let (_, business_name) = self.business(&bn).await?;
        let reason = detail(event, "reject_reason");
        let mut values = vec![("business", bn.as_str()), ("business_name", &business_name)];
        let kind = if event.r#type() == EventType::EmployeeRequestRejected {
            values.push(("reason", &reason));
            EMPLOYEE_REQUEST_REJECTED
        } else {
            EMPLOYEE_REQUEST_APPROVED
        };
        let notice = Notice {
            kind,
            values,
            counts: Vec::new(),
        };
        let audience = Audience {
            principals: vec![requester.to_owned()],
            about: business_name.clone(),
        };
        self.notify(event, &notice, &[audience], outcome).await
    }
}
