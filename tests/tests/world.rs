//! The stories' harness itself: each world starts, `ccp demo load` (the real
//! binary, with the world's environment) loads the guide's cast into it, a
//! second load is harmless, and both worlds' clocks move: the embedded
//! settable clock, and the distributed processes' shared clock file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ccp_e2e::stories::UNAUTHENTICATED;
use ccp_e2e::{Mode, World};

async fn loads_the_demo_twice(world: &World) {
    let first = world.demo_load().await.unwrap();
    assert!(
        first.stdout.contains("ccp login --dev alice"),
        "{}",
        first.stdout
    );
    let second = world.demo_load().await.unwrap();
    let principals = |out: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.split("# ").nth(1).map(str::to_owned))
            .collect()
    };
    assert_eq!(principals(&first.stdout).len(), 7, "{}", first.stdout);
    assert_eq!(principals(&first.stdout), principals(&second.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_world_loads_the_demo_and_moves_its_clock() {
    let world = World::embedded().await.unwrap();
    assert_eq!(world.mode(), Mode::Embedded);
    loads_the_demo_twice(&world).await;
    let before = world.now();
    world.advance(chrono::Duration::days(91)).unwrap();
    assert_eq!(world.now() - before, chrono::Duration::days(91));
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_distributed_world_loads_the_demo_and_spreads_users_over_both_gateways() {
    let Some(world) = World::distributed().await.unwrap() else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL / CCP_TEST_REDIS_URL not set");
        return;
    };
    assert_eq!(world.mode(), Mode::Distributed);
    assert_eq!(world.gateways().len(), 2);
    assert_ne!(world.gateway_of("alice"), world.gateway_of("bob"));
    assert_eq!(world.gateway_of("alice"), world.gateway_of("alice"));
    loads_the_demo_twice(&world).await;

    // The clock file moves every process and `ccp` command: 91 days on,
    // alice's session has expired, and a new sign-in works again (bounded
    // wait for the processes to re-read the file). The notification stories
    // show the services following it (delegation's sweep, the notifier).
    world.login("alice").await;
    world.ok("alice", &["profile", "show"]).await;
    let before = world.now();
    world.advance(chrono::Duration::days(91)).unwrap();
    let moved = world.now() - before;
    assert!(
        moved >= chrono::Duration::days(91) && moved < chrono::Duration::days(92),
        "{moved}"
    );
    world
        .fails(UNAUTHENTICATED, "alice", &["profile", "show"])
        .await;
    let mut signed_in = false;
    for _ in 0..50 {
        let login = world
            .ccp("alice", &["login", "--dev", "alice"])
            .await
            .unwrap();
        if login.code == 0 && world.ccp("alice", &["profile", "show"]).await.unwrap().code == 0 {
            signed_in = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(signed_in, "alice signs in again 91 days on");
    world.stop().await.unwrap();
}
