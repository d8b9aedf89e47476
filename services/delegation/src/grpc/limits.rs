//! The input limits of every public delegation RPC (R-IN-1), checked before
//! the use case runs: the most entries of each repeated field and the most
//! characters of each string, as the contract's field comments state. A
//! request over a limit answers INVALID_ARGUMENT naming the field, having
//! done no other work.

use ccp_platform::error::Error;
use ccp_proto::delegation::v1 as pb;
use ccp_types::limits::{
    DISPLAY_NAME_MAX_CHARS, ETAG_MAX_CHARS, MAX_CLIENTS, MAX_MASK_PATHS, MAX_PROGRAM_ACCOUNTS,
    MAX_VISIBILITY, NAME_MAX_CHARS, NOTE_MAX_CHARS, PAGE_TOKEN_MAX_CHARS, TOKEN_MAX_CHARS,
};
use ccp_types::{Limits, REQUEST_ID_MAX_CHARS};
use tonic::Status;

/// A request whose limits are known.
pub(crate) trait Bounded {
    /// Adds the request's violations of its limits to `limits`.
    fn limits(&self, limits: &mut Limits);
}

/// Checks `request`'s limits: INVALID_ARGUMENT naming the fields over them.
pub(crate) fn check<T: Bounded>(request: &T) -> Result<(), Status> {
    let mut limits = Limits::new();
    request.limits(&mut limits);
    if limits.is_empty() {
        Ok(())
    } else {
        Err(Status::from(Error::invalid(limits.into_violations())))
    }
}

fn name(l: &mut Limits, field: &str, text: &str) {
    l.line(field, text, NAME_MAX_CHARS);
}

fn request_id(l: &mut Limits, text: &str) {
    // The request id's own parser names a bad one; only its size is bounded here.
    l.chars("request_id", text, REQUEST_ID_MAX_CHARS);
}

fn page(l: &mut Limits, token: &str) {
    l.line("page_token", token, PAGE_TOKEN_MAX_CHARS);
}

fn programs(l: &mut Limits, field: &str, items: &[String]) {
    l.lines(field, items, MAX_PROGRAM_ACCOUNTS, NAME_MAX_CHARS);
}

fn visibility(l: &mut Limits, field: &str, items: &[i32]) {
    l.count(field, items, MAX_VISIBILITY);
}

fn time(l: &mut Limits, field: &str, t: Option<&prost_types::Timestamp>) {
    if let Some(t) = t {
        l.timestamp(field, t.seconds, t.nanos);
    }
}

fn mask(l: &mut Limits, mask: Option<&prost_types::FieldMask>) {
    if let Some(m) = mask {
        l.lines(
            "update_mask.paths",
            &m.paths,
            MAX_MASK_PATHS,
            TOKEN_MAX_CHARS,
        );
    }
}

fn group(l: &mut Limits, g: Option<&pb::ClientGroup>) {
    if let Some(g) = g {
        name(l, "group.name", &g.name);
        l.line(
            "group.display_name",
            &g.display_name,
            DISPLAY_NAME_MAX_CHARS,
        );
        l.lines("group.clients", &g.clients, MAX_CLIENTS, NAME_MAX_CHARS);
        l.line("group.etag", &g.etag, ETAG_MAX_CHARS);
    }
}

/// Requests of one resource name and nothing else.
macro_rules! named {
    ($($t:ident),* $(,)?) => {$(
        impl Bounded for pb::$t {
            fn limits(&self, l: &mut Limits) {
                name(l, "name", &self.name);
            }
        }
    )*};
}

named!(GetRelationshipRequest, GetClientGroupRequest);

/// Writes of a request id and a resource name.
macro_rules! named_write {
    ($($t:ident),* $(,)?) => {$(
        impl Bounded for pb::$t {
            fn limits(&self, l: &mut Limits) {
                request_id(l, &self.request_id);
                name(l, "name", &self.name);
            }
        }
    )*};
}

named_write!(WithdrawRelationshipRequestRequest, UnassignRequest);

/// Lists: a parent and a page token.
macro_rules! listed {
    ($($t:ident),* $(,)?) => {$(
        impl Bounded for pb::$t {
            fn limits(&self, l: &mut Limits) {
                name(l, "parent", &self.parent);
                page(l, &self.page_token);
            }
        }
    )*};
}

listed!(
    ListReceivedRequestsRequest,
    ListSentRequestsRequest,
    ListRelationshipsRequest,
    ListClientGroupsRequest,
);

impl Bounded for pb::ListAuditEventsRequest {
    fn limits(&self, l: &mut Limits) {
        name(l, "parent", &self.parent);
        page(l, &self.page_token);
        time(l, "start_time", self.start_time.as_ref());
    }
}

impl Bounded for pb::ListAssignmentsRequest {
    fn limits(&self, l: &mut Limits) {
        name(l, "parent", &self.parent);
        name(l, "assignee", &self.assignee);
        name(l, "client", &self.client);
        page(l, &self.page_token);
    }
}

impl Bounded for pb::SendRelationshipRequestRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "parent", &self.parent);
        name(l, "client", &self.client);
        programs(l, "program_accounts", &self.program_accounts);
        l.multiline("note", &self.note, NOTE_MAX_CHARS);
    }
}

impl Bounded for pb::ApproveRelationshipRequestRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        programs(l, "program_accounts", &self.program_accounts);
        visibility(l, "visibility", &self.visibility);
        time(l, "expire_time", self.expire_time.as_ref());
    }
}

impl Bounded for pb::RejectRelationshipRequestRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        l.multiline("reason", &self.reason, NOTE_MAX_CHARS);
    }
}

impl Bounded for pb::UpdateRelationshipRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        if let Some(r) = &self.relationship {
            name(l, "relationship.name", &r.name);
            programs(l, "relationship.program_accounts", &r.program_accounts);
            visibility(l, "relationship.visibility", &r.visibility);
            l.multiline("relationship.end_note", &r.end_note, NOTE_MAX_CHARS);
            l.line("relationship.etag", &r.etag, ETAG_MAX_CHARS);
            time(l, "relationship.expire_time", r.expire_time.as_ref());
        }
        mask(l, self.update_mask.as_ref());
    }
}

impl Bounded for pb::EndRelationshipRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        l.multiline("note", &self.note, NOTE_MAX_CHARS);
    }
}

impl Bounded for pb::CreateClientGroupRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "parent", &self.parent);
        group(l, self.group.as_ref());
    }
}

impl Bounded for pb::UpdateClientGroupRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        group(l, self.group.as_ref());
        mask(l, self.update_mask.as_ref());
    }
}

impl Bounded for pb::DeleteClientGroupRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        l.line("etag", &self.etag, ETAG_MAX_CHARS);
    }
}

impl Bounded for pb::AssignToClientRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "parent", &self.parent);
        if let Some(a) = &self.assignment {
            name(l, "assignment.name", &a.name);
            name(l, "assignment.assignee", &a.assignee);
            match &a.target {
                Some(pb::assignment::Target::Client(c)) => name(l, "assignment.client", c),
                Some(pb::assignment::Target::ClientGroup(g)) => {
                    name(l, "assignment.client_group", g);
                }
                None => {}
            }
        }
    }
}

impl Bounded for pb::AddClientGroupClientsRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "group", &self.group);
        l.lines("clients", &self.clients, MAX_CLIENTS, NAME_MAX_CHARS);
    }
}

impl Bounded for pb::RemoveClientGroupClientsRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "group", &self.group);
        l.lines("clients", &self.clients, MAX_CLIENTS, NAME_MAX_CHARS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_in_1_a_client_group_of_300k_clients_is_one_violation() {
        let request = pb::CreateClientGroupRequest {
            group: Some(pb::ClientGroup {
                clients: vec!["123456782".into(); 300_000],
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = check(&request).expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("group.clients"),
            "{}",
            status.message()
        );
        let ok = pb::CreateClientGroupRequest {
            group: Some(pb::ClientGroup {
                clients: vec!["123456782".into(); MAX_CLIENTS],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(check(&ok).is_ok());
    }
}
