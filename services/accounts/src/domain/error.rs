//! What the accounts rules refuse, one variant per refusal; mapped once onto
//! the platform's error table (`impl From<AccountsError> for Error`).

use chrono::{DateTime, Utc};

/// The google.rpc.ErrorInfo reason of a registration refused while the
/// caller is locked out (R-AC-2); RetryInfo says when to try again.
pub const REGISTRATION_LOCKED: &str = "REGISTRATION_LOCKED";

/// The google.rpc.ErrorInfo reason of a change that would leave a business
/// without an active BAM (R-AC-5).
pub const LAST_BUSINESS_MANAGER: &str = "LAST_BUSINESS_MANAGER";

/// A refusal of an accounts rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountsError {
    /// The business is not registered.
    #[error("no such business")]
    NoSuchBusiness,
    /// No such member of the business.
    #[error("no such member")]
    NoSuchMember,
    /// No such employee request under the business (or not the caller's).
    #[error("no such employee request")]
    NoSuchRequest,
    /// No such (active) employee group under the business.
    #[error("no such employee group")]
    NoSuchGroup,
    /// The registry lists no such program account (R-AC-2).
    #[error("no such program account in the registry")]
    NotInRegistry,
    /// The business is registered already (R-AC-2).
    #[error("this business is registered already; request access to it instead")]
    AlreadyRegistered,
    /// The caller's registration of this BN9 (or, `all_bns`, of any BN9) is
    /// locked after the caller's repeated failures (R-AC-2); `retry_after` is
    /// the time left until `until`.
    #[error(
        "{} locked after your repeated failed attempts until {}",
        if *.all_bns { "your registration of any business number is" }
        else { "your registration of this business number is" },
        .until.to_rfc3339()
    )]
    RegistrationLocked {
        /// When the lock ends.
        until: DateTime<Utc>,
        /// The time left until then.
        retry_after: std::time::Duration,
        /// True for the lock on every BN9 (too many failures across BNs).
        all_bns: bool,
    },
    /// The requester is a member already (R-AC-3).
    #[error("you are a member of this business already")]
    AlreadyMember,
    /// The requester has a pending request already (R-AC-3).
    #[error("you have a pending request to this business already")]
    AlreadyRequested,
    /// The request was decided, withdrawn or expired (R-AC-3).
    #[error("the request is no longer pending")]
    NotPending,
    /// The request's time is up (R-AC-3).
    #[error("the request has expired")]
    Expired,
    /// The change would leave the business without a BAM (R-AC-5).
    #[error("this is the business's last active Business Account Manager (R-AC-5)")]
    LastBusinessManager,
    /// The member's etag is stale.
    #[error("the member has changed; read it again")]
    MemberChanged,
    /// The group's etag is stale.
    #[error("the group has changed; read it again")]
    GroupChanged,
    /// A group update must carry the etag it read.
    #[error("the group's etag is required")]
    GroupEtagRequired,
    /// The group name is taken (deleted groups included, R-AC-6).
    #[error("a group of this name exists (or existed) in the business")]
    GroupNameTaken,
    /// A group member must be a member of the business.
    #[error("{0} is not a member of the business")]
    NotAMember(String),
    /// A machine credential never holds PAM (R-AZ-5).
    #[error(
        "{0} is a machine credential and the group gives PAM; credentials hold only Editor or Reader"
    )]
    CredentialInPamGroup(String),
    /// The credential belongs to another business, or to none.
    #[error("the credential is not a machine credential of this business")]
    ForeignCredential,
    /// The credential is revoked or expired.
    #[error("the credential is revoked or expired")]
    InactiveCredential,
}

impl From<AccountsError> for ccp_platform::error::Error {
    fn from(e: AccountsError) -> Self {
        use AccountsError as E;
        use ccp_platform::error::Error;
        let message = e.to_string();
        match e {
            E::NoSuchBusiness
            | E::NoSuchMember
            | E::NoSuchRequest
            | E::NoSuchGroup
            | E::NotInRegistry => Error::not_found(message),
            E::AlreadyRegistered | E::AlreadyMember | E::AlreadyRequested | E::GroupNameTaken => {
                Error::already_exists(message)
            }
            E::RegistrationLocked { retry_after, .. } => Error::resource_exhausted(message)
                .with_reason(REGISTRATION_LOCKED)
                .retry_after(retry_after),
            E::MemberChanged | E::GroupChanged | E::GroupEtagRequired => Error::aborted(message),
            E::LastBusinessManager => {
                Error::failed_precondition(message).with_reason(LAST_BUSINESS_MANAGER)
            }
            E::NotPending
            | E::Expired
            | E::NotAMember(_)
            | E::CredentialInPamGroup(_)
            | E::ForeignCredential
            | E::InactiveCredential => Error::failed_precondition(message),
        }
    }
}
