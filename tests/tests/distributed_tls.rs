//! The distributed deployment with TLS on every hop: each `ccp serve`
//! process serves a certificate made in the test by a test CA, the services
//! require a client certificate of that CA (the gateway does not: its callers
//! are people), and every caller (gateway → services, accounts → identity,
//! delegation → accounts and identity, the `ccp` command → gateway) speaks
//! https checked against the test CA. Story 4 (registration, a broker's
//! relationship request and its approval) runs through it; `ccp --ca-file`
//! reaches the gateway, and a wrong CA fails with a message that says so.
//! Runs when `CCP_TEST_DATABASE_URL` and `CCP_TEST_REDIS_URL` are set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ccp_e2e::{World, stories};
use ccp_platform::testing::pki::TestPki;

const EXIT_UNAVAILABLE: i32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hop_speaks_tls_and_a_wrong_ca_is_named() {
    let pki = TestPki::new("ccp test CA");
    let (cert, key) = pki.issue("service", &["localhost", "127.0.0.1"]);
    let (client_cert, client_key) = pki.issue("caller", &["ccp-services"]);
    let [ca, cert, key, client_cert, client_key] =
        [pki.ca(), cert, key, client_cert, client_key].map(|p| p.display().to_string());
    let mut env: Vec<(String, String)> = Vec::new();
    for service in ["IDENTITY", "ACCOUNTS", "DELEGATION", "GATEWAY"] {
        env.push((format!("CCP_{service}__SERVER__TLS_CERT"), cert.clone()));
        env.push((format!("CCP_{service}__SERVER__TLS_KEY"), key.clone()));
        if service != "GATEWAY" {
            env.push((format!("CCP_{service}__SERVER__TLS_CLIENT_CA"), ca.clone()));
        }
    }
    env.push(("CCP_UPSTREAM__TLS_CA".into(), ca.clone()));
    env.push(("CCP_UPSTREAM__TLS_CERT".into(), client_cert));
    env.push(("CCP_UPSTREAM__TLS_KEY".into(), client_key));
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let Some(world) = World::distributed_with(1, &extra, None).await.unwrap() else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL / CCP_TEST_REDIS_URL not set");
        return;
    };
    let gateway = world.gateways()[0].clone();
    assert!(gateway.starts_with("https://"), "{gateway}");
    assert!(world.accounts_url().starts_with("https://"));

    // Registration, a broker's request across delegation and accounts, and
    // its approval: every hop over TLS (the commands use `upstream.tls_ca`).
    stories::story_4_the_broker_request_waits_for_registration_and_is_approved(&world).await;

    // `--ca-file` alone (no `upstream.*` in the environment) reaches the gateway.
    let without_upstream_tls = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--gateway".to_owned(), gateway.clone()]);
        all.extend([
            "--session".to_owned(),
            world.session_file("alice").display().to_string(),
        ]);
        all
    };
    let out = world
        .run_without(
            &without_upstream_tls(&["whoami", "--json", "--ca-file", &ca]),
            "CCP_UPSTREAM__TLS_",
        )
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("principal"), "{}", out.stdout);

    // A gateway certificate another CA signed is refused, and the message says why.
    let other = TestPki::new("another CA");
    let other_ca = other.ca().display().to_string();
    let out = world
        .run_without(
            &without_upstream_tls(&["whoami", "--ca-file", &other_ca]),
            "CCP_UPSTREAM__TLS_",
        )
        .await
        .unwrap();
    assert_eq!(out.code, EXIT_UNAVAILABLE, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("invalid peer certificate") && out.stderr.contains("UnknownIssuer"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&gateway), "{}", out.stderr);

    // Plain http to a TLS gateway gets no answer, and says so (the
    // connection closed, or an HTTP/2 protocol error, as timing has it; never
    // a silent SIGPIPE on the closed socket).
    let plain = gateway.replace("https://", "http://");
    let out = world
        .run(&[
            "whoami".to_owned(),
            "--gateway".to_owned(),
            plain,
            "--session".to_owned(),
            world.session_file("alice").display().to_string(),
        ])
        .await
        .unwrap();
    assert_eq!(out.code, EXIT_UNAVAILABLE, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("cannot reach the gateway at http://"),
        "{}",
        out.stderr
    );

    world.stop().await.unwrap();
}
