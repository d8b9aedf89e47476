//! The decision API (R-GW-3) through the front door, facts from the in-test double.

use std::collections::BTreeSet;

use ccp_platform::auth::{Principal, TokenMinter};
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_proto::common::v1::{Action, Role};
use ccp_proto::gateway::v1 as gw;
use tonic::Code;

use crate::helpers::*;

fn item(action: Action, resource: &str, submitted_by: &str) -> gw::CheckItem {
    gw::CheckItem {
        action: action as i32,
        resource: resource.into(),
        submitted_by: submitted_by.into(),
    }
}

struct World {
    upstream: Upstream,
    _server: UpstreamServer,
    gateway: TestGateway,
    minter: TokenMinter,
    /// A BAM of the provider (assigned to every client as Editor).
    broker_bam: Principal,
    /// A provider employee assigned to the client as Reader.
    broker_reader: Principal,
    /// A Reader of program 1 of the client.
    client_reader: Principal,
}

async fn world(ctx: ServiceContext) -> World {
    let upstream = Upstream::with_internal(ctx.internal.clone());
    let (broker_bam, broker_reader, client_reader) = (
        Principal::Person(uuid::Uuid::new_v4()),
        Principal::Person(uuid::Uuid::new_v4()),
        Principal::Person(uuid::Uuid::new_v4()),
    );
    upstream.set_roles(
        &broker_bam.to_string(),
        vec![membership(PROVIDER, true, &[], 1)],
    );
    upstream.set_roles(
        &broker_reader.to_string(),
        vec![membership(
            PROVIDER,
            false,
            &[("100000009RM0001", Role::Reader as i32)],
            1,
        )],
    );
    upstream.set_assignments(
        &broker_reader.to_string(),
        vec![(PROVIDER, CLIENT, Role::Reader as i32)],
    );
    upstream.set_roles(
        &client_reader.to_string(),
        vec![membership(
            CLIENT,
            false,
            &[("123456782RM0001", Role::Reader as i32)],
            1,
        )],
    );
    upstream.set_business(CLIENT, &["123456782RM0001", "123456782RM0002"]);
    upstream.set_business(PROVIDER, &["100000009RM0001"]);
    upstream.set_pair(
        PROVIDER,
        CLIENT,
        vec![business_relationship(t0() + chrono::Duration::days(30))],
    );
    let server = spawn_upstream(upstream.clone()).await;
    let minter = TokenMinter::new(ctx.clock.clone()).unwrap();
    let gateway = spawn_gateway(&ctx, settings(&server), &minter).await;
    World {
        upstream,
        _server: server,
        gateway,
        minter,
        broker_bam,
        broker_reader,
        client_reader,
    }
}

fn token(w: &World, p: &Principal) -> String {
    w.minter.person(p.id()).unwrap()
}

#[tokio::test]
async fn r_gw_3_a_principal_checks_itself_and_gets_reasons() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let w = world(ctx).await;
        let mut api = w.gateway.authorization().await;
        let t = token(&w, &w.client_reader);
        let allow = api
            .check(w.gateway.bearer(
                &t,
                gw::CheckRequest {
                    item: Some(item(Action::View, "123456782RM0001", "")),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(allow.decision, gw::Decision::Allow as i32, "{name}");
        assert_eq!(
            allow.allow_reason,
            gw::AllowReason::OwnRole as i32,
            "{name}"
        );
        let deny = api
            .check(w.gateway.bearer(
                &t,
                gw::CheckRequest {
                    item: Some(item(Action::Edit, "123456782RM0001", "")),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(deny.decision, gw::Decision::Deny as i32, "{name}");
        assert_eq!(
            deny.deny_reason,
            gw::DenyReason::RoleTooLow as i32,
            "{name}"
        );
        // Asking about someone else is refused; so is asking without credentials.
        let err = api
            .check(w.gateway.bearer(
                &t,
                gw::CheckRequest {
                    principal: w.broker_bam.to_string(),
                    item: Some(item(Action::View, CLIENT, "")),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{name}");
        let err = api
            .check(tonic::Request::new(gw::CheckRequest {
                item: Some(item(Action::View, CLIENT, "")),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{name}");
        // Bad input names the fields.
        let err = api
            .check(w.gateway.bearer(
                &t,
                gw::CheckRequest {
                    item: Some(item(Action::Unspecified, "123456789", "x")),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name}");
        let fields: BTreeSet<String> = ccp_platform::error::field_violations(&err)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            ["item.action", "item.resource", "item.submitted_by"]
                .into_iter()
                .map(String::from)
                .collect(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn r_gw_3_internal_callers_ask_about_any_principal() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let w = world(ctx).await;
        let mut api = w.gateway.authorization().await;
        let r = api
            .check(w.gateway.internal(gw::CheckRequest {
                principal: w.broker_reader.to_string(),
                item: Some(item(Action::Edit, "123456782RM0002", "")),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.deny_reason, gw::DenyReason::RoleTooLow as i32, "{name}");
        let r = api
            .check(w.gateway.internal(gw::CheckRequest {
                principal: w.broker_bam.to_string(),
                item: Some(item(Action::Edit, "123456782RM0002", "")),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.allow_reason,
            gw::AllowReason::ProviderRelationship as i32,
            "{name}"
        );
        let err = api
            .check(w.gateway.internal(gw::CheckRequest {
                item: Some(item(Action::Edit, CLIENT, "")),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{name}: internal callers name the principal"
        );
    }
}

#[tokio::test]
async fn r_gw_3_batch_check_answers_in_order_on_one_snapshot() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let w = world(ctx).await;
        let mut api = w.gateway.authorization().await;
        let t = token(&w, &w.broker_reader);
        let items = vec![
            item(Action::View, "123456782RM0001", ""),
            item(Action::Edit, "123456782RM0001", ""),
            item(Action::View, "123456782RM0001", CLIENT),
            item(Action::View, "123456782RM0001", PROVIDER),
            item(Action::Manage, CLIENT, ""),
            item(Action::View, OTHER, ""),
        ];
        let r = api
            .batch_check(w.gateway.bearer(
                &t,
                gw::BatchCheckRequest {
                    items,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let got: Vec<(i32, i32)> = r
            .results
            .iter()
            .map(|r| (r.decision, r.deny_reason))
            .collect();
        use gw::{Decision as D, DenyReason as R};
        assert_eq!(
            got,
            vec![
                (D::Allow as i32, 0),
                (D::Deny as i32, R::RoleTooLow as i32),
                (D::Deny as i32, R::Visibility as i32),
                (D::Allow as i32, 0),
                (D::Deny as i32, R::RoleTooLow as i32),
                (D::Deny as i32, R::NoRelationship as i32),
            ],
            "{name}"
        );
        let too_many = vec![item(Action::View, CLIENT, ""); 101];
        let err = api
            .batch_check(w.gateway.bearer(
                &t,
                gw::BatchCheckRequest {
                    items: too_many,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name}");
    }
}

#[tokio::test]
async fn r_gw_3_explain_is_internal_only_and_returns_the_facts_used() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let w = world(ctx).await;
        let mut api = w.gateway.authorization().await;
        let req = gw::ExplainRequest {
            principal: w.broker_reader.to_string(),
            item: Some(item(Action::View, "123456782RM0002", "")),
        };
        let t = token(&w, &w.broker_reader);
        let err = api
            .explain(w.gateway.bearer(&t, req.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{name}");
        let calls = w
            .upstream
            .role_calls
            .load(std::sync::atomic::Ordering::SeqCst);
        let r = api
            .explain(w.gateway.internal(req.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.decision.unwrap().allow_reason,
            gw::AllowReason::ProviderRelationship as i32
        );
        assert_eq!(
            r.role_facts.unwrap().memberships[0].business,
            PROVIDER,
            "{name}"
        );
        assert_eq!(r.assignment_facts.unwrap().assignments.len(), 1, "{name}");
        assert_eq!(r.pair_facts.len(), 1, "{name}");
        assert!(
            r.explanation.starts_with("R-AZ-2"),
            "{name}: {}",
            r.explanation
        );
        api.explain(w.gateway.internal(req)).await.unwrap();
        assert_eq!(
            w.upstream
                .role_calls
                .load(std::sync::atomic::Ordering::SeqCst),
            calls + 2,
            "{name}: Explain bypasses the caches"
        );
    }
}

#[tokio::test]
async fn r_gw_3_list_accessible_pages_with_an_explicit_token_never_cut() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let w = world(ctx).await;
        // 40 more clients of the provider, business level, each with one program.
        let mut expected = BTreeSet::new();
        for n in 0..40u32 {
            let bn = bn9_with_check(30_000_000 + n);
            w.upstream.set_business(&bn, &[&format!("{bn}RM0001")]);
            w.upstream.set_pair(
                PROVIDER,
                &bn,
                vec![business_relationship(t0() + chrono::Duration::days(1))],
            );
            expected.insert(bn.clone());
            expected.insert(format!("{bn}RM0001"));
        }
        // Plus the world's client, its programs, and the provider itself (own role).
        for r in [
            CLIENT,
            "123456782RM0001",
            "123456782RM0002",
            PROVIDER,
            "100000009RM0001",
        ] {
            expected.insert(r.to_owned());
        }
        let pages = list_pages(&w, &w.broker_bam, 7).await;
        let last = pages.last().unwrap();
        assert!(
            !last.resources.is_empty() || pages.len() == 1,
            "{name}: no empty last page"
        );
        let seen: Vec<String> = pages.iter().flat_map(|p| p.resources.clone()).collect();
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{name}: no duplicates");
        assert_eq!(unique, expected, "{name}");
        // Own business first.
        assert_eq!(seen[0], PROVIDER, "{name}");
    }
}

#[tokio::test]
async fn r_gw_3_an_assigned_employees_list_pages_reading_only_the_pairs_it_lists() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let w = world(ctx).await;
        // The Reader is assigned to 60 more clients: 50 with a business-level
        // relationship (one program each), 10 with none (not listed).
        let mut assigned = vec![(PROVIDER, CLIENT, Role::Reader as i32)];
        let bns: Vec<String> = (0..60u32).map(|n| bn9_with_check(40_000_000 + n)).collect();
        let mut expected = BTreeSet::new();
        for (n, bn) in bns.iter().enumerate() {
            w.upstream.set_business(bn, &[&format!("{bn}RM0001")]);
            if n < 50 {
                w.upstream.set_pair(
                    PROVIDER,
                    bn,
                    vec![business_relationship(t0() + chrono::Duration::days(1))],
                );
                expected.insert(bn.clone());
                expected.insert(format!("{bn}RM0001"));
            }
        }
        assigned.extend(
            bns.iter()
                .map(|bn| (PROVIDER, bn.as_str(), Role::Reader as i32)),
        );
        w.upstream
            .set_assignments(&w.broker_reader.to_string(), assigned);
        for r in [
            CLIENT,
            "123456782RM0001",
            "123456782RM0002",
            PROVIDER,
            "100000009RM0001",
        ] {
            expected.insert(r.to_owned());
        }
        let pages = list_pages(&w, &w.broker_reader, 8).await;
        for (n, page) in pages.iter().enumerate() {
            // A page of 8 resources (2 per client) reads the pairs of the
            // clients it lists, plus unlisted ones it passes — never all 61.
            assert!(
                page.pair_reads <= 20,
                "{name}: page {} read {} pairs",
                n + 1,
                page.pair_reads
            );
        }
        let seen: Vec<String> = pages.iter().flat_map(|p| p.resources.clone()).collect();
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{name}: no duplicates");
        assert_eq!(unique, expected, "{name}");
    }
}

#[tokio::test]
async fn r_az_2_a_broker_employee_whose_assignment_facts_exceed_the_forwarding_limit_is_still_decided()
 {
    use prost::Message as _;
    let (name, ctx) = contexts(Clock::settable(t0())).await.remove(0);
    let w = world(ctx).await;
    // Assigned to 160k clients (through a large client group, say): its
    // assignment facts are larger than the 4 MiB forwarding limit, which
    // must not make every decision about it fail closed.
    let mut assigned = vec![(PROVIDER.to_owned(), CLIENT.to_owned())];
    assigned.extend((0..160_000u32).map(|n| (PROVIDER.to_owned(), bn9_with_check(50_000_000 + n))));
    w.upstream.set_assignments(
        &w.broker_reader.to_string(),
        assigned
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str(), Role::Reader as i32))
            .collect(),
    );
    let size =
        w.upstream.state.lock().unwrap().assignments[&w.broker_reader.to_string()].encoded_len();
    assert!(size > 4 * 1024 * 1024, "{name}: facts of {size} bytes");
    let mut api = w.gateway.authorization().await;
    let t = token(&w, &w.broker_reader);
    let answer = api
        .check(w.gateway.bearer(
            &t,
            gw::CheckRequest {
                item: Some(item(Action::View, "123456782RM0001", PROVIDER)),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.decision, gw::Decision::Allow as i32, "{name}");
}

/// One page of a ListAccessible walk.
struct Page {
    /// The resources it listed.
    resources: Vec<String>,
    /// The GetPairFacts calls the upstream answered while it was made.
    pair_reads: usize,
}

/// Lists everything `who` may VIEW, `page_size` at a time, to the end
/// (bounded to 100 pages); every page holds at most `page_size`.
async fn list_pages(w: &World, who: &Principal, page_size: i32) -> Vec<Page> {
    use std::sync::atomic::Ordering;
    let mut api = w.gateway.authorization().await;
    let t = token(w, who);
    let mut pages = Vec::new();
    let mut page_token = String::new();
    loop {
        let before = w.upstream.pair_calls.load(Ordering::SeqCst);
        let r = api
            .list_accessible(w.gateway.bearer(
                &t,
                gw::ListAccessibleRequest {
                    action: Action::View as i32,
                    page_size,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(r.resources.len() <= usize::try_from(page_size).unwrap());
        pages.push(Page {
            resources: r.resources.iter().map(|r| r.resource.clone()).collect(),
            pair_reads: w.upstream.pair_calls.load(Ordering::SeqCst) - before,
        });
        if r.next_page_token.is_empty() {
            return pages;
        }
        page_token = r.next_page_token;
        assert!(pages.len() < 100, "the listing ends");
    }
}

/// Returns a valid BN9 whose first eight digits are `n` (zero-padded).
fn bn9_with_check(n: u32) -> String {
    let base = format!("{n:08}");
    (0..10)
        .map(|d| format!("{base}{d}"))
        .find(|c| ccp_types::Bn9::try_new(c).is_some())
        .unwrap()
}

#[tokio::test]
async fn r_gw_3_r_in_1_a_list_accessible_token_is_bound_to_its_principal_action_and_caller() {
    for (name, ctx) in contexts(Clock::settable(t0())).await {
        let w = world(ctx).await;
        let mut api = w.gateway.authorization().await;
        let list = |principal: &str, action: Action, page_token: &str| gw::ListAccessibleRequest {
            principal: principal.to_owned(),
            action: action as i32,
            page_size: 2,
            page_token: page_token.to_owned(),
            ..Default::default()
        };
        let bam = token(&w, &w.broker_bam);
        let first = api
            .list_accessible(w.gateway.bearer(&bam, list("", Action::View, "")))
            .await
            .unwrap()
            .into_inner();
        let t = first.next_page_token;
        assert!(!t.is_empty(), "{name}");
        // Its own caller continues.
        api.list_accessible(w.gateway.bearer(&bam, list("", Action::View, &t)))
            .await
            .unwrap();
        let refused = |r: Result<tonic::Response<gw::ListAccessibleResponse>, tonic::Status>,
                       what: &str| {
            let err = r.expect_err(what);
            assert_eq!(err.code(), Code::InvalidArgument, "{name}: {what}: {err:?}");
            let fields: Vec<String> = ccp_platform::error::field_violations(&err)
                .into_iter()
                .map(|v| v.field)
                .collect();
            assert_eq!(fields, vec!["page_token".to_owned()], "{name}: {what}");
        };
        // Another caller asking about itself.
        let reader = token(&w, &w.broker_reader);
        refused(
            api.list_accessible(w.gateway.bearer(&reader, list("", Action::View, &t)))
                .await,
            "another caller",
        );
        // Another action (the filter).
        refused(
            api.list_accessible(w.gateway.bearer(&bam, list("", Action::Edit, &t)))
                .await,
            "another action",
        );
        // An internal caller: the person's token is not its own, and its own
        // token for one principal does not page another principal's list.
        let bam_text = w.broker_bam.to_string();
        refused(
            api.list_accessible(w.gateway.internal(list(&bam_text, Action::View, &t)))
                .await,
            "an internal caller",
        );
        let internal = api
            .list_accessible(w.gateway.internal(list(&bam_text, Action::View, "")))
            .await
            .unwrap()
            .into_inner()
            .next_page_token;
        assert!(!internal.is_empty(), "{name}");
        api.list_accessible(w.gateway.internal(list(&bam_text, Action::View, &internal)))
            .await
            .unwrap();
        refused(
            api.list_accessible(w.gateway.internal(list(
                &w.broker_reader.to_string(),
                Action::View,
                &internal,
            )))
            .await,
            "another principal",
        );
        // Tampered, character by character.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(b).unwrap();
            refused(
                api.list_accessible(w.gateway.bearer(&bam, list("", Action::View, &tampered)))
                    .await,
                &format!("character {i} changed"),
            );
        }
    }
}
