//! The requirements a policy row states, and how each is read from a request
//! into [`Need`]s. A requirement names the request fields it reads by their
//! paths, so a bad field is named in the INVALID_ARGUMENT answer and the same
//! path is written in `docs/policy.md` ([`super::words`]).

use ccp_platform::auth::Principal;
use ccp_proto::common::v1::ProgramRole;
use ccp_types::{Bn9, Bn15, FieldViolation, ProgramAccountRef, parse_business_child};

use super::Need;
use crate::decide::{Action, Resource};

/// A text field of the request `R`: its path and how to read it.
pub struct Field<R> {
    /// The field's path, e.g. `parent` or `group.name`.
    pub name: &'static str,
    /// Reads it (empty when unset).
    pub get: fn(&R) -> &str,
}

/// A repeated field of the request `R`: its path and how to read it.
pub struct List<R, T: 'static> {
    /// The field's path, e.g. `program_accounts` or `group.roles`.
    pub name: &'static str,
    /// Reads it (empty when unset).
    pub get: fn(&R) -> &[T],
}

/// The most entries of a repeated field the table reads (R-IN-1): the limit
/// every service applies to each of them (program roles, principals, program
/// accounts), checked here too, before the gateway reads one fact, so a
/// request of 100,000 entries costs one comparison at the gateway as well.
pub const MAX_LIST: usize = 1000;

impl<R, T> List<R, T> {
    /// Returns the field's entries, or the violation naming it when it has
    /// more than [`MAX_LIST`] (the entries are not looked at).
    pub fn items<'r>(&self, request: &'r R) -> Result<&'r [T], FieldViolation> {
        let items = (self.get)(request);
        if items.len() > MAX_LIST {
            return Err(FieldViolation::new(
                self.name,
                format!("must have at most {MAX_LIST} entries (has {})", items.len()),
            ));
        }
        Ok(items)
    }
}

/// A boolean field of the request `R`: its path and how to read it.
pub struct Flag<R> {
    /// The field's path, e.g. `grants.business_manager`.
    pub name: &'static str,
    /// Reads it (false when unset).
    pub get: fn(&R) -> bool,
}

/// A condition on the request `R`, with the words that say it.
pub struct Condition<R> {
    /// The condition in words, e.g. "`parent` is `profiles/me`".
    pub words: &'static str,
    /// Returns true when it holds.
    pub holds: fn(&R) -> bool,
}

/// Where a requirement finds a business in the request.
pub enum Place<R> {
    /// `businesses/{bn9}` in a field; `who` names the business's part in the
    /// RPC (`provider`, `client`) or is empty.
    Business(Field<R>, &'static str),
    /// The business of `businesses/{bn9}/{collection}/{id}` in a field; `who`
    /// names the business's part, or is empty.
    Child {
        /// The field.
        field: Field<R>,
        /// The collection, e.g. `employeeRequests`.
        collection: &'static str,
        /// The business's part in the RPC, or empty.
        who: &'static str,
    },
    /// The business of a member `businesses/{bn9}/members/{principal}` in a field.
    Member(Field<R>),
}

impl<R> Place<R> {
    /// Returns the business the request names here.
    pub fn read(&self, request: &R) -> Result<Bn9, FieldViolation> {
        match self {
            Self::Business(field, _) => {
                ccp_types::BusinessRef::parse((field.get)(request), field.name)
            }
            Self::Child {
                field, collection, ..
            } => Ok(parse_business_child((field.get)(request), collection, field.name)?.business),
            Self::Member(field) => Ok(member((field.get)(request), field.name)?.0),
        }
    }
}

/// One requirement of a policy row.
pub enum Require<R> {
    /// Nothing the decision function decides: the caller acts on itself, on
    /// what the words say.
    Itself(&'static str),
    /// The action on the business a place names.
    Act(Action, Place<R>),
    /// Managing some of a business's people or requests: a BAM of it, or a
    /// PAM of at least one of its programs (the service narrows to that scope).
    SomeProgram(Place<R>),
    /// MANAGE of the program account (a BN15) a field names, when it is set.
    ManageProgramIfSet(Field<R>),
    /// MANAGE of every program account (BN15s) a repeated field names.
    ManageEachProgram(List<R, String>),
    /// MANAGE of the program account of each program role of a repeated field.
    ManageEachProgramRole(List<R, ProgramRole>),
    /// MANAGE of the business a place names, when a flag is set (granting BAM).
    ManageBusinessIf(Place<R>, Flag<R>),
    /// MANAGE of the business of the employee group a field names, when one
    /// of the principals is a machine credential (a credential acts with the
    /// roles its BAM gives it, R-ID-4).
    ManageBusinessIfCredential {
        /// The group's name `businesses/{bn9}/employeeGroups/{id}`.
        group: Field<R>,
        /// The principals added or removed.
        principals: List<R, String>,
    },
    /// Changing or removing the member `businesses/{bn9}/members/{principal}`
    /// a field names ([`Need::ManageMember`]).
    ManageMember(Field<R>),
    /// Changing the existing employee group `businesses/{bn9}/employeeGroups/{id}`
    /// a field names ([`Need::ManageEmployeeGroup`]).
    ManageEmployeeGroup(Field<R>),
    /// Rejecting the received relationship request
    /// `businesses/{bn9}/receivedRequests/{id}` a field names
    /// ([`Need::RejectRelationshipRequest`]).
    RejectRelationshipRequest(Field<R>),
    /// The first requirements when the condition holds, else the others.
    Either {
        /// The condition.
        when: Condition<R>,
        /// The requirements when it holds.
        then: Vec<Require<R>>,
        /// The requirements when it does not.
        otherwise: Vec<Require<R>>,
    },
}

impl<R> Require<R> {
    /// Reads the requirement's needs from `request` into `needs`, or names the
    /// field that does not name what it must.
    pub fn read(&self, request: &R, needs: &mut Vec<Need>) -> Result<(), FieldViolation> {
        match self {
            Self::Itself(_) => {}
            Self::Act(action, place) => needs.push(Need::Act {
                action: *action,
                resource: Resource::Business(place.read(request)?),
            }),
            Self::SomeProgram(place) => needs.push(Need::ManageSomeProgram(place.read(request)?)),
            Self::ManageProgramIfSet(field) => {
                let text = (field.get)(request);
                if !text.is_empty() {
                    needs.push(manage_program(bn15(text, field.name)?));
                }
            }
            Self::ManageEachProgram(list) => {
                for (i, text) in list.items(request)?.iter().enumerate() {
                    needs.push(manage_program(bn15(text, &format!("{}[{i}]", list.name))?));
                }
            }
            Self::ManageEachProgramRole(list) => {
                for (i, role) in list.items(request)?.iter().enumerate() {
                    let field = format!("{}[{i}].program_account", list.name);
                    needs.push(manage_program(bn15(&role.program_account, &field)?));
                }
            }
            Self::ManageBusinessIf(place, flag) => {
                if (flag.get)(request) {
                    needs.push(Need::Act {
                        action: Action::Manage,
                        resource: Resource::Business(place.read(request)?),
                    });
                }
            }
            Self::ManageBusinessIfCredential { group, principals } => {
                let business =
                    parse_business_child((group.get)(request), "employeeGroups", group.name)?
                        .business;
                for (i, text) in principals.items(request)?.iter().enumerate() {
                    let principal: Principal = text.parse().map_err(|_| {
                        FieldViolation::new(
                            format!("{}[{i}]", principals.name),
                            "is not a principal",
                        )
                    })?;
                    if !principal.is_person() {
                        needs.push(Need::Act {
                            action: Action::Manage,
                            resource: Resource::Business(business),
                        });
                        break;
                    }
                }
            }
            Self::ManageMember(field) => {
                let (business, member) = member((field.get)(request), field.name)?;
                needs.push(Need::ManageMember { business, member });
            }
            Self::ManageEmployeeGroup(field) => {
                let name = (field.get)(request);
                needs.push(Need::ManageEmployeeGroup {
                    business: parse_business_child(name, "employeeGroups", field.name)?.business,
                    name: name.to_owned(),
                });
            }
            Self::RejectRelationshipRequest(field) => {
                let name = (field.get)(request);
                needs.push(Need::RejectRelationshipRequest {
                    client: parse_business_child(name, "receivedRequests", field.name)?.business,
                    name: name.to_owned(),
                });
            }
            Self::Either {
                when,
                then,
                otherwise,
            } => {
                let chosen = if (when.holds)(request) {
                    then
                } else {
                    otherwise
                };
                for requirement in chosen {
                    requirement.read(request, needs)?;
                }
            }
        }
        Ok(())
    }
}

fn manage_program(program: Bn15) -> Need {
    Need::Act {
        action: Action::Manage,
        resource: Resource::Program(program),
    }
}

fn bn15(text: &str, field: &str) -> Result<Bn15, FieldViolation> {
    ProgramAccountRef::parse(text, field)
}

/// Parses `businesses/{bn9}/members/{principal}`.
fn member(name: &str, field: &str) -> Result<(Bn9, Principal), FieldViolation> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["businesses", bn, "members", who] => {
            let who = who.parse().map_err(|_| {
                FieldViolation::new(
                    field,
                    "must name a member person:<uuid> or credential:<uuid>",
                )
            })?;
            Ok((Bn9::parse(bn, field)?, who))
        }
        _ => Err(FieldViolation::new(
            field,
            "must be businesses/{bn9}/members/{principal}",
        )),
    }
}
