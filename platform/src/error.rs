//! One error-code table for every service, mapped to `tonic::Status` with
//! google.rpc details.
//!
//! Domain errors carry a code, a message safe to show the caller and, for bad
//! input, the fields that are wrong (google.rpc.BadRequest). Internal errors
//! log their cause chain and reach the caller as a generic message: database
//! text never leaves the service.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The codes a CCP service answers with, each mapped to one gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Bad input; names the fields (R-IN-1). Nothing was written.
    InvalidArgument,
    /// The named resource does not exist under its parent.
    NotFound,
    /// The resource exists already (a second registration, a duplicate name).
    AlreadyExists,
    /// The system is not in a state that allows the operation (last BAM,
    /// request no longer pending, relationship already active).
    FailedPrecondition,
    /// A concurrent change won (a stale etag, a state changed under the
    /// caller); re-read, then retry. (A database serialization failure or
    /// deadlock is UNAVAILABLE: the same request may simply be sent again.)
    Aborted,
    /// The caller is authenticated but not allowed.
    PermissionDenied,
    /// No valid credentials.
    Unauthenticated,
    /// A limit was hit (lockout, rate limit, load shedding).
    ResourceExhausted,
    /// A dependency is unavailable; fail closed (R-GW-5).
    Unavailable,
    /// The operation is not built yet.
    Unimplemented,
    /// An unexpected fault; the cause is logged, never returned.
    Internal,
}

impl ErrorCode {
    /// Returns the gRPC code for this error code.
    pub fn grpc_code(self) -> Code {
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::Aborted => Code::Aborted,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::ResourceExhausted => Code::ResourceExhausted,
            Self::Unavailable => Code::Unavailable,
            Self::Unimplemented => Code::Unimplemented,
            Self::Internal => Code::Internal,
        }
    }
}

pub use ccp_types::FieldViolation;

/// A service error: a code, a message for the caller, field violations, and
/// for internal errors the cause (logged, never returned).
#[derive(Debug)]
pub struct Error {
    code: ErrorCode,
    message: String,
    violations: Vec<FieldViolation>,
    reason: Option<&'static str>,
    /// The ErrorInfo metadata that goes with the reason.
    info: Vec<(&'static str, String)>,
    retry_after: Option<std::time::Duration>,
    cause: Option<anyhow::Error>,
}

/// The ErrorInfo reason of a forwarded write refused because a fact the
/// gateway decided on changed before it landed (R-GW-1); the metadata key
/// `revision` holds the revision token of what the write saw.
pub const FACTS_CHANGED: &str = "FACTS_CHANGED";

/// The most field violations one error carries; the message counts the rest,
/// so no answer grows with the caller's input.
pub const MAX_VIOLATIONS: usize = 10;

/// The `domain` of every google.rpc.ErrorInfo CCP answers with.
pub const ERROR_DOMAIN: &str = "ccp";

impl Error {
    /// Returns an error with a code and a message safe to show the caller.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            violations: Vec::new(),
            reason: None,
            info: Vec::new(),
            retry_after: None,
            cause: None,
        }
    }

    /// Returns INVALID_ARGUMENT naming one bad field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::invalid(vec![FieldViolation::new(field, description)])
    }

    /// Returns INVALID_ARGUMENT naming every bad field — the first
    /// [`MAX_VIOLATIONS`] of them, with a count of the rest.
    pub fn invalid(mut violations: Vec<FieldViolation>) -> Self {
        let more = violations.len().saturating_sub(MAX_VIOLATIONS);
        violations.truncate(MAX_VIOLATIONS);
        let listed = violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let message = match (violations.as_slice(), more) {
            ([], _) => "invalid request".to_owned(),
            ([one], 0) => format!("invalid {}: {}", one.field, one.description),
            (_, 0) => format!("invalid request: {listed}"),
            (_, more) => format!("invalid request: {listed}; and {more} more"),
        };
        Self {
            code: ErrorCode::InvalidArgument,
            message,
            violations,
            reason: None,
            info: Vec::new(),
            retry_after: None,
            cause: None,
        }
    }

    /// Returns the error carrying a stable machine-readable reason
    /// (google.rpc.ErrorInfo, e.g. `LAST_BUSINESS_MANAGER`).
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Returns the error with one more ErrorInfo metadata entry (sent with its reason).
    pub fn with_info(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.info.push((key, value.into()));
        self
    }

    /// Returns ABORTED (`FACTS_CHANGED`): a scope this write changes moved
    /// past the revision the gateway decided on; `now` is the revision token
    /// of what the write found. Safe to retry: nothing was written.
    pub fn facts_changed(now: &crate::revision::Revision) -> Self {
        Self::aborted("the facts this call was authorized on changed; try again")
            .with_reason(FACTS_CHANGED)
            .with_info("revision", now.encode())
    }

    /// Returns the error telling the caller when it may try again
    /// (google.rpc.RetryInfo; for lockouts and rate limits).
    pub fn retry_after(mut self, delay: std::time::Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Returns the stable reason, if any.
    pub fn reason(&self) -> Option<&'static str> {
        self.reason
    }

    /// Returns NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// Returns ALREADY_EXISTS.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AlreadyExists, message)
    }

    /// Returns FAILED_PRECONDITION.
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, message)
    }

    /// Returns ABORTED (a concurrent change won; the caller may retry).
    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Aborted, message)
    }

    /// Returns PERMISSION_DENIED.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }

    /// Returns UNAUTHENTICATED.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// Returns RESOURCE_EXHAUSTED.
    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceExhausted, message)
    }

    /// Returns UNAVAILABLE.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// Returns INTERNAL carrying `cause`, which is logged when the error
    /// becomes a `Status` and never shown to the caller.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".to_owned(),
            violations: Vec::new(),
            reason: None,
            info: Vec::new(),
            retry_after: None,
            cause: Some(cause.into()),
        }
    }

    /// Returns the error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Returns the message shown to the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Returns the field violations (empty unless INVALID_ARGUMENT).
    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<sea_orm::DbErr> for Error {
    /// A database that cannot be reached, or a statement a retry may finish
    /// (lost connection, pool timeout, server restarting, serialization
    /// failure), is UNAVAILABLE: safe to retry for reads and for writes with
    /// a request id. Anything else is INTERNAL.
    fn from(err: sea_orm::DbErr) -> Self {
        if crate::db::is_transient(&err) {
            let mut out = Self::unavailable("the database is unavailable; retry");
            out.cause = Some(err.into());
            return out;
        }
        Self::internal(err)
    }
}

impl Error {
    /// Maps the failure of a call this service made to another one (accounts
    /// asking identity for facts, delegation asking accounts, ...) to this
    /// service's answer: a transport failure ([`is_transport_failure`]) or an
    /// answer a retry may clear (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED,
    /// RESOURCE_EXHAUSTED) is UNAVAILABLE naming `service`; anything else means
    /// one side has a bug (a request we should not have built, a refused
    /// internal token) and is INTERNAL. The upstream's status is logged, never
    /// returned.
    pub fn upstream(service: &str, status: Status) -> Self {
        let transient = is_transport_failure(&status)
            || matches!(
                status.code(),
                Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::ResourceExhausted
            );
        let cause = anyhow::anyhow!(
            "{service} answered {:?}: {}",
            status.code(),
            status.message()
        );
        if transient {
            let mut out = Self::unavailable(format!("{service} is unavailable; retry"));
            out.cause = Some(cause);
            return out;
        }
        Self::internal(cause)
    }
}

/// Returns `err` followed by each of its causes (`std::error::Error::source`),
/// joined by `: `, skipping a cause whose text its parent already shows: a
/// transport error says why (`transport error: … invalid peer certificate:
/// UnknownIssuer`) instead of only that it failed.
pub fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    // A source chain is a few errors deep; 16 bounds the walk.
    for _ in 0..16 {
        let Some(err) = cause else { break };
        let text = err.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = err.source();
    }
    out
}

/// Returns true when `status` is what this side's gRPC client made of a
/// transport failure (connection refused, reset or closed while the call was
/// in flight or before it was sent, a keep-alive that timed out) rather than a
/// status the peer answered: tonic keeps the transport error as the status's
/// source, and a status read from the peer's trailers has none. tonic answers
/// such a failure UNKNOWN ("transport error"), UNAVAILABLE, or CANCELLED (the
/// connection closed before the request went out); CCP answers UNAVAILABLE.
/// A call that ran out of its own time (CANCELLED by the client's timeout) is
/// not one.
pub fn is_transport_failure(status: &Status) -> bool {
    use std::error::Error as _;
    let Some(source) = status.source() else {
        return false;
    };
    match status.code() {
        Code::Unknown | Code::Unavailable => true,
        Code::Cancelled => {
            let mut cause = Some(source);
            // A source chain is a few errors deep; 16 bounds the walk.
            for _ in 0..16 {
                match cause {
                    Some(err) if err.is::<tonic::TimeoutExpired>() => return false,
                    Some(err) => cause = err.source(),
                    None => break,
                }
            }
            true
        }
        _ => false,
    }
}

impl From<sea_orm::TransactionError<Error>> for Error {
    fn from(err: sea_orm::TransactionError<Error>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => Self::from(db),
            sea_orm::TransactionError::Transaction(inner) => inner,
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        if let Some(cause) = &err.cause {
            if err.code == ErrorCode::Internal {
                tracing::error!(error = format!("{cause:#}"), "internal error");
            } else {
                tracing::warn!(code = ?err.code, error = format!("{cause:#}"), "{}", err.message);
            }
        }
        let code = err.code.grpc_code();
        if err.violations.is_empty() && err.reason.is_none() && err.retry_after.is_none() {
            return Status::new(code, err.message);
        }
        let mut details = ErrorDetails::new();
        for v in &err.violations {
            details.add_bad_request_violation(v.field.clone(), v.description.clone());
        }
        if let Some(reason) = err.reason {
            let info = err.info.into_iter().map(|(k, v)| (k.to_owned(), v));
            details.set_error_info(
                reason,
                ERROR_DOMAIN,
                info.collect::<std::collections::HashMap<_, _>>(),
            );
        }
        if let Some(delay) = err.retry_after {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(code, err.message, details)
    }
}

/// Returns the field violations carried by a `Status` (google.rpc.BadRequest),
/// for clients and tests.
pub fn field_violations(status: &Status) -> Vec<FieldViolation> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| FieldViolation::new(v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// A result whose error is a service [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_in_1_an_error_carries_at_most_max_violations_and_counts_the_rest() {
        let many = (0..100_000)
            .map(|i| FieldViolation::new(format!("answers[{i}]"), "is not a known question"))
            .collect();
        let status = Status::from(Error::invalid(many));
        assert_eq!(field_violations(&status).len(), MAX_VIOLATIONS);
        assert!(
            status
                .message()
                .ends_with(&format!("and {} more", 100_000 - MAX_VIOLATIONS))
        );
        assert!(status.message().len() < 2_000, "{}", status.message().len());
    }

    #[test]
    fn errors_carry_their_reason_and_retry_delay() {
        let status = Status::from(
            Error::resource_exhausted("locked")
                .with_reason("REGISTRATION_LOCKED")
                .retry_after(std::time::Duration::from_secs(60)),
        );
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("REGISTRATION_LOCKED", ERROR_DOMAIN)
        );
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(60)));
    }

    #[test]
    fn invalid_input_carries_every_field_violation_as_bad_request() {
        let err = Error::invalid(vec![
            FieldViolation::new("program_account", "bad check digit"),
            FieldViolation::new("postal_code", "required").nested("address"),
        ]);
        let status = Status::from(err);
        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = field_violations(&status);
        assert_eq!(
            violations,
            vec![
                FieldViolation::new("program_account", "bad check digit"),
                FieldViolation::new("address.postal_code", "required"),
            ]
        );
    }

    #[test]
    fn internal_errors_hide_their_cause_from_the_caller() {
        let err = Error::internal(anyhow::anyhow!(
            "duplicate key value violates unique constraint \"x\""
        ));
        let status = Status::from(err);
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        assert!(field_violations(&status).is_empty());
    }

    #[test]
    fn every_code_maps_to_its_grpc_code() {
        let table = [
            (ErrorCode::InvalidArgument, Code::InvalidArgument),
            (ErrorCode::NotFound, Code::NotFound),
            (ErrorCode::AlreadyExists, Code::AlreadyExists),
            (ErrorCode::FailedPrecondition, Code::FailedPrecondition),
            (ErrorCode::Aborted, Code::Aborted),
            (ErrorCode::PermissionDenied, Code::PermissionDenied),
            (ErrorCode::Unauthenticated, Code::Unauthenticated),
            (ErrorCode::ResourceExhausted, Code::ResourceExhausted),
            (ErrorCode::Unavailable, Code::Unavailable),
            (ErrorCode::Unimplemented, Code::Unimplemented),
            (ErrorCode::Internal, Code::Internal),
        ];
        for (code, grpc) in table {
            assert_eq!(Status::from(Error::new(code, "m")).code(), grpc);
        }
    }
}
