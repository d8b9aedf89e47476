//! Readiness follows the database: a service's gRPC health is NOT_SERVING
//! while its PostgreSQL is away and SERVING again once it is back (its
//! process keeps running: liveness is not readiness). The PostgreSQL is the
//! suite's private one, so it can be stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ccp_platform::config::ServerSettings;
use ccp_platform::context::ServiceContext;
use ccp_reliability::backends::{PrivatePostgres, missing_binaries};
use secrecy::SecretString;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn status(health: &mut HealthClient<tonic::transport::Channel>) -> i32 {
    health
        .check(HealthCheckRequest {
            service: "ccp.accounts.v1.Accounts".into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

async fn wait_for(health: &mut HealthClient<tonic::transport::Channel>, want: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(health).await != want as i32 {
        assert!(Instant::now() < deadline, "health never became {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ev_1_a_service_is_not_serving_while_its_database_is_away_and_serving_when_it_returns() {
    let missing = missing_binaries();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs the PostgreSQL server binaries and redis-server: {missing:?}"
        );
        eprintln!("skipped: missing {missing:?}");
        return;
    }
    let postgres = PrivatePostgres::start().await.unwrap();
    let ctx = ServiceContext::in_memory(ccp_platform::clock::Clock::system());
    let mut settings = ccp_accounts::config::AccountsSettings {
        server: ServerSettings {
            listen: "127.0.0.1:0".into(),
            ..ServerSettings::default()
        },
        ..Default::default()
    };
    settings.database.url = SecretString::from(postgres.admin_url());
    settings.database.connect_timeout_ms = 1_000;
    settings.database.migrate_on_start = true;
    let app = ccp_accounts::Application::build(&ctx, &settings)
        .await
        .unwrap();
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    wait_for(&mut health, ServingStatus::Serving).await;

    postgres.stop_immediate().await.unwrap();
    wait_for(&mut health, ServingStatus::NotServing).await;
    postgres.start_server().await.unwrap();
    wait_for(&mut health, ServingStatus::Serving).await;

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
}
