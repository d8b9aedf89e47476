#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Unit tests of `decide`, one or more per rule (names carry the rule ids),
//! and property tests: it never panics, removing a fact never turns a deny
//! into an allow, and nothing is allowed through a relationship at or after
//! its expiry instant.

use super::*;
use ccp_types::{Bn9, Bn15};
use chrono::{Duration, TimeZone};
use proptest::prelude::*;
use rstest::rstest;
use uuid::Uuid;

const CLIENT: &str = "123456782";
const PROVIDER: &str = "100000009";
const OTHER: &str = "200000008";

fn bn(s: &str) -> Bn9 {
    Bn9::try_new(s).expect("valid bn9")
}

fn program(s: &str, n: u16) -> Bn15 {
    Bn15::try_new(&format!("{s}RM{n:04}")).expect("valid bn15")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn person() -> Principal {
    Principal::Person(Uuid::from_u128(1))
}

fn credential() -> Principal {
    Principal::Credential(Uuid::from_u128(2))
}

fn member(bam: bool, roles: &[(Bn15, Role)]) -> Membership {
    Membership {
        business_manager: bam,
        roles: roles.iter().cloned().collect(),
        revision: 1,
    }
}

fn with_membership(facts: &mut Facts, business: &str, m: Membership) {
    facts.roles.memberships.insert(bn(business), m);
}

fn relationship(scope: Scope, visibility: VisibilityRules) -> Relationship {
    Relationship {
        scope,
        visibility,
        expire_time: now() + Duration::days(30),
        end_time: None,
    }
}

fn provider_facts(role: Option<Role>, bam: bool, rel: Option<Relationship>) -> Facts {
    let mut facts = Facts::default();
    with_membership(
        &mut facts,
        PROVIDER,
        member(bam, &[(program(PROVIDER, 1), Role::Reader)]),
    );
    if let Some(role) = role {
        facts.assignments.assignments.push(ClientAssignment {
            provider: bn(PROVIDER),
            client: bn(CLIENT),
            role,
        });
    }
    facts.pairs.insert(
        (bn(PROVIDER), bn(CLIENT)),
        PairFacts {
            relationships: rel.into_iter().collect(),
            revision: 1,
        },
    );
    facts
}

fn check(
    p: &Principal,
    action: Action,
    resource: Resource,
    submitted_by: Option<&str>,
    facts: &Facts,
) -> Decision {
    let question = Question::new(action, resource).submitted_by(submitted_by.map(bn));
    decide(p, &question, facts, now())
}

fn prog(n: u16) -> Resource {
    Resource::Program(program(CLIENT, n))
}

fn biz() -> Resource {
    Resource::Business(bn(CLIENT))
}

fn allow(reason: AllowReason) -> impl Fn(Decision) -> bool {
    move |d| matches!(d, Decision::Allow { reason: r, .. } if r == reason)
}

#[test]
fn parses_business_and_program_numbers() {
    assert!(Bn9::try_new("123456782").is_some());
    assert!(Bn9::try_new("123456789").is_none());
    assert!(Bn9::try_new("12345678").is_none());
    assert!(Bn15::try_new("123456782RM0001").is_some());
    assert!(Bn15::try_new("123456782RM0000").is_none());
    assert!(Bn15::try_new("123456782RT0001").is_none());
    assert!(Bn15::try_new("123456789RM0001").is_none());
    assert_eq!(
        Resource::parse("123456782RM0001").unwrap().bn9(),
        &bn("123456782")
    );
    assert!(Resource::parse("ééééééééé").is_none());
    assert!(Resource::parse("123456782RMé001").is_none());
}

#[test]
fn r_az_0_an_orphan_is_not_a_member() {
    let facts = Facts::default();
    for action in [Action::View, Action::Edit, Action::Manage] {
        assert_eq!(
            check(&person(), action, biz(), None, &facts),
            Decision::Deny(DenyReason::NotAMember)
        );
    }
}

#[test]
fn r_az_1_every_member_may_view_the_business_but_not_its_unheld_programs() {
    let mut facts = Facts::default();
    with_membership(
        &mut facts,
        CLIENT,
        member(false, &[(program(CLIENT, 1), Role::Reader)]),
    );
    assert!(allow(AllowReason::OwnRole)(check(
        &person(),
        Action::View,
        biz(),
        None,
        &facts
    )));
    assert_eq!(
        check(&person(), Action::View, prog(2), None, &facts),
        Decision::Deny(DenyReason::NoRole)
    );
    assert_eq!(
        check(&person(), Action::Edit, biz(), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
}

#[rstest]
#[case::reader_views(Role::Reader, Action::View, true)]
#[case::reader_does_not_edit(Role::Reader, Action::Edit, false)]
#[case::reader_does_not_manage(Role::Reader, Action::Manage, false)]
#[case::editor_views(Role::Editor, Action::View, true)]
#[case::editor_edits(Role::Editor, Action::Edit, true)]
#[case::editor_does_not_manage(Role::Editor, Action::Manage, false)]
#[case::pam_views(Role::Pam, Action::View, true)]
#[case::pam_edits(Role::Pam, Action::Edit, true)]
#[case::pam_manages(Role::Pam, Action::Manage, true)]
fn r_az_1_reader_views_editor_edits_pam_manages_its_programs(
    #[case] role: Role,
    #[case] action: Action,
    #[case] allowed: bool,
) {
    let mut facts = Facts::default();
    with_membership(
        &mut facts,
        CLIENT,
        member(false, &[(program(CLIENT, 1), role)]),
    );
    let expected = if allowed {
        Decision::Allow {
            reason: AllowReason::OwnRole,
            role,
        }
    } else {
        Decision::Deny(DenyReason::RoleTooLow)
    };
    assert_eq!(check(&person(), action, prog(1), None, &facts), expected);
    // No program role manages the business itself (granting BAM is the BAM's).
    assert_eq!(
        check(&person(), Action::Manage, biz(), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
}

#[test]
fn r_az_1_bam_does_everything_on_every_program_and_manages_the_business() {
    let mut facts = Facts::default();
    with_membership(&mut facts, CLIENT, member(true, &[]));
    for action in [Action::View, Action::Edit, Action::Manage] {
        for resource in [biz(), prog(1), prog(9999)] {
            assert_eq!(
                check(&person(), action, resource, Some(OTHER), &facts),
                Decision::Allow {
                    reason: AllowReason::OwnRole,
                    role: Role::Bam
                }
            );
        }
    }
}

#[test]
fn r_az_1_a_bam_of_another_business_has_no_relationship() {
    let mut facts = Facts::default();
    with_membership(&mut facts, OTHER, member(true, &[]));
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::NoRelationship)
    );
}

#[test]
fn r_az_1_a_pam_of_another_program_holds_no_role_there() {
    let mut facts = Facts::default();
    with_membership(
        &mut facts,
        CLIENT,
        member(false, &[(program(CLIENT, 2), Role::Pam)]),
    );
    assert_eq!(
        check(&person(), Action::Manage, prog(1), None, &facts),
        Decision::Deny(DenyReason::NoRole)
    );
}

#[test]
fn r_az_1_a_member_left_without_roles_is_not_a_member() {
    let mut facts = Facts::default();
    with_membership(&mut facts, CLIENT, member(false, &[]));
    assert_eq!(
        check(&person(), Action::View, biz(), None, &facts),
        Decision::Deny(DenyReason::NotAMember)
    );
}

#[test]
fn r_az_5_a_machine_credential_acts_with_its_roles_and_never_manages() {
    let mut facts = Facts::default();
    // Even facts claiming BAM never give a credential more than its program roles.
    with_membership(
        &mut facts,
        CLIENT,
        member(true, &[(program(CLIENT, 1), Role::Editor)]),
    );
    assert!(allow(AllowReason::OwnRole)(check(
        &credential(),
        Action::Edit,
        prog(1),
        None,
        &facts
    )));
    assert_eq!(
        check(&credential(), Action::Manage, prog(1), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
    assert_eq!(
        check(&credential(), Action::Manage, biz(), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
    assert_eq!(
        check(&credential(), Action::View, prog(2), None, &facts),
        Decision::Deny(DenyReason::NoRole)
    );
}

#[test]
fn r_az_2_an_assigned_provider_employee_acts_with_the_assignment_role() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let facts = provider_facts(Some(Role::Reader), false, Some(rel.clone()));
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Allow {
            reason: AllowReason::ProviderRelationship,
            role: Role::Reader
        }
    );
    assert_eq!(
        check(&person(), Action::Edit, prog(1), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
    let facts = provider_facts(Some(Role::Editor), false, Some(rel));
    assert_eq!(
        check(&person(), Action::Edit, prog(7), None, &facts),
        Decision::Allow {
            reason: AllowReason::ProviderRelationship,
            role: Role::Editor
        }
    );
}

#[test]
fn r_az_2_an_unassigned_provider_employee_is_denied() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let facts = provider_facts(None, false, Some(rel));
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::NotAssigned)
    );
}

#[test]
fn r_az_2_the_provider_bam_counts_as_assigned_editor() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let facts = provider_facts(None, true, Some(rel));
    assert_eq!(
        check(&person(), Action::Edit, prog(1), None, &facts),
        Decision::Allow {
            reason: AllowReason::ProviderRelationship,
            role: Role::Editor
        }
    );
}

#[test]
fn r_az_2_a_removed_provider_member_is_denied() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let mut facts = provider_facts(Some(Role::Editor), false, Some(rel));
    facts.roles.memberships.clear();
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::NotAMember)
    );
}

#[test]
fn r_az_2_program_level_covers_its_programs_only() {
    let programs = [program(CLIENT, 1)].into_iter().collect();
    let rel = relationship(Scope::Programs(programs), VisibilityRules::default());
    let facts = provider_facts(Some(Role::Editor), false, Some(rel));
    assert!(allow(AllowReason::ProviderRelationship)(check(
        &person(),
        Action::Edit,
        prog(1),
        None,
        &facts
    )));
    assert_eq!(
        check(&person(), Action::View, prog(2), None, &facts),
        Decision::Deny(DenyReason::ProgramNotCovered)
    );
}

#[test]
fn r_az_2_a_provider_never_manages_the_client() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let facts = provider_facts(Some(Role::Editor), true, Some(rel));
    for resource in [biz(), prog(1)] {
        assert_eq!(
            check(&person(), Action::Manage, resource, None, &facts),
            Decision::Deny(DenyReason::RoleTooLow)
        );
    }
}

#[test]
fn r_az_2_no_relationship_is_denied() {
    let facts = provider_facts(Some(Role::Editor), false, None);
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::NoRelationship)
    );
}

#[test]
fn r_az_2_access_ends_exactly_at_the_expiry_instant() {
    let mut rel = relationship(Scope::Business, VisibilityRules::default());
    rel.expire_time = now();
    let facts = provider_facts(Some(Role::Editor), false, Some(rel.clone()));
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
    rel.expire_time = now() + Duration::milliseconds(1);
    let facts = provider_facts(Some(Role::Editor), false, Some(rel));
    assert!(check(&person(), Action::View, prog(1), None, &facts).is_allow());
}

#[test]
fn r_az_2_a_relationship_ended_early_is_ended() {
    let mut rel = relationship(Scope::Business, VisibilityRules::default());
    rel.end_time = Some(now() - Duration::seconds(1));
    let facts = provider_facts(Some(Role::Editor), false, Some(rel));
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
}

#[test]
fn r_az_3_a_provider_views_the_client_bn9_but_never_edits_it() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let facts = provider_facts(Some(Role::Editor), false, Some(rel));
    assert!(allow(AllowReason::ProviderRelationship)(check(
        &person(),
        Action::View,
        biz(),
        None,
        &facts
    )));
    assert_eq!(
        check(&person(), Action::Edit, biz(), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
}

const NONE_VISIBLE: VisibilityRules = VisibilityRules {
    client: false,
    other_businesses: false,
};
const CLIENT_VISIBLE: VisibilityRules = VisibilityRules {
    client: true,
    other_businesses: false,
};
const ALL_VISIBLE: VisibilityRules = VisibilityRules {
    client: true,
    other_businesses: true,
};

/// `expected` None is an allow.
#[rstest]
// Its own submissions are always visible, and editable by an Editor.
#[case::own_viewed(NONE_VISIBLE, Role::Editor, Action::View, PROVIDER, None)]
#[case::own_edited(NONE_VISIBLE, Role::Editor, Action::Edit, PROVIDER, None)]
#[case::client_not_viewed(
    NONE_VISIBLE,
    Role::Editor,
    Action::View,
    CLIENT,
    Some(DenyReason::Visibility)
)]
#[case::client_not_edited(
    NONE_VISIBLE,
    Role::Editor,
    Action::Edit,
    CLIENT,
    Some(DenyReason::Visibility)
)]
#[case::other_not_viewed(
    NONE_VISIBLE,
    Role::Editor,
    Action::View,
    OTHER,
    Some(DenyReason::Visibility)
)]
#[case::other_not_edited(
    NONE_VISIBLE,
    Role::Editor,
    Action::Edit,
    OTHER,
    Some(DenyReason::Visibility)
)]
#[case::client_visible_edited(CLIENT_VISIBLE, Role::Editor, Action::Edit, CLIENT, None)]
#[case::client_visible_other_not(
    CLIENT_VISIBLE,
    Role::Editor,
    Action::View,
    OTHER,
    Some(DenyReason::Visibility)
)]
#[case::all_visible_viewed(ALL_VISIBLE, Role::Reader, Action::View, OTHER, None)]
// EDIT of a visible transaction still needs the role.
#[case::all_visible_edit_needs_the_role(
    ALL_VISIBLE,
    Role::Reader,
    Action::Edit,
    OTHER,
    Some(DenyReason::RoleTooLow)
)]
fn r_az_3_visibility_rules_decide_existing_transactions(
    #[case] visibility: VisibilityRules,
    #[case] assigned: Role,
    #[case] action: Action,
    #[case] submitter: &str,
    #[case] expected: Option<DenyReason>,
) {
    let rel = relationship(Scope::Business, visibility);
    let facts = provider_facts(Some(assigned), false, Some(rel));
    let d = check(&person(), action, prog(1), Some(submitter), &facts);
    match expected {
        None => assert!(d.is_allow(), "{d:?}"),
        Some(reason) => assert_eq!(d, Decision::Deny(reason)),
    }
}

#[test]
fn r_az_3_without_submitter_edit_means_a_new_submission() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let facts = provider_facts(Some(Role::Editor), false, Some(rel));
    assert!(check(&person(), Action::Edit, prog(1), None, &facts).is_allow());
}

#[test]
fn r_az_4_an_expired_user_views_only_its_own_submissions() {
    let mut rel = relationship(
        Scope::Business,
        VisibilityRules {
            client: true,
            other_businesses: true,
        },
    );
    rel.expire_time = now() - Duration::days(1);
    let facts = provider_facts(Some(Role::Editor), false, Some(rel));
    assert_eq!(
        check(&person(), Action::View, prog(3), Some(PROVIDER), &facts),
        Decision::Allow {
            reason: AllowReason::ExpiredUserOwnSubmission,
            role: Role::Reader
        }
    );
    assert_eq!(
        check(&person(), Action::Edit, prog(3), Some(PROVIDER), &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
    assert_eq!(
        check(&person(), Action::View, prog(3), Some(CLIENT), &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
    assert_eq!(
        check(&person(), Action::View, prog(3), None, &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
    assert_eq!(
        check(&person(), Action::View, biz(), Some(PROVIDER), &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
}

#[test]
fn r_az_4_an_expired_user_after_an_early_end_keeps_its_own_submissions() {
    let mut rel = relationship(
        Scope::Programs([program(CLIENT, 1)].into_iter().collect()),
        VisibilityRules::default(),
    );
    rel.end_time = Some(now() - Duration::hours(1));
    let facts = provider_facts(Some(Role::Reader), false, Some(rel));
    assert!(allow(AllowReason::ExpiredUserOwnSubmission)(check(
        &person(),
        Action::View,
        prog(2),
        Some(PROVIDER),
        &facts
    )));
}

#[test]
fn r_az_4_an_expired_user_must_still_be_assigned_and_a_member() {
    let mut rel = relationship(Scope::Business, VisibilityRules::default());
    rel.expire_time = now() - Duration::days(1);
    let facts = provider_facts(None, false, Some(rel.clone()));
    assert_eq!(
        check(&person(), Action::View, prog(1), Some(PROVIDER), &facts),
        Decision::Deny(DenyReason::NotAssigned)
    );
    let mut facts = provider_facts(Some(Role::Reader), false, Some(rel));
    facts.roles.memberships.clear();
    assert_eq!(
        check(&person(), Action::View, prog(1), Some(PROVIDER), &facts),
        Decision::Deny(DenyReason::NotAMember)
    );
}

#[test]
fn r_az_6_reasons_prefer_the_own_business_answer() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let mut facts = provider_facts(Some(Role::Reader), false, Some(rel));
    with_membership(
        &mut facts,
        CLIENT,
        member(false, &[(program(CLIENT, 1), Role::Reader)]),
    );
    // Own role Reader denies EDIT; the provider path (Reader) denies it too.
    assert_eq!(
        check(&person(), Action::Edit, prog(1), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
}

#[test]
fn earliest_expiry_is_the_first_end_of_an_active_relationship() {
    let mut a = relationship(Scope::Business, VisibilityRules::default());
    a.end_time = None;
    a.expire_time = now() + Duration::days(3);
    let mut b = a.clone();
    b.expire_time = now() + Duration::days(1);
    let mut ended = a.clone();
    ended.expire_time = now() - Duration::days(1);
    let pairs = [PairFacts {
        relationships: vec![a, b, ended],
        revision: 0,
    }];
    assert_eq!(
        earliest_expiry(&pairs, now()),
        Some(now() + Duration::days(1))
    );
    assert_eq!(earliest_expiry(&[], now()), None);
}

// ---------------------------------------------------------------- properties

fn arb_bn9() -> impl Strategy<Value = Bn9> {
    prop::sample::select(vec![bn(CLIENT), bn(PROVIDER), bn(OTHER)])
}

fn arb_bn15() -> impl Strategy<Value = Bn15> {
    (arb_bn9(), 1u16..4).prop_map(|(b, n)| program(b.as_str(), n))
}

fn arb_role() -> impl Strategy<Value = Role> {
    prop::sample::select(vec![Role::Reader, Role::Editor, Role::Pam, Role::Bam])
}

fn arb_membership() -> impl Strategy<Value = Membership> {
    (
        any::<bool>(),
        prop::collection::btree_map(arb_bn15(), arb_role(), 0..3),
    )
        .prop_map(|(bam, roles)| Membership {
            business_manager: bam,
            roles,
            revision: 0,
        })
}

fn arb_instant() -> impl Strategy<Value = DateTime<Utc>> {
    (-5i64..5).prop_map(|d| now() + Duration::hours(d))
}

fn arb_relationship() -> impl Strategy<Value = Relationship> {
    (
        any::<bool>(),
        prop::collection::btree_set(arb_bn15(), 0..3),
        any::<bool>(),
        any::<bool>(),
        arb_instant(),
        prop::option::of(arb_instant()),
    )
        .prop_map(
            |(business, programs, client, others, expire, end)| Relationship {
                scope: if business {
                    Scope::Business
                } else {
                    Scope::Programs(programs)
                },
                visibility: VisibilityRules {
                    client,
                    other_businesses: others,
                },
                expire_time: expire,
                end_time: end,
            },
        )
}

fn arb_facts() -> impl Strategy<Value = Facts> {
    (
        prop::collection::btree_map(arb_bn9(), arb_membership(), 0..3),
        prop::collection::vec(
            (arb_bn9(), arb_bn9(), arb_role()).prop_map(|(provider, client, role)| {
                ClientAssignment {
                    provider,
                    client,
                    role,
                }
            }),
            0..4,
        ),
        prop::collection::btree_map(
            (arb_bn9(), arb_bn9()),
            prop::collection::vec(arb_relationship(), 0..3).prop_map(|relationships| PairFacts {
                relationships,
                revision: 0,
            }),
            0..4,
        ),
    )
        .prop_map(|(memberships, assignments, pairs)| Facts {
            roles: RoleFacts { memberships },
            assignments: AssignmentFacts {
                assignments,
                revisions: BTreeMap::new(),
            },
            pairs,
        })
}

fn arb_question() -> impl Strategy<Value = (Principal, Question)> {
    (
        prop::sample::select(vec![person(), credential()]),
        prop::sample::select(vec![Action::View, Action::Edit, Action::Manage]),
        prop_oneof![
            arb_bn9().prop_map(Resource::Business),
            arb_bn15().prop_map(Resource::Program)
        ],
        prop::option::of(arb_bn9()),
    )
        .prop_map(|(p, action, resource, submitted_by)| {
            (
                p,
                Question::new(action, resource).submitted_by(submitted_by),
            )
        })
}

/// Every way to remove one fact from `facts`.
fn with_one_fact_removed(facts: &Facts) -> Vec<Facts> {
    let mut out = Vec::new();
    for key in facts.roles.memberships.keys() {
        let mut f = facts.clone();
        f.roles.memberships.remove(key);
        out.push(f);
        let m = &facts.roles.memberships[key];
        if m.business_manager {
            let mut f = facts.clone();
            f.roles.memberships.get_mut(key).unwrap().business_manager = false;
            out.push(f);
        }
        for program in m.roles.keys() {
            let mut f = facts.clone();
            f.roles
                .memberships
                .get_mut(key)
                .unwrap()
                .roles
                .remove(program);
            out.push(f);
        }
    }
    for i in 0..facts.assignments.assignments.len() {
        let mut f = facts.clone();
        f.assignments.assignments.remove(i);
        out.push(f);
    }
    for (key, pair) in &facts.pairs {
        let mut f = facts.clone();
        f.pairs.remove(key);
        out.push(f);
        for (i, r) in pair.relationships.iter().enumerate() {
            let mut f = facts.clone();
            f.pairs.get_mut(key).unwrap().relationships.remove(i);
            out.push(f);
            if let Scope::Programs(programs) = &r.scope {
                for p in programs {
                    let mut f = facts.clone();
                    if let Scope::Programs(ps) =
                        &mut f.pairs.get_mut(key).unwrap().relationships[i].scope
                    {
                        ps.remove(p);
                    }
                    out.push(f);
                }
            }
            for strip in [0, 1] {
                let mut f = facts.clone();
                let v = &mut f.pairs.get_mut(key).unwrap().relationships[i].visibility;
                if strip == 0 {
                    v.client = false
                } else {
                    v.other_businesses = false
                }
                out.push(f);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn r_az_6_decide_never_panics(
        facts in arb_facts(),
        (p, q) in arb_question(),
        at in arb_instant(),
    ) {
        let _ = decide(&p, &q, &facts, at);
    }

    #[test]
    fn r_az_6_removing_a_fact_never_turns_a_deny_into_an_allow(
        facts in arb_facts(),
        (p, q) in arb_question(),
        at in arb_instant(),
    ) {
        let before = decide(&p, &q, &facts, at);
        if !before.is_allow() {
            for fewer in with_one_fact_removed(&facts) {
                let after = decide(&p, &q, &fewer, at);
                prop_assert!(!after.is_allow(), "{before:?} became {after:?} with {fewer:?}");
            }
        }
    }

    #[test]
    fn r_de_4_no_provider_allow_at_or_after_the_relationship_ends(
        facts in arb_facts(),
        (p, q) in arb_question(),
        at in arb_instant(),
    ) {
        let d = decide(&p, &q, &facts, at);
        if let Decision::Allow { reason: AllowReason::ProviderRelationship, .. } = d {
            let target = q.resource.bn9();
            let active = facts.roles.memberships.keys().any(|provider| {
                facts.pairs.get(&(provider.clone(), target.clone())).is_some_and(|pair| {
                    pair.relationships.iter().any(|r| at < r.expire_time && r.end_time.is_none_or(|e| at < e))
                })
            });
            prop_assert!(active, "provider allow without an active relationship at {at}");
        }
        if let Decision::Allow { reason: AllowReason::ExpiredUserOwnSubmission, .. } = d {
            prop_assert_eq!(q.action, Action::View);
        }
    }
}
