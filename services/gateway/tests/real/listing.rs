//! ListAccessible reads facts in bulk (R-GW-3, R-GW-2): a page costs one
//! call per facts service, whatever the number of clients — never one per
//! client, and never an employee's whole assignment list. Counted on the real
//! accounts and delegation servers while a gateway with a cold cache walks
//! a broker's clients as its BAM and as an employee assigned through a group.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ccp_platform::cache::MemoryCache;
use ccp_platform::context::ServiceContext;
use ccp_proto::common::v1::{Action, Role};
use ccp_proto::delegation::v1 as del;
use ccp_proto::gateway::v1 as gw;
use ccp_types::Bn9;

use crate::harness::{Replica, Suite, memory_context, registry, start_gateway};
use crate::world::{
    NORTHERN, Who, assign, client_group, grants, hire, person, register, register_record, relate,
    req, rm,
};

const CLIENTS: u32 = 36;
const PAGE: i32 = 20;

/// A gateway of its own with an empty facts cache (its own shared level).
async fn cold_gateway(suite: &Suite) -> Replica {
    let ctx = ServiceContext {
        cache: Arc::new(MemoryCache::new(100_000)),
        ..suite.ctx.clone()
    };
    start_gateway(&ctx, &suite.gateway_settings()).await
}

/// Walks `who`'s ListAccessible to the end; returns the resources and the
/// number of pages.
async fn walk(gw: &Replica, who: &Who) -> (Vec<gw::AccessibleResource>, usize) {
    let mut all = Vec::new();
    let mut token = String::new();
    for pages in 1..=100 {
        let page = gw
            .authorization()
            .list_accessible(req(
                who,
                gw::ListAccessibleRequest {
                    action: Action::View as i32,
                    page_size: PAGE,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.resources.len() <= PAGE as usize);
        all.extend(page.resources);
        if page.next_page_token.is_empty() {
            return (all, pages);
        }
        token = page.next_page_token;
    }
    panic!("more than 100 pages");
}

/// Calls served by accounts and delegation while `f` runs.
async fn counted<T>(suite: &Suite, f: impl std::future::Future<Output = T>) -> (T, u64, u64) {
    let (a, d) = (
        suite.accounts_served.load(Ordering::SeqCst),
        suite.delegation_served.load(Ordering::SeqCst),
    );
    let out = f.await;
    (
        out,
        suite.accounts_served.load(Ordering::SeqCst) - a,
        suite.delegation_served.load(Ordering::SeqCst) - d,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_3_a_listing_page_costs_one_facts_call_per_service_not_one_per_client() {
    let suite = Suite::start(memory_context(), 1).await;
    let gw = suite.gw();
    let template = registry().into_iter().find(|r| r.bn9 == NORTHERN).unwrap();
    let records: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let mut r = template.clone();
            r.bn9 = Bn9::from_base(31_000_000 + i).unwrap().to_string();
            r.legal_name = format!("Client {i} Ltd.");
            r
        })
        .collect();
    suite.import(records.clone()).await;

    let broker = person(&suite, gw, "Broker Bam").await;
    register(gw, &broker, NORTHERN).await;
    let expire = suite.clock.now() + chrono::Duration::days(200);
    let mut clients = BTreeSet::new();
    for record in &records {
        let bam = person(&suite, gw, "Client Bam").await;
        register_record(gw, &bam, record).await;
        let visibility = [del::Visibility::SubmittedByProvider];
        relate(
            gw,
            &broker,
            NORTHERN,
            &bam,
            &record.bn9,
            &[],
            &visibility,
            expire,
        )
        .await;
        clients.insert(record.bn9.clone());
    }
    // An employee of the broker assigned to every client through one group.
    let clerk = person(&suite, gw, "Broker Clerk").await;
    hire(
        gw,
        &broker,
        &clerk,
        NORTHERN,
        grants(false, &[(&rm(NORTHERN, 1), Role::Reader)]),
    )
    .await;
    let group = client_group(
        gw,
        &broker,
        NORTHERN,
        "Everyone",
        clients.iter().cloned().collect(),
    )
    .await;
    assign(
        gw,
        &broker,
        NORTHERN,
        &clerk.principal,
        del::assignment::Target::ClientGroup(group),
        Role::Reader,
    )
    .await;

    // Three of them also directly, as Editor: the listing's pages merge the
    // direct assignments with the group's and keep the higher role.
    let editor_of: BTreeSet<String> = clients.iter().step_by(12).cloned().collect();
    for client in &editor_of {
        assign(
            gw,
            &broker,
            NORTHERN,
            &clerk.principal,
            del::assignment::Target::Client(client.clone()),
            Role::Editor,
        )
        .await;
    }

    for (who, name) in [
        (&broker, "the broker's BAM"),
        (&clerk, "its assigned employee"),
    ] {
        let cold = cold_gateway(&suite).await;
        let ((resources, pages), accounts_calls, delegation_calls) =
            counted(&suite, walk(&cold, who)).await;
        // Never cut short: every client is listed, through the broker.
        let listed: BTreeSet<String> = resources
            .iter()
            .filter(|r| !r.via_provider.is_empty())
            .map(|r| r.resource.trim_start_matches("businesses/")[..9].to_owned())
            .collect();
        assert_eq!(listed, clients, "{name}: every client listed");
        if who.principal == clerk.principal {
            let editing: BTreeSet<String> = resources
                .iter()
                .filter(|r| r.role == Role::Editor as i32 && r.resource.len() == 9)
                .map(|r| r.resource.clone())
                .collect();
            assert_eq!(editing, editor_of, "{name}: Editor where directly assigned");
        }
        assert!(pages >= 3, "{name}: {pages} pages");
        // O(page): at most one call per facts service per page, plus the
        // principal's own facts once — far fewer than one per client.
        assert!(
            accounts_calls <= pages as u64 + 2,
            "{name}: {accounts_calls} calls to accounts for {pages} pages of {CLIENTS} clients"
        );
        assert!(
            delegation_calls <= pages as u64 + 2,
            "{name}: {delegation_calls} calls to delegation for {pages} pages of {CLIENTS} clients"
        );
    }
}
