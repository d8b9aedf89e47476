//! The errors delegation's rules give, mapped once onto the platform's error
//! table.

use ccp_platform::error::{Error, FieldViolation};

use super::RequestState;

/// Why a rule of delegation refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    /// A decision on a request that is no longer pending.
    #[error("the request is {}, no longer pending", .0.as_str().to_lowercase())]
    NotPending(RequestState),
    /// Free text shorter than its minimum.
    #[error("must be {min}–{max} characters")]
    TooShort {
        /// The fewest characters.
        min: usize,
        /// The most characters.
        max: usize,
    },
    /// Free text longer than its maximum.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The most characters.
        max: usize,
    },
    /// Free text holding NUL or another control character (line breaks and
    /// tabs are allowed).
    #[error("must not contain control characters")]
    ControlCharacters,
    /// Visibility rules without the provider's own submissions.
    #[error("must include VISIBILITY_SUBMITTED_BY_PROVIDER (it cannot be removed)")]
    ProviderVisibilityMissing,
    /// An expiry instant that is not in the future.
    #[error("must be in the future")]
    ExpiryNotInFuture,
    /// An expiry instant further than the maximum.
    #[error("must be at most {max_days} days from now")]
    ExpiryTooFar {
        /// The furthest expiry, in days.
        max_days: i64,
    },
}

impl DelegationError {
    /// Returns the violation of `field` this error describes.
    pub fn at(&self, field: impl Into<String>) -> FieldViolation {
        FieldViolation::new(field, self.to_string())
    }
}

impl From<DelegationError> for Error {
    fn from(err: DelegationError) -> Self {
        match err {
            DelegationError::NotPending(_) => Error::failed_precondition(err.to_string()),
            DelegationError::TooShort { .. }
            | DelegationError::TooLong { .. }
            | DelegationError::ControlCharacters
            | DelegationError::ProviderVisibilityMissing
            | DelegationError::ExpiryNotInFuture
            | DelegationError::ExpiryTooFar { .. } => Error::invalid(vec![err.at("")]),
        }
    }
}
