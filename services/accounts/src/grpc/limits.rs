//! The input limits of every accounts RPC (R-IN-1), checked before the use
//! case runs: the most entries of each repeated field and the most characters
//! of each string, as the contract's field comments state. A request over a
//! limit answers INVALID_ARGUMENT naming the field, having done no other work.

use ccp_platform::error::Error;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::common::v1::{Address, RoleGrants};
use ccp_types::Limits;
use ccp_types::REQUEST_ID_MAX_CHARS;
use ccp_types::limits::{
    ADDRESS_CODE_MAX_CHARS, ADDRESS_LINE_MAX_CHARS, ANSWER_MAX_CHARS, DISPLAY_NAME_MAX_CHARS,
    ETAG_MAX_CHARS, LEGAL_NAME_MAX_CHARS, MAX_ANSWERS, MAX_MASK_PATHS, MAX_PRINCIPALS,
    MAX_PROGRAM_ROLES, NAME_MAX_CHARS, NOTE_MAX_CHARS, PAGE_TOKEN_MAX_CHARS, TOKEN_MAX_CHARS,
};
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

fn grants(l: &mut Limits, field: &str, grants: Option<&RoleGrants>) {
    if let Some(g) = grants {
        program_roles(l, &format!("{field}.program_roles"), &g.program_roles);
    }
}

fn program_roles(l: &mut Limits, field: &str, roles: &[ccp_proto::common::v1::ProgramRole]) {
    if l.count(field, roles, MAX_PROGRAM_ROLES) {
        for (i, r) in roles.iter().enumerate() {
            name(
                l,
                &format!("{field}[{i}].program_account"),
                &r.program_account,
            );
        }
    }
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

pub(crate) fn address(l: &mut Limits, field: &str, a: &Address) {
    for (part, text, max) in [
        ("line1", &a.line1, ADDRESS_LINE_MAX_CHARS),
        ("line2", &a.line2, ADDRESS_LINE_MAX_CHARS),
        ("city", &a.city, ADDRESS_LINE_MAX_CHARS),
        ("province", &a.province, ADDRESS_CODE_MAX_CHARS),
        ("postal_code", &a.postal_code, ADDRESS_CODE_MAX_CHARS),
        ("country", &a.country, ADDRESS_CODE_MAX_CHARS),
    ] {
        l.line(&format!("{field}.{part}"), text, max);
    }
}

fn group(l: &mut Limits, g: Option<&pb::EmployeeGroup>) {
    if let Some(g) = g {
        name(l, "group.name", &g.name);
        l.line(
            "group.display_name",
            &g.display_name,
            DISPLAY_NAME_MAX_CHARS,
        );
        program_roles(l, "group.roles", &g.roles);
        l.lines("group.members", &g.members, MAX_PRINCIPALS, NAME_MAX_CHARS);
        l.line("group.etag", &g.etag, ETAG_MAX_CHARS);
    }
}

/// Requests of one resource name and nothing else.
macro_rules! named {
    ($($t:ident . $f:ident),* $(,)?) => {$(
        impl Bounded for pb::$t {
            fn limits(&self, l: &mut Limits) {
                name(l, stringify!($f), &self.$f);
            }
        }
    )*};
}

named!(
    GetBusinessRequest.name,
    GetMemberRequest.name,
    GetEmployeeGroupRequest.name,
    GetRoleFactsRequest.principal,
    GetBusinessFactsRequest.business,
    GetEmployeeGroupFactsRequest.name,
    GetRegistrationChallengeRequest.program_account,
);

/// The most businesses one BatchGetBusinessFacts names.
const MAX_BATCH_BUSINESSES: usize = 1000;

impl Bounded for pb::BatchGetBusinessFactsRequest {
    fn limits(&self, l: &mut Limits) {
        l.lines(
            "businesses",
            &self.businesses,
            MAX_BATCH_BUSINESSES,
            NAME_MAX_CHARS,
        );
    }
}

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
    ListProgramAccountsRequest,
    ListEmployeeRequestsRequest,
    ListEmployeeGroupsRequest,
);

impl Bounded for pb::ListAuditEventsRequest {
    fn limits(&self, l: &mut Limits) {
        name(l, "parent", &self.parent);
        page(l, &self.page_token);
        time(l, "start_time", self.start_time.as_ref());
    }
}

impl Bounded for pb::ListEmployeesRequest {
    fn limits(&self, l: &mut Limits) {
        name(l, "parent", &self.parent);
        name(l, "program_account", &self.program_account);
        page(l, &self.page_token);
    }
}

impl Bounded for pb::ListMyBusinessesRequest {
    fn limits(&self, l: &mut Limits) {
        page(l, &self.page_token);
    }
}

impl Bounded for pb::ListMyEmployeeRequestsRequest {
    fn limits(&self, l: &mut Limits) {
        page(l, &self.page_token);
    }
}

impl Bounded for pb::RegisterBusinessRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "program_account", &self.program_account);
        l.line("legal_name", &self.legal_name, LEGAL_NAME_MAX_CHARS);
        if let Some(a) = &self.address {
            address(l, "address", a);
        }
        if l.count("answers", &self.answers, MAX_ANSWERS) {
            for (i, a) in self.answers.iter().enumerate() {
                l.line(
                    &format!("answers[{i}].question_id"),
                    &a.question_id,
                    TOKEN_MAX_CHARS,
                );
                l.line(&format!("answers[{i}].answer"), &a.answer, ANSWER_MAX_CHARS);
            }
        }
        l.line(
            "accepted_terms_version",
            &self.accepted_terms_version,
            TOKEN_MAX_CHARS,
        );
    }
}

impl Bounded for pb::RequestEmployeeAccessRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "parent", &self.parent);
        l.multiline("note", &self.note, NOTE_MAX_CHARS);
    }
}

impl Bounded for pb::WithdrawEmployeeRequestRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
    }
}

impl Bounded for pb::ApproveEmployeeRequestRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        grants(l, "grants", self.grants.as_ref());
    }
}

impl Bounded for pb::RejectEmployeeRequestRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        l.multiline("reason", &self.reason, NOTE_MAX_CHARS);
    }
}

impl Bounded for pb::SetMemberRolesRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        grants(l, "grants", self.grants.as_ref());
        l.line("etag", &self.etag, ETAG_MAX_CHARS);
    }
}

impl Bounded for pb::RemoveMemberRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        l.line("etag", &self.etag, ETAG_MAX_CHARS);
    }
}

impl Bounded for pb::CreateEmployeeGroupRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "parent", &self.parent);
        group(l, self.group.as_ref());
    }
}

impl Bounded for pb::UpdateEmployeeGroupRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        group(l, self.group.as_ref());
        mask(l, self.update_mask.as_ref());
    }
}

impl Bounded for pb::DeleteEmployeeGroupRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "name", &self.name);
        l.line("etag", &self.etag, ETAG_MAX_CHARS);
    }
}

impl Bounded for pb::AddEmployeeGroupMembersRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "group", &self.group);
        l.lines(
            "principals",
            &self.principals,
            MAX_PRINCIPALS,
            NAME_MAX_CHARS,
        );
    }
}

impl Bounded for pb::RemoveEmployeeGroupMembersRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        name(l, "group", &self.group);
        l.lines(
            "principals",
            &self.principals,
            MAX_PRINCIPALS,
            NAME_MAX_CHARS,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_in_1_a_registration_of_100k_answers_is_one_violation() {
        let request = pb::RegisterBusinessRequest {
            answers: vec![
                pb::KnownFactAnswer {
                    question_id: "q".into(),
                    answer: "\u{0}".into(),
                };
                100_000
            ],
            ..Default::default()
        };
        let status = check(&request).expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("answers"), "{}", status.message());
        assert!(status.message().len() < 200, "{}", status.message());
    }
}
