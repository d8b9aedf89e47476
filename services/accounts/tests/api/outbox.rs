//! R-EV-1 and R-AU-1: changes commit with their audit records and outbox
//! events; a bus outage delays events and loses none.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ccp_platform::bus::{Delivery, EventBus, RedisBus, StartFrom};
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_platform::revision::Revision;
use ccp_platform::testing::{TestBackend, redis_server_on_spare_port, unique_prefix};
use ccp_proto::common::v1::{DomainEvent, EventType, Role};
use futures::StreamExt as _;
use prost::Message as _;

use crate::helpers::*;

/// Reads up to `n` events after `from`, returning them with the last position.
async fn read(
    bus: &Arc<dyn EventBus>,
    from: StartFrom,
    n: usize,
) -> (Vec<DomainEvent>, ccp_platform::bus::Position) {
    let mut sub = bus
        .subscribe(ccp_accounts::EVENT_STREAM, from)
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut last = None;
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("events arrive")
        {
            Some(Ok(Delivery::Event(d))) => {
                out.push(DomainEvent::decode(d.payload.as_slice()).unwrap());
                last = Some(d.position);
            }
            Some(Ok(Delivery::CaughtUp)) | Some(Err(_)) => {}
            None => panic!("subscription ended"),
        }
    }
    (out, last.unwrap())
}

#[tokio::test]
async fn r_ev_1_events_survive_a_bus_outage_and_arrive_once_in_order_per_business() {
    for backend in TestBackend::all().await {
        let mut redis = redis_server_on_spare_port().await;
        let clock = Clock::settable(t0());
        let mut ctx = ServiceContext::in_memory(clock.clone());
        let bus: Arc<dyn EventBus> = Arc::new(
            RedisBus::connect(redis.url(), unique_prefix())
                .await
                .unwrap(),
        );
        ctx.bus = bus.clone();
        let app = spawn_app_ctx(&backend, Options::default(), ctx, clock).await;
        redis.stop().await;
        // The bus is down: every change still commits.
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let bob = app.person("Bob Tremblay").await;
        let carol = app.person("Carol Singh").await;
        // bob manages RM0001: carol's request names him for the notifications service.
        app.join(&alice, &bob, role("RM0001", Role::Pam)).await;
        app.join(&alice, &carol, role("RM0002", Role::Editor)).await;
        let dave = app.person("Dave Roy").await;
        let mut itn = abc_registration();
        itn.program_account = format!("{ITN}RM0001");
        itn.legal_name = "ITN Logistics Inc.".to_owned();
        itn.address = Some(ccp_proto::common::v1::Address {
            line1: "6725 Airport Road".to_owned(),
            city: "Mississauga".to_owned(),
            province: "ON".to_owned(),
            postal_code: "L4V1V2".to_owned(),
            ..Default::default()
        });
        itn.answers = vec![ccp_proto::accounts::v1::KnownFactAnswer {
            question_id: "daily_notice_total".to_owned(),
            answer: "98765.43".to_owned(),
        }];
        app.accounts()
            .register_business(app.req(itn, &dave.token))
            .await
            .unwrap();
        assert_eq!(app.role_facts(&bob.principal).await.memberships.len(), 1);
        assert_eq!(app.role_facts(&dave.principal).await.memberships.len(), 1);
        assert!(app.audit_actions(&alice, ABC).await.len() >= 5);
        // The bus returns (empty): the relay delivers the backlog.
        redis.start().await;
        const TOTAL: usize = 6;
        let (first, pos) = read(&bus, StartFrom::Beginning, 3).await;
        // The consumer acknowledges (keeps the position) and resumes after it.
        let (rest, _) = read(&bus, StartFrom::After(pos), TOTAL - 3).await;
        let all: Vec<DomainEvent> = first.into_iter().chain(rest).collect();
        let ids: HashSet<&str> = all.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), TOTAL, "no duplicates on {}", backend.name());
        let kinds: Vec<i32> = all
            .iter()
            .filter(|e| e.businesses == [ABC])
            .map(|e| e.r#type)
            .collect();
        assert_eq!(
            kinds,
            [
                EventType::BusinessRegistered as i32,
                EventType::EmployeeRequestCreated as i32,
                EventType::EmployeeRequestApproved as i32,
                EventType::EmployeeRequestCreated as i32,
                EventType::EmployeeRequestApproved as i32,
            ]
        );
        let created: Vec<serde_json::Value> = all
            .iter()
            .filter(|e| e.r#type == EventType::EmployeeRequestCreated as i32)
            .map(|e| serde_json::from_str(&e.details_json).unwrap())
            .collect();
        assert_eq!(created.len(), 2);
        assert_eq!(created[0]["program_managers"], serde_json::json!([]));
        assert_eq!(
            created[1]["program_managers"],
            serde_json::json!([bob.principal.clone()])
        );
        assert_eq!(
            created[1]["note"],
            "Hi, I need access to make corrections and adjustments"
        );
        let mut last: HashMap<String, i64> = HashMap::new();
        for e in &all {
            let r: Revision = e.revision.parse().unwrap();
            let prev = last.insert(r.scope.clone(), r.counter).unwrap_or(0);
            assert!(r.counter > prev, "in order per business");
        }
        let registered = all
            .iter()
            .find(|e| e.r#type == EventType::BusinessRegistered as i32)
            .unwrap();
        assert_eq!(registered.principals, vec![alice.principal.clone()]);
        // Nothing more arrives (no duplicates after the backlog).
        let mut sub = bus
            .subscribe(ccp_accounts::EVENT_STREAM, StartFrom::Beginning)
            .await
            .unwrap();
        let mut seen = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .unwrap()
            {
                Some(Ok(Delivery::Event(_))) => seen += 1,
                Some(Ok(Delivery::CaughtUp)) => break,
                _ => {}
            }
        }
        assert_eq!(seen, TOTAL);
        app.stop().await;
    }
}
