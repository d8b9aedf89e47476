//! Edge conversion: the facts services' protos to the decision's domain types.

use std::collections::{BTreeMap, BTreeSet};

use ccp_proto::accounts::v1 as acc;
use ccp_proto::delegation::v1 as del;
use ccp_types::{Bn9, Bn15};

use crate::decide::{
    AssignmentFacts, ClientAssignment, Membership, PairFacts, Relationship, Role, RoleFacts, Scope,
    VisibilityRules,
};

/// Converts a proto role to a domain role (UNSPECIFIED and unknown values are no role).
pub fn role_from_proto(role: i32) -> Option<Role> {
    use ccp_proto::common::v1::Role as P;
    match P::try_from(role).ok()? {
        P::Reader => Some(Role::Reader),
        P::Editor => Some(Role::Editor),
        P::Pam => Some(Role::Pam),
        P::Bam => Some(Role::Bam),
        P::Unspecified => None,
    }
}

/// Converts accounts' role facts. Malformed entries are dropped: a fact that
/// cannot be read gives no access (removing facts never allows more).
pub fn role_facts_from_proto(proto: &acc::RoleFacts) -> RoleFacts {
    let mut memberships = BTreeMap::new();
    for m in &proto.memberships {
        let Some(bn) = Bn9::try_new(&m.business) else {
            continue;
        };
        let roles = m
            .roles
            .iter()
            .filter_map(|r| {
                let program = Bn15::try_new(&r.program_account)?;
                // A program role is on the business's own programs, and never BAM.
                let role = role_from_proto(r.role).filter(|role| *role != Role::Bam)?;
                (*program.bn9() == bn).then_some((program, role))
            })
            .fold(BTreeMap::new(), |mut acc: BTreeMap<Bn15, Role>, (p, r)| {
                let e = acc.entry(p).or_insert(r);
                *e = (*e).max(r);
                acc
            });
        memberships.insert(
            bn,
            Membership {
                business_manager: m.business_manager,
                roles,
                revision: m.revision,
            },
        );
    }
    RoleFacts { memberships }
}

/// Converts delegation's assignment facts.
pub fn assignment_facts_from_proto(proto: &del::AssignmentFacts) -> AssignmentFacts {
    let assignments = proto
        .assignments
        .iter()
        .filter_map(|a| {
            Some(ClientAssignment {
                provider: Bn9::try_new(&a.provider)?,
                client: Bn9::try_new(&a.client)?,
                // A provider's assignment is Editor or Reader at most.
                role: role_from_proto(a.role)?.min(Role::Editor),
            })
        })
        .collect();
    let revisions = proto
        .revisions
        .iter()
        .filter_map(|r| Some((Bn9::try_new(&r.provider)?, r.revision)))
        .collect();
    AssignmentFacts {
        assignments,
        revisions,
    }
}

/// Converts one relationship fact; None when it cannot be read (no expiry, bad level).
pub fn relationship_from_proto(r: &del::RelationshipFact) -> Option<Relationship> {
    let expire_time = ccp_platform::store::from_timestamp(r.expire_time.as_ref()?)?;
    let end_time = match &r.end_time {
        Some(ts) => Some(ccp_platform::store::from_timestamp(ts)?),
        None => None,
    };
    let scope = match del::RelationshipLevel::try_from(r.level).ok()? {
        del::RelationshipLevel::Business => Scope::Business,
        del::RelationshipLevel::Program => Scope::Programs(
            r.program_accounts
                .iter()
                .filter_map(|p| Bn15::try_new(p))
                .collect::<BTreeSet<_>>(),
        ),
        del::RelationshipLevel::Unspecified => return None,
    };
    let has = |v: del::Visibility| r.visibility.contains(&(v as i32));
    Some(Relationship {
        scope,
        visibility: VisibilityRules {
            client: has(del::Visibility::SubmittedByClient),
            other_businesses: has(del::Visibility::SubmittedByOtherBusinesses),
        },
        expire_time,
        end_time,
    })
}

/// Converts delegation's pair facts.
pub fn pair_facts_from_proto(proto: &del::PairFacts) -> PairFacts {
    PairFacts {
        relationships: proto
            .relationships
            .iter()
            .filter_map(relationship_from_proto)
            .collect(),
        revision: proto.revision,
    }
}
