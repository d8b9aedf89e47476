//! The records delegation keeps, as the store hands them over: typed states,
//! instants and lists (the store refuses a row that does not decode).

use chrono::{DateTime, Utc};

use super::{AssignmentRole, EndReason, Level, RelationshipStatus, RequestState, Visibility};

/// A relationship request from a provider to a client (R-DE-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipRequest {
    /// Uuid (v7, so ids sort by creation).
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Client BN9.
    pub client: String,
    /// The BN15s asked for (empty: the whole business).
    pub program_accounts: Vec<String>,
    /// The provider's note.
    pub note: String,
    /// The recorded state (see [`RelationshipRequest::state_at`]).
    pub state: RequestState,
    /// The sender's principal.
    pub sender: String,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Visible to the client since (None until the client registered).
    pub visible_time: Option<DateTime<Utc>>,
    /// End of the pending period (None while invisible).
    pub expire_time: Option<DateTime<Utc>>,
    /// Decided.
    pub decide_time: Option<DateTime<Utc>>,
    /// Who decided.
    pub decided_by: String,
    /// The client's reason for rejecting.
    pub reject_reason: String,
    /// The relationship its approval created (empty otherwise).
    pub relationship_id: String,
}

impl RelationshipRequest {
    /// Returns the state at `now`: a pending request past its expiry is
    /// expired whether or not the sweep recorded it.
    pub fn state_at(&self, now: DateTime<Utc>) -> RequestState {
        self.state.at(self.expire_time, now)
    }
}

/// A relationship between a provider and a client (R-DE-2..4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    /// Uuid.
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Client BN9.
    pub client: String,
    /// The request it came from.
    pub request_id: String,
    /// Business or program level.
    pub level: Level,
    /// The BN15s covered (program level).
    pub program_accounts: Vec<String>,
    /// Whose submissions the provider may see.
    pub visibility: Vec<Visibility>,
    /// Began.
    pub start_time: DateTime<Utc>,
    /// Expires.
    pub expire_time: DateTime<Utc>,
    /// The recorded ending: when and why.
    pub ended: Option<(DateTime<Utc>, EndReason)>,
    /// Who ended it (empty when not ended, or ended by the system).
    pub ended_by: String,
    /// The note given when ending it.
    pub end_note: String,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Update counter (the etag).
    pub version: i64,
    /// Due instants of the 30-, 7- and 1-day reminders; None once emitted or skipped.
    pub reminders: [Option<DateTime<Utc>>; 3],
}

impl Relationship {
    /// Returns the status at `now` (never active at or after its expiry,
    /// whether or not the sweep recorded the ending).
    pub fn status_at(&self, now: DateTime<Utc>) -> RelationshipStatus {
        RelationshipStatus::at(self.expire_time, self.ended, now)
    }
}

/// A provider's named set of clients (R-DE-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGroup {
    /// Uuid.
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// Display name.
    pub display_name: String,
    /// Lower-cased name (unique per provider, deleted groups included).
    pub name_key: String,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Changed.
    pub update_time: DateTime<Utc>,
    /// Deleted (soft).
    pub delete_time: Option<DateTime<Utc>>,
    /// Update counter (the etag).
    pub version: i64,
}

/// What an assignment is to: one client or a client group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentTarget {
    /// A client BN9.
    Client(String),
    /// A client group's uuid.
    Group(String),
}

impl AssignmentTarget {
    /// Returns the stored key (`client:<bn9>` or `group:<uuid>`), unique per
    /// provider and assignee.
    pub fn key(&self) -> String {
        match self {
            Self::Client(c) => format!("client:{c}"),
            Self::Group(g) => format!("group:{g}"),
        }
    }

    /// Returns the client of a direct assignment.
    pub fn client(&self) -> Option<&str> {
        match self {
            Self::Client(c) => Some(c),
            Self::Group(_) => None,
        }
    }

    /// Returns the group of a group assignment.
    pub fn group(&self) -> Option<&str> {
        match self {
            Self::Group(g) => Some(g),
            Self::Client(_) => None,
        }
    }
}

/// A member of the provider assigned to a client or client group (R-DE-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Uuid.
    pub id: String,
    /// Provider BN9.
    pub provider: String,
    /// The assignee's principal.
    pub assignee: String,
    /// The client or group.
    pub target: AssignmentTarget,
    /// Editor or reader.
    pub role: AssignmentRole,
    /// Made.
    pub create_time: DateTime<Utc>,
    /// By.
    pub creator: String,
}

/// A relationship as the facts queries return it, with the revision counter
/// of the scope asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipFact {
    /// Uuid.
    pub id: String,
    /// Client BN9.
    pub client: String,
    /// Level.
    pub level: Level,
    /// BN15s.
    pub program_accounts: Vec<String>,
    /// Visibility rules.
    pub visibility: Vec<Visibility>,
    /// Began.
    pub start_time: DateTime<Utc>,
    /// Expires.
    pub expire_time: DateTime<Utc>,
    /// The recorded ending.
    pub ended: Option<(DateTime<Utc>, EndReason)>,
}

impl RelationshipFact {
    /// Returns the status at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> RelationshipStatus {
        RelationshipStatus::at(self.expire_time, self.ended, now)
    }
}

/// One client a principal reaches through one assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentFact {
    /// Provider BN9.
    pub provider: String,
    /// The client (None for an empty group).
    pub client: Option<String>,
    /// The role.
    pub role: AssignmentRole,
    /// The group, when through one.
    pub group_id: Option<String>,
    /// The provider's revision counter.
    pub revision: i64,
}

/// The side of a relationship or request a business is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The client (who delegates).
    Client,
    /// The service provider.
    Provider,
}
