//! A service starts and accepts writes while Redis is down (R-EV-1): its
//! events wait in the outbox, the relay reports the bus NOT_SERVING under
//! `ccp.bus`, and publishes them — once — when Redis is back. Redis here is a
//! private server on a spare port, so the test can stop and start it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ccp_platform::bus::{Delivery, EventBus, RedisBus, StartFrom};
use ccp_platform::clock::Clock;
use ccp_platform::context::{CommonSettings, RedisAtStart, ServiceContext};
use ccp_platform::db::connect;
use ccp_platform::store::{
    Begun, Change, OutboxRelay, WriteBy, Writer, create_infrastructure_tables,
};
use ccp_platform::testing::{TestBackend, redis_server_on_spare_port, unique_prefix};
use ccp_proto::common::v1::{DomainEvent, EventType};
use ccp_proto::identity::v1::SignOutResponse;
use ccp_types::RequestId;
use futures::StreamExt as _;
use prost::Message as _;
use tokio::time::timeout;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::server::{HealthReporter, HealthService};

const WAIT: Duration = Duration::from_secs(10);
const STREAM: &str = "ccp.events.test";

async fn bus_status(service: &HealthService) -> ServingStatus {
    use tonic_health::pb::health_server::Health as _;
    match service
        .check(tonic::Request::new(HealthCheckRequest {
            service: OutboxRelay::HEALTH_NAME.to_owned(),
        }))
        .await
    {
        Ok(answer) => answer.into_inner().status(),
        Err(_) => ServingStatus::Unknown,
    }
}

async fn wait_for_status(service: &HealthService, want: ServingStatus) {
    timeout(WAIT, async {
        while bus_status(service).await != want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("ccp.bus did not turn {want:?} in time"));
}

#[tokio::test]
async fn r_ev_1_a_service_starts_and_writes_while_redis_is_down_and_publishes_when_it_returns_redis()
 {
    let mut redis = redis_server_on_spare_port().await;
    redis.stop().await;
    let prefix = unique_prefix();
    let mut settings = CommonSettings::default();
    settings.redis.url = redis.url();
    settings.redis.key_prefix = prefix.clone();

    // The gateway's way refuses to start; a service's way starts.
    assert!(
        ServiceContext::from_settings_with(&settings, RedisAtStart::Required)
            .await
            .is_err()
    );
    let ctx = ServiceContext::from_settings_with(&settings, RedisAtStart::Optional)
        .await
        .expect("a service starts while Redis is down");

    let backend = TestBackend::sqlite();
    let db = connect(&backend.settings("outage")).await.expect("connect");
    create_infrastructure_tables(&db).await.expect("tables");
    let reporter = HealthReporter::new();
    let health = HealthService::from_health_reporter(reporter.clone());
    let relay = OutboxRelay::new(db.clone(), ctx.bus.clone()).with_health(reporter);
    let writer = Writer::new(db, relay.clone(), Clock::system(), "test", STREAM);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));

    // A write is accepted and acknowledged while the bus is down.
    let Begun::Fresh(mut w) = writer
        .begin::<SignOutResponse>(WriteBy::idempotent(
            "person:1",
            "Test",
            RequestId::parse("outage-1").expect("id"),
        ))
        .await
        .expect("begin")
    else {
        panic!("a fresh write");
    };
    w.bump_revision("123456782").await.expect("bump");
    w.record(Change::new(
        EventType::Unspecified,
        "test.outage",
        "things/1",
    ))
    .await
    .expect("record");
    w.commit(SignOutResponse::default())
        .await
        .expect("acknowledged");
    wait_for_status(&health, ServingStatus::NotServing).await;

    // Redis returns (empty): the waiting event is published, once.
    redis.start().await;
    wait_for_status(&health, ServingStatus::Serving).await;
    let reader = RedisBus::connect(redis.url(), prefix)
        .await
        .expect("reader");
    let mut sub = reader
        .subscribe(STREAM, StartFrom::Beginning)
        .await
        .expect("subscribe");
    let mut events = Vec::new();
    loop {
        match timeout(WAIT, sub.next()).await.expect("in time") {
            Some(Ok(Delivery::Event(e))) => {
                events.push(DomainEvent::decode(e.payload.as_slice()).expect("decode"));
            }
            Some(Ok(Delivery::CaughtUp)) => break,
            other => panic!("unexpected delivery {other:?}"),
        }
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].subject, "things/1");
    let _ = stop.send(());
    timeout(WAIT, running)
        .await
        .expect("relay stops")
        .expect("relay");
    let _: Arc<dyn EventBus> = ctx.bus;
}
