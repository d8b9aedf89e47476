//! The input limits of every public identity RPC (R-IN-1), checked before
//! the use case runs: the most characters of each string and the most paths
//! of a field mask, as the contract's field comments state. A request over a
//! limit answers INVALID_ARGUMENT naming the field, having done no other
//! work. (`GetProfiles`' count of ids is bounded by its own parser.)

use ccp_platform::error::Error;
use ccp_proto::identity::v1 as pb;
use ccp_types::limits::{
    DISPLAY_NAME_MAX_CHARS, EMAIL_MAX_CHARS, ETAG_MAX_CHARS, LEGAL_NAME_MAX_CHARS, MAX_MASK_PATHS,
    MAX_NOTIFICATION_CHOICES, NAME_MAX_CHARS, NOTE_MAX_CHARS, PAGE_TOKEN_MAX_CHARS,
    PHONE_MAX_CHARS, TOKEN_MAX_CHARS,
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

fn request_id(l: &mut Limits, text: &str) {
    // The request id's own parser names a bad one; only its size is bounded here.
    l.chars("request_id", text, REQUEST_ID_MAX_CHARS);
}

fn profile(l: &mut Limits, p: Option<&pb::Profile>) {
    if let Some(p) = p {
        l.line("profile.name", &p.name, NAME_MAX_CHARS);
        l.line("profile.principal", &p.principal, NAME_MAX_CHARS);
        l.line("profile.legal_name", &p.legal_name, LEGAL_NAME_MAX_CHARS);
        l.line("profile.email", &p.email, EMAIL_MAX_CHARS);
        l.line("profile.phone", &p.phone, PHONE_MAX_CHARS);
        l.line("profile.etag", &p.etag, ETAG_MAX_CHARS);
        let choices = &p.notification_choices;
        if l.count(
            "profile.notification_choices",
            choices,
            MAX_NOTIFICATION_CHOICES,
        ) {
            for (i, c) in choices.iter().enumerate() {
                l.line(
                    &format!("profile.notification_choices[{i}].kind"),
                    &c.kind,
                    TOKEN_MAX_CHARS,
                );
            }
        }
    }
}

fn time(l: &mut Limits, field: &str, t: Option<&prost_types::Timestamp>) {
    if let Some(t) = t {
        l.timestamp(field, t.seconds, t.nanos);
    }
}

/// A credential over its limit (an ID token, a refresh token, a client id
/// or secret) is one no issuer made: UNAUTHENTICATED like any other bad
/// credential (R-ID-1), refused before it is parsed.
pub(crate) fn credential(text: &str, max: usize) -> Result<(), Status> {
    let mut limits = Limits::new();
    limits.chars("credential", text, max);
    if limits.is_empty() {
        Ok(())
    } else {
        Err(Status::unauthenticated(format!(
            "the credential is not valid (at most {max} characters)"
        )))
    }
}

impl Bounded for pb::SignOutRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
    }
}

impl Bounded for pb::CreateProfileRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        profile(l, self.profile.as_ref());
    }
}

impl Bounded for pb::UpdateMyProfileRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        profile(l, self.profile.as_ref());
        if let Some(m) = &self.update_mask {
            l.lines(
                "update_mask.paths",
                &m.paths,
                MAX_MASK_PATHS,
                TOKEN_MAX_CHARS,
            );
        }
    }
}

impl Bounded for pb::CreateMachineCredentialRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        l.line("parent", &self.parent, NAME_MAX_CHARS);
        l.line("display_name", &self.display_name, DISPLAY_NAME_MAX_CHARS);
        time(l, "expire_time", self.expire_time.as_ref());
    }
}

impl Bounded for pb::ListMachineCredentialsRequest {
    fn limits(&self, l: &mut Limits) {
        l.line("parent", &self.parent, NAME_MAX_CHARS);
        l.line("page_token", &self.page_token, PAGE_TOKEN_MAX_CHARS);
    }
}

impl Bounded for pb::RevokeMachineCredentialRequest {
    fn limits(&self, l: &mut Limits) {
        request_id(l, &self.request_id);
        l.line("name", &self.name, NAME_MAX_CHARS);
        l.multiline("reason", &self.reason, NOTE_MAX_CHARS);
    }
}

impl Bounded for pb::ListAuditEventsRequest {
    fn limits(&self, l: &mut Limits) {
        l.line("parent", &self.parent, NAME_MAX_CHARS);
        l.line("page_token", &self.page_token, PAGE_TOKEN_MAX_CHARS);
        time(l, "start_time", self.start_time.as_ref());
    }
}
