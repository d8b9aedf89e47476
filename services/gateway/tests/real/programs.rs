//! R-GW-2 for program accounts: a business's program accounts are cached
//! facts like the others (a Check of a program account does not ask accounts
//! each time), evicted when accounts names the business in an event — a
//! program account the registry links later is known at once, and one the
//! business does not have stays denied (R-AZ-6, NO_ROLE).

use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::gateway::v1 as gw;
use tonic::transport::Channel;

use crate::harness::{Suite, memory_context, registry};
use crate::world::{self, ABC};

async fn check(suite: &Suite, principal: &str, resource: &str) -> gw::CheckResponse {
    suite
        .gw()
        .authorization()
        .check(suite.internal(gw::CheckRequest {
            principal: principal.to_owned(),
            item: Some(gw::CheckItem {
                action: ccp_proto::common::v1::Action::View as i32,
                resource: resource.to_owned(),
                submitted_by: String::new(),
            }),
            revision: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_2_program_accounts_are_cached_and_a_newly_linked_one_is_known_at_once() {
    let suite = Suite::start(memory_context(), 1).await;
    let g = suite.gw();
    let bam = world::person(&suite, g, "Alice Bam").await;
    world::register(g, &bam, ABC).await;
    let rm3 = format!("{ABC}RM0003");

    // RM0003 is not ABC's: denied, however often it is asked; the answers
    // after the first come from the cache.
    let before = g_stats(&suite);
    for _ in 0..5 {
        let answer = check(&suite, &bam.principal, &rm3).await;
        assert_eq!(answer.decision, gw::Decision::Deny as i32, "{answer:?}");
        assert_eq!(
            answer.deny_reason,
            gw::DenyReason::NoRole as i32,
            "{answer:?}"
        );
    }
    let after = g_stats(&suite);
    assert!(
        after.hits >= before.hits + 4,
        "program accounts answered from the cache: {before:?} → {after:?}"
    );

    // The registry links RM0003 to ABC: accounts' event evicts the cached list.
    let mut record = registry().into_iter().find(|r| r.bn9 == ABC).unwrap();
    record.program_accounts.push(acc::RegistryProgramAccount {
        reference: "RM0003".to_owned(),
        display_name: "ABC Skylights".to_owned(),
    });
    let channel = Channel::from_shared(format!("http://{}", suite.accounts_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    AccountFactsClient::new(channel)
        .import_registry(suite.internal(acc::ImportRegistryRequest {
            request_id: world::rid(),
            records: vec![record],
        }))
        .await
        .unwrap();
    let mut allowed = false;
    for _ in 0..200 {
        if check(&suite, &bam.principal, &rm3).await.decision == gw::Decision::Allow as i32 {
            allowed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        allowed,
        "the newly linked RM0003 is known within 5 s (the cache lives 60 s)"
    );
}

fn g_stats(suite: &Suite) -> ccp_gateway::facts::FactsStats {
    suite.gw().facts.stats()
}
