//! The distributed deployment starts from the built binary: two replicas of
//! each service on its own PostgreSQL database and two gateway replicas on
//! one Redis, each healthy, and all stop gracefully on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ccp_e2e::Distributed;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn distributed_deployment_on_postgres_and_redis_starts_healthy_and_stops_gracefully() {
    let Some(deployment) = Distributed::start(2, &[]).await.unwrap() else {
        eprintln!("skipped: CCP_TEST_DATABASE_URL / CCP_TEST_REDIS_URL not set");
        return;
    };
    let mut all = vec![
        &deployment.identity,
        &deployment.accounts,
        &deployment.delegation,
    ];
    all.extend(deployment.replicas.iter());
    all.extend(deployment.gateways.iter());
    assert_eq!(all.len(), 8);
    for process in all {
        let channel = tonic::transport::Channel::from_shared(process.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        // Ready within a bounded time (a gateway loads the revocations in force first).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            let status = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            if status == ServingStatus::Serving as i32 || std::time::Instant::now() >= deadline {
                break status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(status, ServingStatus::Serving as i32, "{}", process.service);
    }
    deployment.stop().await.unwrap();
}
