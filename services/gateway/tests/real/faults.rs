//! Faults with the real services (R-GW-2, R-GW-5): a private redis-server
//! (never the shared one) stopped mid-test — answers stay correct, no
//! revoked grant is allowed, and caching resumes when it returns; accounts
//! stopped — UNAVAILABLE for facts that are not cached (and for employee-group
//! facts, which are never cached), never an allow.

use std::time::Duration;

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{Action, Role};
use ccp_proto::gateway::v1 as gw;
use tonic::Code;

use crate::harness::{Suite, memory_context, redis_context, wait_for};
use crate::revocation::check_on;
use crate::world::{self, ABC, Who, grants, req, rm};

async fn set_role(suite: &Suite, bam: &Who, member: &str, role: Role) {
    world::set_roles(
        suite.gw(),
        bam,
        ABC,
        member,
        grants(false, &[(&rm(ABC, 1), role)]),
    )
    .await;
}

async fn edit_allowed(suite: &Suite, principal: &str) -> bool {
    check_on(suite, suite.gw(), principal, Action::Edit, &rm(ABC, 1), "").await
}

async fn shared_has_role_facts(suite: &Suite, principal: &str) -> bool {
    let key = format!("gw:f1:role:{principal}");
    matches!(suite.ctx.cache.get(&key).await, Ok(Some(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_5_redis_stopped_mid_test_answers_stay_correct_and_caching_resumes() {
    let mut redis = ccp_platform::testing::redis_server_on_spare_port().await;
    let suite = Suite::start(redis_context(&redis.url()).await, 1).await;
    let g = suite.gw();
    let bam = world::person(&suite, g, "Alice Bam").await;
    world::register(g, &bam, ABC).await;
    let editor = world::person(&suite, g, "Eddie Editor").await;
    world::hire(
        g,
        &bam,
        &editor,
        ABC,
        grants(false, &[(&rm(ABC, 1), Role::Editor)]),
    )
    .await;
    let e = editor.principal.clone();

    // Warm: allowed, and the role facts are in the shared level.
    assert!(edit_allowed(&suite, &e).await);
    // The gateway caches only while it trusts its event subscription (after
    // the first CaughtUp), so the shared level may fill a moment later.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !shared_has_role_facts(&suite, &e).await {
            assert!(edit_allowed(&suite, &e).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the role facts reach the shared level");

    redis.stop().await;
    let trust = g.trust.clone();
    wait_for("the gateway stops trusting its cache", || {
        !trust.is_trusted()
    })
    .await;
    // Still correct while Redis is away: read through to accounts.
    assert!(edit_allowed(&suite, &e).await);
    set_role(&suite, &bam, &e, Role::Reader).await;
    assert!(
        !edit_allowed(&suite, &e).await,
        "a revoked grant is never allowed while Redis is down"
    );
    set_role(&suite, &bam, &e, Role::Editor).await;
    assert!(edit_allowed(&suite, &e).await);
    set_role(&suite, &bam, &e, Role::Reader).await;
    assert!(!edit_allowed(&suite, &e).await);

    // Redis returns (empty): trust and caching resume, and events flow again.
    redis.start().await;
    let trust = g.trust.clone();
    wait_for("the gateway trusts its cache again", || trust.is_trusted()).await;
    assert!(!edit_allowed(&suite, &e).await);
    set_role(&suite, &bam, &e, Role::Editor).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while !edit_allowed(&suite, &e).await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the grant is seen after Redis returned");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !shared_has_role_facts(&suite, &e).await {
            let _ = edit_allowed(&suite, &e).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("caching in the shared level resumes");
    set_role(&suite, &bam, &e, Role::Reader).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while edit_allowed(&suite, &e).await {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("a revoke after Redis returned is denied (events flow again)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_5_accounts_stopped_gives_unavailable_for_facts_not_cached() {
    let mut suite = Suite::start(memory_context(), 1).await;
    let g = suite.gw();
    let bam = world::person(&suite, g, "Alice Bam").await;
    world::register(g, &bam, ABC).await;
    let reader = world::person(&suite, g, "Rita Reader").await;
    world::hire(
        g,
        &bam,
        &reader,
        ABC,
        grants(false, &[(&rm(ABC, 1), Role::Reader)]),
    )
    .await;
    // The BAM's facts are cached by a call; the reader's are not.
    g.accounts()
        .get_business(req(
            &bam,
            acc::GetBusinessRequest {
                name: format!("businesses/{ABC}"),
            },
        ))
        .await
        .unwrap();
    assert!(check_on(&suite, g, &bam.principal, Action::Manage, ABC, "").await);

    suite.accounts.stop().await;
    let g = suite.gw();
    // Not cached: UNAVAILABLE, on Check and on a forwarded call.
    let err = g
        .authorization()
        .check(suite.internal(gw::CheckRequest {
            principal: reader.principal.clone(),
            item: Some(gw::CheckItem {
                action: Action::View as i32,
                resource: rm(ABC, 1),
                submitted_by: String::new(),
            }),
            revision: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = g
        .accounts()
        .get_business(req(
            &reader,
            acc::GetBusinessRequest {
                name: format!("businesses/{ABC}"),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let unknown = format!("person:{}", uuid::Uuid::new_v4());
    let err = g
        .authorization()
        .check(suite.internal(gw::CheckRequest {
            principal: unknown,
            item: Some(gw::CheckItem {
                action: Action::View as i32,
                resource: ABC.to_owned(),
                submitted_by: String::new(),
            }),
            revision: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    // Cached facts still decide (the BAM's decision needs nothing else).
    assert!(check_on(&suite, g, &bam.principal, Action::Manage, ABC, "").await);
}

/// A PAM's change to an employee group needs the group's facts from accounts
/// (never cached): with accounts stopped, UNAVAILABLE even though the PAM's
/// own role facts are cached; never an allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_5_accounts_stopped_gives_unavailable_for_employee_group_facts() {
    let mut suite = Suite::start(memory_context(), 1).await;
    let g = suite.gw();
    let bam = world::person(&suite, g, "Alice Bam").await;
    world::register(g, &bam, ABC).await;
    let pam = world::person(&suite, g, "Paul Pam").await;
    world::hire(
        g,
        &bam,
        &pam,
        ABC,
        grants(false, &[(&rm(ABC, 1), Role::Pam)]),
    )
    .await;
    let group = g
        .accounts()
        .create_employee_group(req(
            &pam,
            acc::CreateEmployeeGroupRequest {
                request_id: world::rid(),
                parent: format!("businesses/{ABC}"),
                group: Some(acc::EmployeeGroup {
                    display_name: "RM0001 desk".to_owned(),
                    roles: grants(false, &[(&rm(ABC, 1), Role::Reader)]).program_roles,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    // The PAM's role facts reach the cache.
    let p = pam.principal.clone();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !shared_has_role_facts(&suite, &p).await {
            assert!(check_on(&suite, g, &p, Action::Manage, &rm(ABC, 1), "").await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the role facts reach the shared level");

    suite.accounts.stop().await;
    let g = suite.gw();
    // The role facts still decide from the cache...
    assert!(check_on(&suite, g, &p, Action::Manage, &rm(ABC, 1), "").await);
    // ...but the group's facts cannot be had: fail closed.
    let err = g
        .accounts()
        .delete_employee_group(req(
            &pam,
            acc::DeleteEmployeeGroupRequest {
                request_id: world::rid(),
                name: group.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}
