#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Unit tests of `decide`, one or more per rule (names carry the rule ids),
//! and property tests: it never panics, removing a fact never turns a deny
//! into an allow (but for R-AZ-4 once the pair's active relationship is
//! gone), nothing is allowed through a relationship at or after its expiry
//! instant, the Expired-user rule never applies while a relationship of the
//! pair is active, and the reason is a function of the facts (R-AZ-6).

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

/// The client's program accounts in the facts: RM0001, RM0002, RM0003 and RM0007 (never RM0009).
fn with_client_programs(facts: &mut Facts) {
    facts.programs.insert(
        bn(CLIENT),
        [1, 2, 3, 7]
            .into_iter()
            .map(|n| program(CLIENT, n))
            .collect(),
    );
}

fn provider_facts(role: Option<Role>, bam: bool, rel: Option<Relationship>) -> Facts {
    let mut facts = Facts::default();
    with_client_programs(&mut facts);
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
    assert_eq!(
        Resource::parse("123456782"),
        Some(Resource::Business(bn("123456782")))
    );
    assert_eq!(
        Resource::parse("123456782RM0001"),
        Some(Resource::Program(program(CLIENT, 1)))
    );
    assert!(Resource::parse("1234567820").is_none());
    assert!(Resource::parse("ééééééééé").is_none());
    assert!(Resource::parse("123456782RMé001").is_none());
}

#[test]
fn actions_are_named_as_the_policy_table_and_the_docs_write_them() {
    assert_eq!(Action::View.as_str(), "VIEW");
    assert_eq!(Action::Edit.as_str(), "EDIT");
    assert_eq!(Action::Manage.as_str(), "MANAGE");
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
    with_client_programs(&mut facts);
    with_membership(&mut facts, CLIENT, member(true, &[]));
    for action in [Action::View, Action::Edit, Action::Manage] {
        for resource in [biz(), prog(1), prog(7)] {
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
fn r_az_2_a_provider_member_left_without_roles_acts_for_no_one() {
    // Member of the provider without any role left, and the pair has an
    // active relationship and an assignment: it is not acting for the
    // provider at all, so it stands as a stranger to the client.
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let mut facts = provider_facts(Some(Role::Editor), false, Some(rel));
    with_membership(&mut facts, PROVIDER, member(false, &[]));
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::NotAMember)
    );
}

/// The facts of a principal holding a role in PROVIDER and OTHER, each
/// with `rel` to the client and the assignment role given.
fn two_providers(first: (Relationship, Role), second: (Relationship, Role)) -> Facts {
    let mut facts = Facts::default();
    with_client_programs(&mut facts);
    for (provider, (rel, role)) in [(PROVIDER, first), (OTHER, second)] {
        with_membership(
            &mut facts,
            provider,
            member(false, &[(program(provider, 1), Role::Reader)]),
        );
        facts.assignments.assignments.push(ClientAssignment {
            provider: bn(provider),
            client: bn(CLIENT),
            role,
        });
        facts.pairs.insert(
            (bn(provider), bn(CLIENT)),
            PairFacts {
                relationships: vec![rel],
                revision: 1,
            },
        );
    }
    facts
}

#[test]
fn r_az_2_through_two_providers_the_highest_assignment_role_counts() {
    let rel = || relationship(Scope::Business, VisibilityRules::default());
    for (first, second) in [(Role::Reader, Role::Editor), (Role::Editor, Role::Reader)] {
        let facts = two_providers((rel(), first), (rel(), second));
        assert_eq!(
            check(&person(), Action::View, prog(1), None, &facts),
            Decision::Allow {
                reason: AllowReason::ProviderRelationship,
                role: Role::Editor
            },
            "{first:?} through {PROVIDER}, {second:?} through {OTHER}"
        );
    }
}

#[test]
fn r_az_4_an_active_relationship_of_another_provider_comes_before_the_expired_user_rule() {
    let mut ended = relationship(Scope::Business, VisibilityRules::default());
    ended.expire_time = now() - Duration::days(1);
    let active = relationship(
        Scope::Business,
        VisibilityRules {
            client: true,
            other_businesses: true,
        },
    );
    // PROVIDER's relationship ended (its own submission: the expired-user
    // rule allows VIEW); OTHER's is active and shows PROVIDER's submission.
    let facts = two_providers((ended, Role::Editor), (active, Role::Reader));
    assert_eq!(
        check(&person(), Action::View, prog(3), Some(PROVIDER), &facts),
        Decision::Allow {
            reason: AllowReason::ProviderRelationship,
            role: Role::Reader
        }
    );
}

#[test]
fn resources_are_written_as_their_bn9_or_bn15() {
    assert_eq!(biz().to_string(), CLIENT);
    assert_eq!(prog(7).to_string(), format!("{CLIENT}RM0007"));
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
fn r_az_1_a_program_account_the_business_does_not_have_is_denied_even_to_its_bam() {
    let mut facts = Facts::default();
    with_membership(&mut facts, CLIENT, member(true, &[]));
    // The business's program accounts not read: nothing shows RM0009 exists.
    assert_eq!(
        check(&person(), Action::View, prog(9), None, &facts),
        Decision::Deny(DenyReason::NoRole)
    );
    with_client_programs(&mut facts);
    for action in [Action::View, Action::Edit, Action::Manage] {
        assert_eq!(
            check(&person(), action, prog(9), None, &facts),
            Decision::Deny(DenyReason::NoRole)
        );
    }
    assert!(allow(AllowReason::OwnRole)(check(
        &person(),
        Action::View,
        prog(7),
        None,
        &facts
    )));
    // A role held on a program account shows it exists, read list or not.
    let mut facts = Facts::default();
    with_membership(
        &mut facts,
        CLIENT,
        member(true, &[(program(CLIENT, 9), Role::Reader)]),
    );
    assert_eq!(
        check(&person(), Action::Manage, prog(9), None, &facts),
        Decision::Allow {
            reason: AllowReason::OwnRole,
            role: Role::Bam
        }
    );
}

#[test]
fn r_az_2_a_business_level_relationship_covers_only_the_programs_the_client_has() {
    let rel = relationship(Scope::Business, ALL_VISIBLE);
    let facts = provider_facts(Some(Role::Editor), false, Some(rel));
    for action in [Action::View, Action::Edit] {
        assert_eq!(
            check(&person(), action, prog(9), None, &facts),
            Decision::Deny(DenyReason::ProgramNotCovered)
        );
        assert!(check(&person(), action, prog(7), None, &facts).is_allow());
    }
    // Unread, the client's program accounts cover nothing either.
    let mut facts = facts;
    facts.programs.clear();
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::ProgramNotCovered)
    );
    assert!(check(&person(), Action::View, biz(), None, &facts).is_allow());
}

#[test]
fn r_az_2_an_assignment_to_another_client_or_by_another_provider_does_not_count() {
    let rel = relationship(Scope::Business, VisibilityRules::default());
    let mut facts = provider_facts(None, false, Some(rel));
    facts.assignments.assignments.extend([
        ClientAssignment {
            provider: bn(PROVIDER),
            client: bn(OTHER),
            role: Role::Editor,
        },
        ClientAssignment {
            provider: bn(OTHER),
            client: bn(CLIENT),
            role: Role::Editor,
        },
    ]);
    assert_eq!(facts.assignments.role(&bn(PROVIDER), &bn(CLIENT)), None);
    assert_eq!(
        facts.assignments.role(&bn(PROVIDER), &bn(OTHER)),
        Some(Role::Editor)
    );
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::NotAssigned)
    );
    // The highest of several assignments to the client is the role.
    facts.assignments.assignments.extend([
        ClientAssignment {
            provider: bn(PROVIDER),
            client: bn(CLIENT),
            role: Role::Editor,
        },
        ClientAssignment {
            provider: bn(PROVIDER),
            client: bn(CLIENT),
            role: Role::Reader,
        },
    ]);
    assert_eq!(
        facts.assignments.role(&bn(PROVIDER), &bn(CLIENT)),
        Some(Role::Editor)
    );
    assert_eq!(
        check(&person(), Action::Edit, prog(1), None, &facts),
        Decision::Allow {
            reason: AllowReason::ProviderRelationship,
            role: Role::Editor
        }
    );
}

#[test]
fn r_az_4_an_active_relationship_of_the_pair_replaces_the_expired_user_rule() {
    let mut ended = relationship(Scope::Business, ALL_VISIBLE);
    ended.end_time = Some(now() - Duration::days(10));
    let current = relationship(
        Scope::Programs([program(CLIENT, 1)].into_iter().collect()),
        NONE_VISIBLE,
    );
    let mut facts = provider_facts(Some(Role::Reader), false, Some(ended.clone()));
    // Alone, the ended relationship lets it VIEW its own submissions on RM0002.
    assert!(allow(AllowReason::ExpiredUserOwnSubmission)(check(
        &person(),
        Action::View,
        prog(2),
        Some(PROVIDER),
        &facts
    )));
    // The pair's active relationship covers only RM0001: RM0002 is not covered.
    let pair = facts.pairs.get_mut(&(bn(PROVIDER), bn(CLIENT))).unwrap();
    pair.relationships.push(current.clone());
    assert_eq!(
        check(&person(), Action::View, prog(2), Some(PROVIDER), &facts),
        Decision::Deny(DenyReason::ProgramNotCovered)
    );
    assert_eq!(
        check(&person(), Action::View, prog(1), Some(PROVIDER), &facts),
        Decision::Allow {
            reason: AllowReason::ProviderRelationship,
            role: Role::Reader
        }
    );
    // The order the relationships are listed in changes nothing.
    let pair = facts.pairs.get_mut(&(bn(PROVIDER), bn(CLIENT))).unwrap();
    pair.relationships = vec![current, ended];
    assert_eq!(
        check(&person(), Action::View, prog(2), Some(PROVIDER), &facts),
        Decision::Deny(DenyReason::ProgramNotCovered)
    );
}

#[test]
fn r_az_4_only_the_client_s_program_accounts_and_only_its_own_provider_s_submissions() {
    let mut ended = relationship(Scope::Business, ALL_VISIBLE);
    ended.expire_time = now() - Duration::days(1);
    let facts = provider_facts(Some(Role::Reader), true, Some(ended));
    assert_eq!(
        check(&person(), Action::View, prog(9), Some(PROVIDER), &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
    assert_eq!(
        check(&person(), Action::View, prog(2), Some(OTHER), &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
    // The provider's BAM counts as assigned here too.
    assert!(allow(AllowReason::ExpiredUserOwnSubmission)(check(
        &person(),
        Action::View,
        prog(2),
        Some(PROVIDER),
        &facts
    )));
}

#[test]
fn r_az_6_the_ranking_is_fixed() {
    let ranked = [
        DenyReason::Visibility,
        DenyReason::RoleTooLow,
        DenyReason::ProgramNotCovered,
        DenyReason::RelationshipEnded,
        DenyReason::NotAssigned,
        DenyReason::NoRole,
        DenyReason::NoRelationship,
        DenyReason::NotAMember,
    ];
    for pair in ranked.windows(2) {
        assert!(pair[0].rank() < pair[1].rank(), "{pair:?}");
        assert_eq!(pair[0].or_better(pair[1]), pair[0]);
        assert_eq!(pair[1].or_better(pair[0]), pair[0]);
    }
    assert!(DenyReason::Revoked.rank() < DenyReason::Visibility.rank());
}

#[test]
fn r_az_6_a_credential_with_no_role_on_the_program_asking_manage_is_no_role() {
    let mut facts = Facts::default();
    with_client_programs(&mut facts);
    with_membership(
        &mut facts,
        CLIENT,
        member(true, &[(program(CLIENT, 1), Role::Editor)]),
    );
    assert_eq!(
        check(&credential(), Action::Manage, prog(2), None, &facts),
        Decision::Deny(DenyReason::NoRole)
    );
    assert_eq!(
        check(&credential(), Action::Manage, prog(1), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
}

#[test]
fn r_az_6_the_standpoint_that_got_furthest_explains() {
    // A Reader of RM0001 in the client, and a provider employee whose relationship ended.
    let mut ended = relationship(Scope::Business, VisibilityRules::default());
    ended.expire_time = now() - Duration::days(1);
    let mut facts = provider_facts(Some(Role::Reader), false, Some(ended));
    with_membership(
        &mut facts,
        CLIENT,
        member(false, &[(program(CLIENT, 1), Role::Reader)]),
    );
    // Own: NO_ROLE; provider: RELATIONSHIP_ENDED, which ranks first.
    assert_eq!(
        check(&person(), Action::View, prog(2), None, &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
    // Own: ROLE_TOO_LOW ranks before the provider's RELATIONSHIP_ENDED.
    assert_eq!(
        check(&person(), Action::Edit, prog(1), None, &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
}

#[test]
fn r_az_6_the_provider_checks_run_in_their_fixed_order() {
    let programs = [program(CLIENT, 1)].into_iter().collect();
    let active = relationship(Scope::Programs(programs), NONE_VISIBLE);
    // Not assigned comes before not covered.
    let facts = provider_facts(None, false, Some(active.clone()));
    assert_eq!(
        check(&person(), Action::View, prog(2), None, &facts),
        Decision::Deny(DenyReason::NotAssigned)
    );
    // Not covered comes before never MANAGE and before visibility.
    let facts = provider_facts(Some(Role::Reader), false, Some(active.clone()));
    assert_eq!(
        check(&person(), Action::Manage, prog(2), None, &facts),
        Decision::Deny(DenyReason::ProgramNotCovered)
    );
    assert_eq!(
        check(&person(), Action::View, prog(2), Some(CLIENT), &facts),
        Decision::Deny(DenyReason::ProgramNotCovered)
    );
    // Visibility comes before the role: a Reader editing an invisible transaction.
    assert_eq!(
        check(&person(), Action::Edit, prog(1), Some(CLIENT), &facts),
        Decision::Deny(DenyReason::Visibility)
    );
    // On a BN9 only VIEW, before anything about submitters.
    assert_eq!(
        check(&person(), Action::Edit, biz(), Some(CLIENT), &facts),
        Decision::Deny(DenyReason::RoleTooLow)
    );
    // An ended relationship comes after the assignment.
    let mut ended = active;
    ended.end_time = Some(now());
    let facts = provider_facts(None, false, Some(ended.clone()));
    assert_eq!(
        check(&person(), Action::View, prog(1), Some(PROVIDER), &facts),
        Decision::Deny(DenyReason::NotAssigned)
    );
    let facts = provider_facts(Some(Role::Reader), false, Some(ended));
    assert_eq!(
        check(&person(), Action::View, prog(1), None, &facts),
        Decision::Deny(DenyReason::RelationshipEnded)
    );
}

#[test]
fn r_az_6_own_and_provider_reasons_agree_when_both_deny_edit() {
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
        prop::collection::btree_map(arb_bn9(), prop::collection::btree_set(1u16..4, 0..3), 0..3),
    )
        .prop_map(|(memberships, assignments, pairs, programs)| Facts {
            roles: RoleFacts { memberships },
            assignments: AssignmentFacts {
                assignments,
                revisions: BTreeMap::new(),
            },
            pairs,
            programs: programs
                .into_iter()
                .map(|(b, ns)| {
                    let listed = ns.into_iter().map(|n| program(b.as_str(), n)).collect();
                    (b, listed)
                })
                .collect(),
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

/// Every way to remove one fact from `facts`, each with the relationship it
/// removes, if it removes one.
fn with_one_fact_removed(facts: &Facts) -> Vec<(Facts, Option<Relationship>)> {
    let mut out = Vec::new();
    for (business, listed) in &facts.programs {
        let mut f = facts.clone();
        f.programs.remove(business);
        out.push(f);
        for p in listed {
            let mut f = facts.clone();
            f.programs.get_mut(business).unwrap().remove(p);
            out.push(f);
        }
    }
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
    let mut removed = Vec::new();
    for (key, pair) in &facts.pairs {
        let mut f = facts.clone();
        f.pairs.remove(key);
        out.push(f);
        for (i, r) in pair.relationships.iter().enumerate() {
            let mut f = facts.clone();
            f.pairs.get_mut(key).unwrap().relationships.remove(i);
            removed.push((f, r.clone()));
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
    out.into_iter()
        .map(|f| (f, None))
        .chain(removed.into_iter().map(|(f, r)| (f, Some(r))))
        .collect()
}

/// `facts` with every list in it reversed and rotated by `k`.
fn relisted(facts: &Facts, k: usize) -> Facts {
    fn reorder<T>(v: &mut [T], k: usize) {
        v.reverse();
        if !v.is_empty() {
            let len = v.len();
            v.rotate_left(k % len);
        }
    }
    let mut f = facts.clone();
    reorder(&mut f.assignments.assignments, k);
    for pair in f.pairs.values_mut() {
        reorder(&mut pair.relationships, k);
    }
    f
}

/// `facts` seen from one standpoint: the principal's membership in `keep`
/// only (R-AZ-6).
fn one_standpoint(facts: &Facts, keep: &Bn9) -> Facts {
    let mut f = facts.clone();
    f.roles.memberships.retain(|bn, _| bn == keep);
    f
}

/// True when some relationship of the pair (`provider`, `client`) is active at `at`.
fn pair_active(facts: &Facts, provider: &Bn9, client: &Bn9, at: DateTime<Utc>) -> bool {
    facts
        .pairs
        .get(&(provider.clone(), client.clone()))
        .is_some_and(|p| p.relationships.iter().any(|r| r.is_active(at)))
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
            for (fewer, removed) in with_one_fact_removed(&facts) {
                let after = decide(&p, &q, &fewer, at);
                // R-AZ-4: removing the pair's active relationship may leave only
                // ended ones, and the Expired-user rule then applies.
                let expired_user = matches!(
                    after,
                    Decision::Allow { reason: AllowReason::ExpiredUserOwnSubmission, .. }
                ) && removed.is_some_and(|r| r.is_active(at));
                prop_assert!(
                    !after.is_allow() || expired_user,
                    "{before:?} became {after:?} with {fewer:?}"
                );
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

    #[test]
    fn r_az_6_the_decision_does_not_depend_on_the_order_facts_are_listed_in(
        facts in arb_facts(),
        (p, q) in arb_question(),
        at in arb_instant(),
        k in 0usize..4,
    ) {
        let d = decide(&p, &q, &facts, at);
        prop_assert_eq!(decide(&p, &q, &relisted(&facts, k), at), d);
        prop_assert_eq!(decide(&p, &q, &facts, at), d);
    }

    #[test]
    fn r_az_6_the_best_ranked_standpoint_reason_is_the_answer(
        facts in arb_facts(),
        (p, q) in arb_question(),
        at in arb_instant(),
    ) {
        // Each standpoint alone: the resource's business, and each other business.
        let alone: Vec<Decision> = facts
            .roles
            .memberships
            .keys()
            .map(|keep| decide(&p, &q, &one_standpoint(&facts, keep), at))
            .collect();
        let d = decide(&p, &q, &facts, at);
        prop_assert_eq!(d.is_allow(), alone.iter().any(Decision::is_allow));
        if let Decision::Deny(reason) = d {
            let best = alone
                .iter()
                .filter_map(|a| match a {
                    Decision::Deny(r) => Some(*r),
                    Decision::Allow { .. } => None,
                })
                .min_by_key(|r| r.rank())
                .unwrap_or(DenyReason::NotAMember);
            prop_assert_eq!(reason, best);
        }
    }

    #[test]
    fn r_az_4_the_expired_user_rule_never_applies_while_a_relationship_of_the_pair_is_active(
        facts in arb_facts(),
        (p, q) in arb_question(),
        at in arb_instant(),
    ) {
        let target = q.resource.bn9().clone();
        let d = decide(&p, &q, &facts, at);
        if let Decision::Allow { reason: AllowReason::ExpiredUserOwnSubmission, .. } = d {
            // Its provider is a member with a pair whose relationships have all ended.
            let provider = q.submitted_by.clone().unwrap();
            prop_assert!(facts.roles.memberships.get(&provider).is_some_and(Membership::holds_a_role));
            prop_assert!(!pair_active(&facts, &provider, &target, at));
            prop_assert!(!facts.pairs[&(provider, target.clone())].relationships.is_empty());
        }
        // Give every pair with the target an active relationship covering nothing:
        // the rule then never applies, whatever else the facts say.
        let mut covered = facts.clone();
        for ((_, client), pair) in covered.pairs.iter_mut() {
            if client == &target {
                pair.relationships.push(Relationship {
                    scope: Scope::Programs(BTreeSet::new()),
                    visibility: VisibilityRules::default(),
                    expire_time: at + Duration::days(1),
                    end_time: None,
                });
            }
        }
        let after = decide(&p, &q, &covered, at);
        prop_assert!(
            !matches!(after, Decision::Allow { reason: AllowReason::ExpiredUserOwnSubmission, .. }),
            "{after:?}"
        );
    }
}
