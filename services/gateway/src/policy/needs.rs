//! The needs a request's requirements come to, and what each asks of the
//! facts. A need of one action on one resource is the decision function's
//! ([`crate::decide::decide`]); the compound ones — managing some program,
//! changing a member, changing an employee group, rejecting a relationship
//! request — are spelled out here, beside the table that uses them.

use ccp_platform::auth::Principal;
use ccp_types::{Bn9, Bn15};
use chrono::{DateTime, Utc};

use crate::decide::{Action, Question, Resource, Role, RoleFacts};
use crate::facts::{FactsCache, FactsError, FactsView};

/// One thing a request needs to be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// An action on a business or program account, decided by [`crate::decide::decide`].
    Act {
        /// The action.
        action: Action,
        /// The resource.
        resource: Resource,
    },
    /// Managing some of a business's people or requests: a BAM of it, or a
    /// PAM of at least one of its programs (the service narrows to that scope).
    ManageSomeProgram(Bn9),
    /// Changing or removing a member: MANAGE of every program it holds a role
    /// on, and of the business when it is a BAM or a machine credential
    /// (read from the member's current role facts).
    ManageMember {
        /// The business.
        business: Bn9,
        /// The member.
        member: Principal,
    },
    /// Rejecting a received relationship request (R-DE-2): MANAGE of the
    /// client (BAM), or, when the request names program accounts, MANAGE of
    /// every one of them (PAM); read from the request's facts. An unknown
    /// request is denied (unless the caller is the client's BAM).
    RejectRelationshipRequest {
        /// The client, from the request's name.
        client: Bn9,
        /// The request's resource name.
        name: String,
    },
    /// Changing an existing employee group (R-AC-6): MANAGE of the business
    /// (BAM), or MANAGE of every program the group covers now (PAM), read
    /// from accounts' group facts. A group that is unknown, covers no
    /// program or is not the business's is denied (unless the caller is its BAM).
    ManageEmployeeGroup {
        /// The business, from the group's name.
        business: Bn9,
        /// The group's resource name.
        name: String,
    },
}

impl Need {
    /// Returns true when the view's principal meets the need, reading the
    /// facts it asks for through `facts`.
    pub async fn is_met(
        &self,
        view: &mut FactsView,
        facts: &FactsCache,
        now: DateTime<Utc>,
    ) -> Result<bool, FactsError> {
        match self {
            Self::Act { action, resource } => {
                let question = Question::new(*action, resource.clone());
                Ok(view.decide(facts, &question, now).await?.is_allow())
            }
            Self::ManageSomeProgram(bn) => Ok(manages_some_program(
                view.principal(),
                view.role_facts(),
                bn,
            )),
            Self::ManageMember { business, member } => {
                for question in member_needs(facts, view, business, member).await? {
                    if !view.decide(facts, &question, now).await?.is_allow() {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Self::RejectRelationshipRequest { client, name } => {
                rejects_request(view, facts, client, name, now).await
            }
            Self::ManageEmployeeGroup { business, name } => {
                changes_group(view, facts, business, name, now).await
            }
        }
    }
}

/// A BAM of `bn`, or a PAM of one of its programs; never a machine credential.
fn manages_some_program(principal: &Principal, roles: &RoleFacts, bn: &Bn9) -> bool {
    principal.is_person()
        && roles
            .memberships
            .get(bn)
            .is_some_and(|m| m.business_manager || m.roles.values().any(|r| *r >= Role::Pam))
}

/// What changing `member` of `business` needs: MANAGE of every program it
/// holds, and of the business when it is a BAM or a machine credential.
async fn member_needs(
    facts: &FactsCache,
    view: &mut FactsView,
    business: &Bn9,
    member: &Principal,
) -> Result<Vec<Question>, FactsError> {
    let manage = |resource| Question::new(Action::Manage, resource);
    let mut needs = Vec::new();
    if !member.is_person() {
        needs.push(manage(Resource::Business(business.clone())));
    }
    let roles = facts.role_facts(member, view.revision()).await?;
    view.saw_membership(&roles, business);
    if let Some(m) = roles.memberships.get(business) {
        if m.business_manager {
            needs.push(manage(Resource::Business(business.clone())));
        }
        for program in m.roles.keys() {
            needs.push(manage(Resource::Program(program.clone())));
        }
    }
    Ok(needs)
}

/// Rejecting the received request `name` of `client` (R-DE-2): MANAGE of
/// the client (its BAM); else, for a request of `client` naming program
/// accounts, MANAGE of every one of them (a PAM of them all). A request
/// that is unknown, names no programs, or is not `client`'s is denied.
async fn rejects_request(
    view: &mut FactsView,
    facts: &FactsCache,
    client: &Bn9,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, FactsError> {
    let business = Question::new(Action::Manage, Resource::Business(client.clone()));
    if view.decide(facts, &business, now).await?.is_allow() {
        return Ok(true);
    }
    let Some(request) = facts.request_facts(name).await? else {
        return Ok(false);
    };
    if request.client != client.as_str() {
        return Ok(false);
    }
    manages_every_program(view, facts, client, &request.program_accounts, now).await
}

/// Changing the employee group `name` of `business` (R-AC-6): MANAGE of
/// the business (its BAM); else MANAGE of every program the group covers
/// now, read from accounts' group facts (a PAM of them all). A group that
/// is unknown, covers no program, or is not `business`'s is denied; a
/// caller that is not even a PAM of the business is denied without asking.
async fn changes_group(
    view: &mut FactsView,
    facts: &FactsCache,
    business: &Bn9,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, FactsError> {
    let whole = Question::new(Action::Manage, Resource::Business(business.clone()));
    if view.decide(facts, &whole, now).await?.is_allow() {
        return Ok(true);
    }
    if !manages_some_program(view.principal(), view.role_facts(), business) {
        return Ok(false);
    }
    let Some(group) = facts.employee_group_facts(name).await? else {
        return Ok(false);
    };
    if group.business != business.as_str() {
        return Ok(false);
    }
    manages_every_program(view, facts, business, &group.program_accounts, now).await
}

/// True when `programs` is not empty and every one of them is a program
/// account of `business` that the view's principal may MANAGE.
async fn manages_every_program(
    view: &mut FactsView,
    facts: &FactsCache,
    business: &Bn9,
    programs: &[String],
    now: DateTime<Utc>,
) -> Result<bool, FactsError> {
    if programs.is_empty() {
        return Ok(false);
    }
    for program in programs {
        let Some(program) = Bn15::try_new(program) else {
            return Ok(false);
        };
        if program.bn9() != business {
            return Ok(false);
        }
        let question = Question::new(Action::Manage, Resource::Program(program));
        if !view.decide(facts, &question, now).await?.is_allow() {
            return Ok(false);
        }
    }
    Ok(true)
}
