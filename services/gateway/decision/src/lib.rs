//! The decision function (R-AZ-0..6): a pure function of role facts,
//! relationship facts and the clock. No I/O, no prost: facts arrive as the
//! plain domain types below (the gateway converts the proto facts at its
//! edge, in its `facts` module, and re-exports this crate as `decide`).
//!
//! It owns what a principal may do and why not; it never reads a fact
//! itself. A crate of its own so that mutation testing rebuilds only it
//! (CONTRIBUTING.md, "Mutation testing").

use std::collections::{BTreeMap, BTreeSet};

use ccp_platform::auth::Principal;
use ccp_types::{Bn9, Bn15};
use chrono::{DateTime, Utc};

/// What a principal wants to do with a business or a program account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read (details, transactions).
    View,
    /// Change (submit or edit transactions; edit business details).
    Edit,
    /// Administer (people, roles, groups, relationships, credentials).
    Manage,
}

impl Action {
    /// Returns the action's name as the policy table and the docs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "VIEW",
            Self::Edit => "EDIT",
            Self::Manage => "MANAGE",
        }
    }
}

/// A role, ordered by power (R-AC-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Views one program account's transactions.
    Reader,
    /// Creates, views and edits one program account's transactions.
    Editor,
    /// Program Account Manager.
    Pam,
    /// Business Account Manager.
    Bam,
}

impl Role {
    /// Returns the lowest role that allows `action` on a program account.
    pub fn needed_for(action: Action) -> Self {
        match action {
            Action::View => Self::Reader,
            Action::Edit => Self::Editor,
            Action::Manage => Self::Pam,
        }
    }
}

/// What an action is about: a business or one of its program accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A business (its details and the list of its program accounts).
    Business(Bn9),
    /// A program account (and its transactions).
    Program(Bn15),
}

impl Resource {
    /// Parses a BN9 or a BN15.
    pub fn parse(text: &str) -> Option<Self> {
        match text.len() {
            9 => Bn9::try_new(text).map(Self::Business),
            15 => Bn15::try_new(text).map(Self::Program),
            _ => None,
        }
    }

    /// Returns the business the resource belongs to.
    pub fn bn9(&self) -> &Bn9 {
        match self {
            Self::Business(bn) => bn,
            Self::Program(bn15) => bn15.bn9(),
        }
    }
}

impl From<Bn9> for Resource {
    fn from(bn: Bn9) -> Self {
        Self::Business(bn)
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Business(bn) => bn.fmt(f),
            Self::Program(bn) => bn.fmt(f),
        }
    }
}

/// One membership of a principal (from accounts' role facts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// True when the principal is a BAM of the business.
    pub business_manager: bool,
    /// Effective roles per program account (PAM, Editor or Reader).
    pub roles: BTreeMap<Bn15, Role>,
    /// The business's revision counter when read.
    pub revision: i64,
}

impl Membership {
    /// Returns true when the membership holds any role (a member without one is no member, R-AC-7).
    pub fn holds_a_role(&self) -> bool {
        self.business_manager || !self.roles.is_empty()
    }
}

/// A principal's memberships by business; empty for an orphan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleFacts {
    /// Memberships by BN9.
    pub memberships: BTreeMap<Bn9, Membership>,
}

/// One client a principal is assigned to by its provider (R-DE-5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientAssignment {
    /// The provider (the principal's business).
    pub provider: Bn9,
    /// The client.
    pub client: Bn9,
    /// Editor or Reader (the highest of direct and group assignments).
    pub role: Role,
}

/// A principal's client assignments (from delegation's assignment facts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssignmentFacts {
    /// The assignments.
    pub assignments: Vec<ClientAssignment>,
    /// The revision of each provider the principal has assignments with.
    pub revisions: BTreeMap<Bn9, i64>,
}

impl AssignmentFacts {
    /// Returns the highest role the principal is assigned to `client` with through `provider`.
    pub fn role(&self, provider: &Bn9, client: &Bn9) -> Option<Role> {
        self.assignments
            .iter()
            .filter(|a| &a.provider == provider && &a.client == client)
            .map(|a| a.role)
            .max()
    }
}

/// The level of a relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every program account of the client, present and future.
    Business,
    /// The listed program accounts only.
    Programs(BTreeSet<Bn15>),
}

/// Whose submissions a provider may see, beyond its own (always visible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VisibilityRules {
    /// Transactions the client submitted.
    pub client: bool,
    /// Transactions other businesses submitted.
    pub other_businesses: bool,
}

/// One relationship of a pair (from delegation's pair facts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    /// Business or program level.
    pub scope: Scope,
    /// The visibility rules.
    pub visibility: VisibilityRules,
    /// The expiry instant: active only strictly before it.
    pub expire_time: DateTime<Utc>,
    /// When it ended early, if it did.
    pub end_time: Option<DateTime<Utc>>,
}

impl Relationship {
    /// Returns true when the relationship is in force at `now` (R-DE-4: never at or after expiry).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        now < self.expire_time && self.end_time.is_none_or(|end| now < end)
    }

    /// Returns true when the relationship covers `resource` (a BN9 is covered by any relationship).
    pub fn covers(&self, resource: &Resource) -> bool {
        match (&self.scope, resource) {
            (_, Resource::Business(_)) | (Scope::Business, _) => true,
            (Scope::Programs(programs), Resource::Program(bn15)) => programs.contains(bn15),
        }
    }

    /// Returns the first instant at which the relationship is no longer active.
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.end_time
            .map_or(self.expire_time, |end| end.min(self.expire_time))
    }
}

/// The relationships of one (provider, client) pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PairFacts {
    /// Every relationship of the pair, ended ones included.
    pub relationships: Vec<Relationship>,
    /// The pair's revision counter when read.
    pub revision: i64,
}

/// Everything a decision reads: the principal's role and assignment facts,
/// the pair facts of each of its businesses with the resource's business, and
/// the program accounts of the businesses asked about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// The principal's memberships.
    pub roles: RoleFacts,
    /// The principal's client assignments.
    pub assignments: AssignmentFacts,
    /// Pair facts by (provider, client).
    pub pairs: BTreeMap<(Bn9, Bn9), PairFacts>,
    /// The program accounts of each business whose list was read (accounts' business facts).
    pub programs: BTreeMap<Bn9, BTreeSet<Bn15>>,
}

/// Read access to the facts a decision needs (implemented by [`Facts`] and by
/// the gateway's per-request view over cached facts).
pub trait FactSet {
    /// The principal's role facts.
    fn roles(&self) -> &RoleFacts;
    /// The principal's assignment facts.
    fn assignments(&self) -> &AssignmentFacts;
    /// The facts of one (provider, client) pair, if read.
    fn pair(&self, provider: &Bn9, client: &Bn9) -> Option<&PairFacts>;
    /// True when the facts show that `program`'s business has it (accounts'
    /// business facts). Otherwise the program account exists for a decision
    /// only through a role the principal holds on it (an unread list proves
    /// nothing: fewer facts never allow more).
    fn has_program_account(&self, program: &Bn15) -> bool;
}

impl FactSet for Facts {
    fn roles(&self) -> &RoleFacts {
        &self.roles
    }

    fn assignments(&self) -> &AssignmentFacts {
        &self.assignments
    }

    fn pair(&self, provider: &Bn9, client: &Bn9) -> Option<&PairFacts> {
        self.pairs.get(&(provider.clone(), client.clone()))
    }

    fn has_program_account(&self, program: &Bn15) -> bool {
        self.programs
            .get(program.bn9())
            .is_some_and(|listed| listed.contains(program))
    }
}

/// Why a decision allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowReason {
    /// The principal acts on itself (R-AZ-0).
    SelfService,
    /// The principal's own role in the business (R-AZ-1, R-AZ-5).
    OwnRole,
    /// An active relationship of its provider and its assignment (R-AZ-2, R-AZ-3).
    ProviderRelationship,
    /// An ended relationship; the provider views its own submission (R-AZ-4).
    ExpiredUserOwnSubmission,
}

/// Why a decision denied (R-AZ-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenyReason {
    /// The principal is a member of no business involved (an orphan or a removed member).
    NotAMember,
    /// The principal's business has no relationship with the resource's business.
    NoRelationship,
    /// The relationship has ended or expired.
    RelationshipEnded,
    /// The principal is not assigned to the client.
    NotAssigned,
    /// The relationship does not cover the program account.
    ProgramNotCovered,
    /// The principal holds no role on the resource.
    NoRole,
    /// The principal's role does not allow the action.
    RoleTooLow,
    /// The visibility rules do not include the transaction's submitter.
    Visibility,
    /// The principal is a revoked machine credential (R-GW-4).
    Revoked,
}

impl DenyReason {
    /// Returns the reason's place in R-AZ-6's fixed ranking (lower wins): the
    /// reason of the standpoint that got furthest is the answer.
    pub fn rank(self) -> u8 {
        match self {
            // Never decided here: a revoked credential is refused before any decision.
            Self::Revoked => 0,
            Self::Visibility => 1,
            Self::RoleTooLow => 2,
            Self::ProgramNotCovered => 3,
            Self::RelationshipEnded => 4,
            Self::NotAssigned => 5,
            Self::NoRole => 6,
            Self::NoRelationship => 7,
            Self::NotAMember => 8,
        }
    }

    /// Returns the better-ranked of two reasons (R-AZ-6).
    fn or_better(self, other: Self) -> Self {
        // Ranks are distinct, so which of two equals is kept cannot matter.
        std::cmp::min_by_key(self, other, |r| r.rank())
    }
}

/// The outcome of a decision, with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed, with the principal's effective role there.
    Allow {
        /// Why.
        reason: AllowReason,
        /// The effective role (the assignment's role for a provider).
        role: Role,
    },
    /// Denied.
    Deny(DenyReason),
}

impl Decision {
    /// Returns true for an allow.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

/// What a principal asks: may it perform `action` on `resource`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The action.
    pub action: Action,
    /// The business or program account.
    pub resource: Resource,
    /// The BN9 that submitted the existing transaction concerned (R-AZ-3);
    /// None means business or program details, or, with EDIT, a new submission.
    pub submitted_by: Option<Bn9>,
}

impl Question {
    /// Returns the question of `action` on `resource`, about no existing transaction.
    pub fn new(action: Action, resource: Resource) -> Self {
        Self {
            action,
            resource,
            submitted_by: None,
        }
    }

    /// Returns the same question about the existing transaction `submitted_by` submitted.
    pub fn submitted_by(mut self, submitted_by: Option<Bn9>) -> Self {
        self.submitted_by = submitted_by;
        self
    }
}

/// Decides whether `principal` may do what `question` asks (R-AZ-1..6).
///
/// Self-service RPCs (R-AZ-0) never reach this function: the policy table
/// allows them by name.
///
/// The question is looked at from standpoints: the principal's own
/// membership in the resource's business, and, as a provider, each other
/// business it holds a role in. Any standpoint allowing is an allow (the own
/// role first, then an active relationship with the highest role, then the
/// Expired-user rule). Otherwise each standpoint stops at its first failing
/// check and the best-ranked of their reasons is the answer
/// ([`DenyReason::rank`]), so the reason is a function of the facts alone.
pub fn decide(
    principal: &Principal,
    question: &Question,
    facts: &impl FactSet,
    now: DateTime<Utc>,
) -> Decision {
    let target = question.resource.bn9();
    let is_credential = matches!(principal, Principal::Credential(_));

    // R-AZ-1, R-AZ-5: the principal's own role in the resource's business.
    let roles = facts.roles();
    let mut reason = match roles.memberships.get(target).filter(|m| m.holds_a_role()) {
        None => DenyReason::NotAMember,
        Some(membership) => match own_role(membership, question, is_credential, facts) {
            Ok(role) => {
                return Decision::Allow {
                    reason: AllowReason::OwnRole,
                    role,
                };
            }
            Err(reason) => reason,
        },
    };

    // R-AZ-2..4: acting for the client through each provider business it holds a role in.
    let mut best: Option<(AllowReason, Role)> = None;
    for (provider, membership) in &roles.memberships {
        if provider == target || !membership.holds_a_role() {
            continue;
        }
        let standpoint = Provider {
            provider,
            client: target,
            membership,
            assigned: facts.assignments().role(provider, target),
            pair: facts.pair(provider, target),
            facts,
        };
        match standpoint.decide(question, now) {
            // An active relationship's allow before the Expired-user one, then the highest role.
            Ok(allow) => {
                let key = |(reason, role): (AllowReason, Role)| {
                    (reason == AllowReason::ProviderRelationship, role)
                };
                // Equal keys are equal allows (a provider allows for these two reasons only).
                best = Some(best.map_or(allow, |b| std::cmp::max_by_key(b, allow, |a| key(*a))));
            }
            Err(denied) => reason = reason.or_better(denied),
        }
    }
    match best {
        Some((reason, role)) => Decision::Allow { reason, role },
        None => Decision::Deny(reason),
    }
}

/// R-AZ-1, R-AZ-5: what a member's own roles allow on its own business,
/// checked in R-AZ-6's order: a BN9 (VIEW for every member, EDIT and MANAGE
/// for a BAM), then a role on the program (a BAM's role is on every program
/// account the business has), then a role high enough (never MANAGE for a
/// machine credential).
fn own_role(
    membership: &Membership,
    question: &Question,
    is_credential: bool,
    facts: &impl FactSet,
) -> Result<Role, DenyReason> {
    let action = question.action;
    let bam = membership.business_manager && !is_credential;
    let role = match &question.resource {
        Resource::Business(_) if bam => return Ok(Role::Bam),
        Resource::Business(_) if action == Action::View => {
            // Every member may VIEW its business.
            return Ok(membership
                .roles
                .values()
                .max()
                .copied()
                .unwrap_or(Role::Reader));
        }
        // EDIT and MANAGE of a BN9 are the BAM's.
        Resource::Business(_) => return Err(DenyReason::RoleTooLow),
        Resource::Program(bn15) => match membership.roles.get(bn15) {
            // A BAM holds every program account the business has, and no other.
            _ if bam
                && (facts.has_program_account(bn15) || membership.roles.contains_key(bn15)) =>
            {
                return Ok(Role::Bam);
            }
            None => return Err(DenyReason::NoRole),
            Some(&role) => role,
        },
    };
    // R-AZ-5: a machine credential never MANAGEs (and is never a BAM).
    if is_credential && action == Action::Manage {
        return Err(DenyReason::RoleTooLow);
    }
    if role >= Role::needed_for(action) {
        Ok(role)
    } else {
        Err(DenyReason::RoleTooLow)
    }
}

/// The provider standpoint (R-AZ-2..4): a member of `provider` acting for `client`.
struct Provider<'a, F> {
    provider: &'a Bn9,
    client: &'a Bn9,
    /// The principal's membership in the provider.
    membership: &'a Membership,
    /// The highest role the principal is assigned to the client with, if any.
    assigned: Option<Role>,
    /// The pair's facts, if read.
    pair: Option<&'a PairFacts>,
    /// The facts (which program accounts the client has).
    facts: &'a F,
}

impl<F: FactSet> Provider<'_, F> {
    /// R-AZ-2..4: what the principal may do for the client, checked in
    /// R-AZ-6's order: a relationship exists, the principal is assigned, one
    /// is active (else the Expired-user rule), then the active one's powers.
    fn decide(
        &self,
        question: &Question,
        now: DateTime<Utc>,
    ) -> Result<(AllowReason, Role), DenyReason> {
        let relationships = self
            .pair
            .map(|p| p.relationships.as_slice())
            .unwrap_or_default();
        if relationships.is_empty() {
            return Err(DenyReason::NoRelationship);
        }
        // The provider's BAM counts as assigned to every client as Editor (R-AZ-2);
        // a machine credential is never a BAM, and its role never exceeds its assignment.
        let role = if self.membership.business_manager {
            self.assigned.map_or(Role::Editor, |r| r.max(Role::Editor))
        } else {
            self.assigned.ok_or(DenyReason::NotAssigned)?
        };
        let mut active = relationships.iter().filter(|r| r.is_active(now)).peekable();
        if active.peek().is_none() {
            // R-AZ-4: Expired user — no relationship of the pair is active and one
            // has ended (all of them have): VIEW of the provider's own submissions
            // on the client's program accounts, nothing else.
            return match &question.resource {
                Resource::Program(bn15)
                    if question.action == Action::View
                        && question.submitted_by.as_ref() == Some(self.provider)
                        && self.facts.has_program_account(bn15) =>
                {
                    Ok((AllowReason::ExpiredUserOwnSubmission, Role::Reader))
                }
                _ => Err(DenyReason::RelationshipEnded),
            };
        }
        // At most one relationship of a pair is active; should the facts hold
        // more, any of them allowing is an allow, and the best reason explains.
        let mut reason: Option<DenyReason> = None;
        for relationship in active {
            match self.active_relationship(relationship, role, question) {
                Ok(power) => return Ok((AllowReason::ProviderRelationship, power)),
                Err(denied) => reason = Some(reason.map_or(denied, |r| r.or_better(denied))),
            }
        }
        Err(reason.unwrap_or(DenyReason::RelationshipEnded))
    }

    /// R-AZ-2, R-AZ-3: an active relationship's powers, for a principal
    /// assigned with `role`.
    fn active_relationship(
        &self,
        relationship: &Relationship,
        role: Role,
        question: &Question,
    ) -> Result<Role, DenyReason> {
        let (action, resource) = (question.action, &question.resource);
        match resource {
            // A provider may VIEW the client's BN9 but never EDIT or MANAGE it.
            Resource::Business(_) if action != Action::View => {
                return Err(DenyReason::RoleTooLow);
            }
            Resource::Business(_) => {}
            // Only the client's program accounts are covered: a business-level
            // relationship covers every one it has, and none it does not.
            Resource::Program(bn15) => {
                if !relationship.covers(resource) || !self.facts.has_program_account(bn15) {
                    return Err(DenyReason::ProgramNotCovered);
                }
            }
        }
        // A provider never MANAGEs anything of the client's.
        if action == Action::Manage {
            return Err(DenyReason::RoleTooLow);
        }
        // R-AZ-3: an existing transaction is visible by its submitter's class; EDIT needs VIEW of it.
        if let Some(submitter) = &question.submitted_by {
            let visible = if submitter == self.provider {
                true
            } else if submitter == self.client {
                relationship.visibility.client
            } else {
                relationship.visibility.other_businesses
            };
            if !visible {
                return Err(DenyReason::Visibility);
            }
        }
        // Its power is the assignment's role (Editor or Reader).
        let power = role.min(Role::Editor);
        if power < Role::needed_for(action) {
            return Err(DenyReason::RoleTooLow);
        }
        Ok(power)
    }
}

/// Returns the earliest instant at which a decision over `pairs` could change
/// by the clock alone: the end of every active relationship.
pub fn earliest_expiry<'a>(
    pairs: impl IntoIterator<Item = &'a PairFacts>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    pairs
        .into_iter()
        .flat_map(|p| p.relationships.iter())
        .filter(|r| r.is_active(now))
        .map(Relationship::ends_at)
        .min()
}

#[cfg(test)]
mod tests;
