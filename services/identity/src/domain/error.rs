//! The errors of identity's rules, mapped once onto the platform's error table.

use ccp_platform::error::Error;
use ccp_types::FieldViolation;

/// Why one field's value breaks its rule (the text is the violation's description).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldRule {
    /// The field is empty.
    #[error("is required")]
    Required,
    /// The field is longer than allowed.
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// The field holds control characters.
    #[error("must not contain control characters")]
    ControlCharacters,
    /// The instant is not after now.
    #[error("must be in the future")]
    NotInFuture,
    /// The expiry is further away than a credential may live.
    #[error("must be at most 2 years away")]
    TooFarAway,
    /// The text is not an e-mail address.
    #[error("must be an e-mail address (name@domain)")]
    NotAnEmail,
    /// The text is not a telephone number.
    #[error("must be 7–20 characters of digits, spaces, +, -, ( and ) with at least 7 digits")]
    NotAPhone,
    /// The language is missing or unknown.
    #[error("must be LANGUAGE_EN or LANGUAGE_FR")]
    NoLanguage,
    /// The kind of notice is not one there is.
    #[error("must be a kind of notice: {}", ccp_types::NOTICE_KINDS.join(", "))]
    UnknownNoticeKind,
    /// A second choice for a kind already chosen.
    #[error("is chosen twice")]
    ChosenTwice,
}

impl FieldRule {
    /// Returns the violation of `field`.
    pub fn on(&self, field: impl Into<String>) -> FieldViolation {
        FieldViolation::new(field, self.to_string())
    }
}

/// Refusals of identity's use cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The caller already has a profile.
    #[error("you already have a profile")]
    ProfileExists,
    /// The caller has no profile yet.
    #[error("create your profile first")]
    NoProfile,
    /// The profile changed since the caller read it.
    #[error("the profile changed since it was read (stale etag)")]
    StaleProfile,
    /// No credential of that name under that business.
    #[error("no such machine credential under this business")]
    NoSuchCredential,
    /// The credential is revoked already.
    #[error("the credential is already revoked")]
    CredentialRevoked,
    /// The caller's credential is revoked, expired or unknown.
    #[error("the credential is no longer valid")]
    CredentialInvalid,
    /// The caller's session was signed out or revoked.
    #[error("the session has ended")]
    SessionEnded,
    /// The access token names no session.
    #[error("the access token names no session")]
    NoSession,
    /// A machine credential asked for a personal session.
    #[error("a machine credential has no personal session")]
    NotAPerson,
    /// A machine credential tried to sign out.
    #[error("a machine credential has no session to sign out of")]
    NothingToSignOut,
    /// The id token was missing or refused.
    #[error("the id token was refused")]
    IdTokenRefused,
    /// An id token is required.
    #[error("an id token is required")]
    IdTokenRequired,
    /// The refresh token was refused (unknown, used, expired or revoked).
    #[error("the refresh token was refused")]
    RefreshRefused,
    /// The client id or secret was refused.
    #[error("the client id or secret was refused")]
    ClientRefused,
    /// The client id is locked after repeated bad secrets.
    #[error("too many bad secrets for this client id; try again later")]
    ClientLocked,
}

impl From<IdentityError> for Error {
    fn from(err: IdentityError) -> Self {
        use IdentityError as E;
        let message = err.to_string();
        match err {
            E::ProfileExists => Error::already_exists(message),
            E::NoProfile | E::CredentialRevoked | E::NothingToSignOut => {
                Error::failed_precondition(message)
            }
            E::StaleProfile => Error::aborted(message),
            E::NoSuchCredential => Error::not_found(message),
            E::NotAPerson => Error::permission_denied(message),
            E::CredentialInvalid
            | E::SessionEnded
            | E::NoSession
            | E::IdTokenRefused
            | E::IdTokenRequired
            | E::RefreshRefused
            | E::ClientRefused => Error::unauthenticated(message),
            E::ClientLocked => Error::resource_exhausted(message),
        }
    }
}
