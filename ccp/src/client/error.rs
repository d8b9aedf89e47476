//! Why a client command failed, how it is reported (stderr, and JSON on
//! stdout with `--json`), and the exit code of each kind.

use super::output;
use crate::client::lang;

/// Why a client command failed; each kind has its exit code.
#[derive(Debug)]
pub enum CliError {
    /// The service answered with an error.
    Status(tonic::Status),
    /// The command line is wrong (exit 2).
    Usage(String),
    /// No usable session (exit 4).
    NotSignedIn(String),
    /// `ccp check` answered DENY (exit 10); already printed.
    Denied,
    /// Anything else (exit 1).
    Other(anyhow::Error),
}

impl CliError {
    /// Returns a usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// Returns the exit code: 0 ok · 1 other · 2 usage · 3 invalid argument ·
    /// 4 not signed in · 5 permission denied · 6 not found · 7 conflict
    /// (already exists, failed precondition, aborted) · 8 unavailable or
    /// deadline · 9 rate limited · 10 denied by `ccp check`.
    pub fn exit_code(&self) -> u8 {
        use tonic::Code;
        match self {
            Self::Status(status) => match status.code() {
                Code::InvalidArgument | Code::OutOfRange => 3,
                Code::Unauthenticated => 4,
                Code::PermissionDenied => 5,
                Code::NotFound => 6,
                Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => 7,
                Code::Unavailable | Code::DeadlineExceeded => 8,
                Code::ResourceExhausted => 9,
                _ => 1,
            },
            Self::Usage(_) => 2,
            Self::NotSignedIn(_) => 4,
            Self::Denied => 10,
            Self::Other(_) => 1,
        }
    }

    /// Prints the error on stderr (and as JSON on stdout with `--json`).
    pub(super) fn report(&self, json: bool) {
        let (code, message, violations) = match self {
            Self::Status(status) => {
                let violations: Vec<(String, String)> =
                    ccp_platform::error::field_violations(status)
                        .into_iter()
                        .map(|v| (v.field, v.description))
                        .collect();
                let message = match status.code() {
                    tonic::Code::Unauthenticated => {
                        format!("{} — sign in again with `ccp login`", status.message())
                    }
                    tonic::Code::PermissionDenied if status.message().is_empty() => {
                        "permission denied".to_owned()
                    }
                    tonic::Code::Unavailable if status.message().contains("certificate") => {
                        format!(
                            "{} — is the CA right (--ca-file, upstream.tls_ca) and the certificate valid for this name?",
                            status.message()
                        )
                    }
                    tonic::Code::Unavailable if status.message().contains("http2 error") => {
                        format!(
                            "{} — does the gateway serve TLS (https://) or not (http://)?",
                            status.message()
                        )
                    }
                    tonic::Code::Unavailable => format!(
                        "{} — is the gateway running and reachable?",
                        status.message()
                    ),
                    _ => status.message().to_owned(),
                };
                (code_name(status.code()), message, violations)
            }
            Self::Usage(message) => ("USAGE", message.clone(), Vec::new()),
            Self::NotSignedIn(message) => ("UNAUTHENTICATED", message.clone(), Vec::new()),
            Self::Denied => return,
            Self::Other(err) => ("ERROR", format!("{err:#}"), Vec::new()),
        };
        eprintln!(
            "{}",
            lang::tf("error-line", &[("message", &message), ("code", code)])
        );
        for (field, description) in &violations {
            eprintln!("  - {field}: {description}");
        }
        if json {
            let violations: Vec<_> = violations
                .iter()
                .map(|(f, d)| serde_json::json!({"field": f, "description": d}))
                .collect();
            output::print_json(&serde_json::json!({
                "error": {"code": code, "message": message, "fieldViolations": violations}
            }));
        }
    }
}

/// Returns the canonical gRPC name of a code (`UNAVAILABLE`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(err: anyhow::Error) -> Self {
        Self::Other(err)
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        Self::Other(err.into())
    }
}
