//! Plain-Rust rules of accounts: business numbers (R-AC-1), registry matching
//! (R-AC-2), roles and their order (R-AC-4), employee request states (R-AC-3).
//! No prost, no sea-orm.

pub mod error;
pub mod matching;
pub mod roles;

pub use ccp_types::{Bn9, Bn15, ProgramReference};
pub use error::AccountsError;
pub use roles::{Grants, RoleLevel};

/// A stored spelling no state or kind has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownSpelling;

impl std::str::FromStr for MemberKind {
    type Err = UnknownSpelling;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(UnknownSpelling)
    }
}

impl std::str::FromStr for RequestState {
    type Err = UnknownSpelling;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(UnknownSpelling)
    }
}

/// What a member is: a person, or a machine credential of the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A person (`person:<uuid>`).
    Person,
    /// A machine credential (`credential:<uuid>`).
    Credential,
}

impl MemberKind {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "PERSON",
            Self::Credential => "CREDENTIAL",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PERSON" => Some(Self::Person),
            "CREDENTIAL" => Some(Self::Credential),
            _ => None,
        }
    }
}

/// The state of an employee access request (R-AC-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for a BAM or PAM.
    Pending,
    /// Approved; the requester became a member.
    Approved,
    /// Rejected with a reason.
    Rejected,
    /// Withdrawn by the requester.
    Withdrawn,
    /// Not answered in time.
    Expired,
}

impl RequestState {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Withdrawn => "WITHDRAWN",
            Self::Expired => "EXPIRED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => Self::Pending,
            "APPROVED" => Self::Approved,
            "REJECTED" => Self::Rejected,
            "WITHDRAWN" => Self::Withdrawn,
            "EXPIRED" => Self::Expired,
            _ => return None,
        })
    }

    /// Returns the state after a decision, or refuses when the request is no
    /// longer pending (or has expired at `now`).
    pub fn decide(
        self,
        to: RequestState,
        expire_time: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<RequestState, AccountsError> {
        if self != Self::Pending {
            return Err(AccountsError::NotPending);
        }
        if now >= expire_time && to != Self::Expired {
            return Err(AccountsError::Expired);
        }
        Ok(to)
    }
}
