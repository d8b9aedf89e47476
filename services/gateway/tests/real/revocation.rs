//! Revocation with the real services (R-GW-4, R-DE-4): three gateway
//! replicas on one Redis (shared cache and bus under a fresh prefix). A
//! revoke made through one replica — a member's role lowered, a relationship
//! ended, a sign-out, a credential revoked — is denied by every replica; the
//! time until each denies is measured and printed (not asserted); a check
//! carrying the revoke's revision token is denied at once; a relationship
//! expiring while its facts are cached is denied from the expiry instant.

use std::time::{Duration, Instant};

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{Action, Role};
use ccp_proto::delegation::v1 as del;
use ccp_proto::gateway::v1 as gw;
use ccp_proto::identity::v1 as idn;
use tonic::Code;

use crate::harness::{Replica, Suite, redis_context};
use crate::world::{self, ABC, Kind, Who, grants, req, rid, rm};

pub async fn check_on(
    suite: &Suite,
    replica: &Replica,
    principal: &str,
    action: Action,
    resource: &str,
    revision: &str,
) -> bool {
    let answer = replica
        .authorization()
        .check(suite.internal(gw::CheckRequest {
            principal: principal.to_owned(),
            item: Some(gw::CheckItem {
                action: action as i32,
                resource: resource.to_owned(),
                submitted_by: String::new(),
            }),
            revision: revision.to_owned(),
        }))
        .await
        .unwrap()
        .into_inner();
    answer.decision == gw::Decision::Allow as i32
}

/// Polls `denied` on every replica concurrently from `start` until each
/// denies (bounded, 10 s); returns each replica's time to deny.
async fn time_to_deny<F, Fut>(suite: &Suite, start: Instant, denied: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polls = (0..suite.gateways.len()).map(|i| {
        let denied = &denied;
        async move {
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if denied(i).await {
                        return start.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("replica {i} still allows after 10 s"))
        }
    });
    futures::future::join_all(polls).await
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i]
    };
    eprintln!(
        "revocation seen by every replica [{what}]: n={} p50={:?} p99={:?} max={:?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}

async fn set_editor_role(suite: &Suite, bam: &Who, editor: &str, role: Role) -> String {
    world::set_roles(
        suite.gw(),
        bam,
        ABC,
        editor,
        grants(false, &[(&rm(ABC, 1), role)]),
    )
    .await
    .revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_4_a_revoke_through_one_replica_is_denied_by_all_three_on_one_redis() {
    let Some(url) = ccp_platform::testing::redis_url() else {
        eprintln!("skipped: CCP_TEST_REDIS_URL not set");
        return;
    };
    let mut owned = Suite::start(redis_context(&url).await, 3).await;
    let suite = &owned;
    let w = world::build(suite).await;
    let bam = &w.who[&Kind::Bam];
    let editor = w.who[&Kind::Editor].principal.clone();
    let rm1 = rm(ABC, 1);
    let mut all = Vec::new();

    // A member's role lowered (Editor -> Reader), again and again: the
    // revoked EDIT is denied by every replica; with the revision, at once.
    let mut roles = Vec::new();
    for round in 0..15 {
        // Every replica allows (and has cached the facts) before the revoke.
        for r in &suite.gateways {
            tokio::time::timeout(Duration::from_secs(10), async {
                while !check_on(suite, r, &editor, Action::Edit, &rm1, "").await {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the grant reaches every replica");
        }
        let start = Instant::now();
        let revision = set_editor_role(suite, bam, &editor, Role::Reader).await;
        if round == 0 {
            for r in &suite.gateways {
                assert!(
                    !check_on(suite, r, &editor, Action::Edit, &rm1, &revision).await,
                    "a check carrying the revoke's revision token must be denied at once"
                );
            }
        }
        let times = time_to_deny(suite, start, |i| {
            let r = &suite.gateways[i];
            let e = editor.clone();
            let p = rm1.clone();
            async move { !check_on(suite, r, &e, Action::Edit, &p, "").await }
        })
        .await;
        roles.extend(times);
        set_editor_role(suite, bam, &editor, Role::Editor).await;
    }
    report("member role lowered", &mut roles);
    all.extend(roles.iter().copied());

    // A relationship ended by the client: the assigned provider employee's VIEW.
    let assigned = w.who[&Kind::Assigned].principal.clone();
    for r in &suite.gateways {
        assert!(check_on(suite, r, &assigned, Action::View, &rm1, "").await);
    }
    let start = Instant::now();
    let ended = suite
        .gw()
        .delegation()
        .end_relationship(req(
            bam,
            del::EndRelationshipRequest {
                request_id: rid(),
                name: format!("businesses/{ABC}/relationships/{}", w.itn_relationship),
                note: "done".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    for r in &suite.gateways {
        assert!(
            !check_on(suite, r, &assigned, Action::View, &rm1, &ended.revision).await,
            "the end's revision token is denied at once"
        );
    }
    let mut times = time_to_deny(suite, start, |i| {
        let r = &suite.gateways[i];
        let a = assigned.clone();
        let p = rm1.clone();
        async move { !check_on(suite, r, &a, Action::View, &p, "").await }
    })
    .await;
    report("relationship ended", &mut times);
    all.extend(times);

    // Forwarded to accounts, which knows nothing of sessions: only the
    // gateway can refuse a signed-out or revoked token here.
    let view = |r: &Replica, who: &Who| {
        let mut a = r.accounts();
        let m = req(
            who,
            acc::GetBusinessRequest {
                name: format!("businesses/{ABC}"),
            },
        );
        async move { a.get_business(m).await }
    };

    // A sign-out: the session's access token is refused by every replica.
    let reader = w.who[&Kind::Reader].clone();
    for r in &suite.gateways {
        view(r, &reader).await.unwrap();
    }
    let start = Instant::now();
    suite
        .gw()
        .identity()
        .sign_out(req(&reader, idn::SignOutRequest { request_id: rid() }))
        .await
        .unwrap();
    let mut times = time_to_deny(suite, start, |i| {
        let r = &suite.gateways[i];
        let who = reader.clone();
        async move {
            view(r, &who)
                .await
                .is_err_and(|s| s.code() == Code::Unauthenticated)
        }
    })
    .await;
    report("signed out", &mut times);
    all.extend(times);

    // A machine credential revoked: its token is refused by every replica.
    let machine = w.machine.who.clone();
    for r in &suite.gateways {
        view(r, &machine).await.unwrap();
    }
    let start = Instant::now();
    suite
        .gw()
        .identity()
        .revoke_machine_credential(req(
            bam,
            idn::RevokeMachineCredentialRequest {
                request_id: rid(),
                name: w.machine.name.clone(),
                reason: "leaked".into(),
            },
        ))
        .await
        .unwrap();
    let mut times = time_to_deny(suite, start, |i| {
        let r = &suite.gateways[i];
        let who = machine.clone();
        async move {
            view(r, &who)
                .await
                .is_err_and(|s| s.code() == Code::Unauthenticated)
        }
    })
    .await;
    report("credential revoked", &mut times);
    all.extend(times);
    report("all revocations", &mut all);

    // R-DE-4: the expiring relationship, cached on every replica a second
    // before its instant, is denied by all of them from the instant on.
    let expired = w.who[&Kind::Expired].principal.clone();
    suite.clock.set(w.expire_at - chrono::Duration::seconds(1));
    for r in &suite.gateways {
        assert!(check_on(suite, r, &expired, Action::View, ABC, "").await);
        assert!(check_on(suite, r, &expired, Action::View, ABC, "").await);
    }
    suite.clock.set(w.expire_at);
    for r in &suite.gateways {
        assert!(!check_on(suite, r, &expired, Action::View, ABC, "").await);
    }

    // A replica started after the sign-out and the revocation refuses both
    // tokens too (they are still within their exp).
    let late = owned.add_gateway().await;
    let r = &owned.gateways[late];
    let refused = view(r, &reader).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::Unauthenticated,
        "signed-out session at a new replica"
    );
    let refused = view(r, &machine).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::Unauthenticated,
        "revoked credential at a new replica"
    );
}
