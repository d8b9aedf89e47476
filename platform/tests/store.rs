//! The infrastructure tables every service keeps (`store`): revision counters, the audit trail
//! (R-AU-1), the transactional outbox and its relay (R-EV-1), and idempotency records — each case
//! on SQLite and, when `CCP_TEST_DATABASE_URL` is set, on PostgreSQL (a fresh database per case).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ccp_platform::bus::{
    BusError, Delivery, EventBus, MemoryBus, Position, StartFrom, Subscription,
};
use ccp_platform::db::{connect, is_unique_violation};
use ccp_platform::store::{
    AuditRecord, AuditRow, AuditScope, OutboxRelay, append_audit, bump_revision,
    create_infrastructure_tables, current_revision, enqueue_event, idempotent_response, list_audit,
    store_idempotent_response,
};
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::DomainEvent;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures::StreamExt as _;
use prost::Message as _;
use sea_orm::{DatabaseConnection, TransactionTrait as _};
use tokio::time::timeout;

/// Upper bound for any single wait.
const WAIT: Duration = Duration::from_secs(10);
const STREAM: &str = "ccp.test.events";
const BN_A: &str = "123456782";
const BN_B: &str = "876543219";
const BN_C: &str = "111111118";

/// Connects to the backend's `schema` and creates the infrastructure tables twice (idempotent).
async fn open(backend: &TestBackend, schema: &str) -> DatabaseConnection {
    let db = connect(&backend.settings(schema))
        .await
        .unwrap_or_else(|e| panic!("{}: connect: {e}", backend.name()));
    create_infrastructure_tables(&db)
        .await
        .unwrap_or_else(|e| panic!("{}: create tables: {e}", backend.name()));
    create_infrastructure_tables(&db)
        .await
        .unwrap_or_else(|e| panic!("{}: create tables a second time: {e}", backend.name()));
    db
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn event(n: usize) -> DomainEvent {
    DomainEvent {
        id: format!("event-{n}"),
        service: "test".to_owned(),
        subject: format!("things/{n}"),
        businesses: vec![BN_A.to_owned()],
        ..Default::default()
    }
}

/// Reads every event now in `stream` of `bus`, in order, and decodes them.
async fn events_in(bus: &dyn EventBus, stream: &str) -> Vec<DomainEvent> {
    let mut sub = bus
        .subscribe(stream, StartFrom::Beginning)
        .await
        .expect("subscribe");
    let mut events = Vec::new();
    loop {
        let item = timeout(WAIT, sub.next())
            .await
            .expect("bus delivered in time")
            .expect("subscription ended");
        match item.expect("delivery") {
            Delivery::Event(delivered) => {
                events.push(DomainEvent::decode(delivered.payload.as_slice()).expect("decode"));
            }
            Delivery::CaughtUp => return events,
        }
    }
}

fn ids(events: &[DomainEvent]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

fn expected_ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("event-{n}")).collect()
}

#[tokio::test]
async fn revisions_count_one_two_three_per_scope_independently() {
    for backend in TestBackend::all().await {
        let name = backend.name();
        let db = open(&backend, "svc").await;
        assert_eq!(
            current_revision(&db, BN_A).await.unwrap(),
            0,
            "{name}: never changed"
        );
        assert_eq!(bump_revision(&db, BN_A).await.unwrap(), 1, "{name}");
        assert_eq!(bump_revision(&db, BN_A).await.unwrap(), 2, "{name}");
        assert_eq!(
            bump_revision(&db, BN_B).await.unwrap(),
            1,
            "{name}: scopes are independent"
        );
        assert_eq!(bump_revision(&db, BN_A).await.unwrap(), 3, "{name}");
        assert_eq!(current_revision(&db, BN_A).await.unwrap(), 3, "{name}");
        assert_eq!(current_revision(&db, BN_B).await.unwrap(), 1, "{name}");
        assert_eq!(current_revision(&db, BN_C).await.unwrap(), 0, "{name}");

        // A bump in a rolled-back transaction is not kept; a committed one is.
        let txn = db.begin().await.unwrap();
        assert_eq!(bump_revision(&txn, BN_A).await.unwrap(), 4, "{name}");
        txn.rollback().await.unwrap();
        assert_eq!(
            current_revision(&db, BN_A).await.unwrap(),
            3,
            "{name}: rolled back"
        );
        let txn = db.begin().await.unwrap();
        assert_eq!(bump_revision(&txn, BN_A).await.unwrap(), 4, "{name}");
        txn.commit().await.unwrap();
        assert_eq!(
            current_revision(&db, BN_A).await.unwrap(),
            4,
            "{name}: committed"
        );
    }
}

fn record(actor: &str, acting_for: Option<&str>, other: Option<&str>, action: &str) -> AuditRecord {
    AuditRecord {
        actor: actor.to_owned(),
        acting_for: acting_for.map(str::to_owned),
        other_business: other.map(str::to_owned),
        action: action.to_owned(),
        target: format!("businesses/{}/things/1", acting_for.unwrap_or("none")),
        before_json: String::new(),
        after_json: format!("{{\"action\":\"{action}\"}}"),
        request_id: format!("req-{action}"),
        trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
    }
}

fn actions(rows: &[AuditRow]) -> Vec<&str> {
    rows.iter().map(|r| r.action.as_str()).collect()
}

#[tokio::test]
async fn audit_lists_by_business_and_actor_in_order_with_paging_and_start_time() {
    const ALICE: &str = "person:0190a000-0000-7000-8000-000000000001";
    const BOB: &str = "person:0190a000-0000-7000-8000-000000000002";
    for backend in TestBackend::all().await {
        let name = backend.name();
        let db = open(&backend, "svc").await;
        let records = [
            // a1: Alice for A.
            record(ALICE, Some(BN_A), None, "a1"),
            // a2: Bob for B, concerning A (a relationship's other party).
            record(BOB, Some(BN_B), Some(BN_A), "a2"),
            // a3: Bob for C only.
            record(BOB, Some(BN_C), None, "a3"),
            // a4: Alice for A, concerning B.
            record(ALICE, Some(BN_A), Some(BN_B), "a4"),
            // a5: the system, for nobody.
            record("system", None, None, "a5"),
            // a6: Alice for A.
            record(ALICE, Some(BN_A), None, "a6"),
        ];
        for (i, r) in records.iter().enumerate() {
            let minutes = i64::try_from(i).unwrap();
            append_audit(&db, r, t0() + ChronoDuration::minutes(minutes))
                .await
                .unwrap();
        }

        let all_a = list_audit(&db, &AuditScope::Business(BN_A.to_owned()), 0, None, 100)
            .await
            .unwrap();
        assert_eq!(
            actions(&all_a),
            ["a1", "a2", "a4", "a6"],
            "{name}: acting_for or other_business"
        );
        assert!(
            all_a.windows(2).all(|w| w[0].seq < w[1].seq),
            "{name}: oldest first"
        );
        let first = &all_a[0];
        assert_eq!(first.actor, ALICE);
        assert_eq!(first.acting_for.as_deref(), Some(BN_A));
        assert_eq!(first.other_business, None);
        assert_eq!(first.target, format!("businesses/{BN_A}/things/1"));
        assert_eq!(first.after_json, "{\"action\":\"a1\"}");
        assert_eq!(first.request_id, "req-a1");
        assert_eq!(first.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(first.time, t0(), "{name}: time round-trips");
        assert!(!first.id.is_empty());

        let all_b = list_audit(&db, &AuditScope::Business(BN_B.to_owned()), 0, None, 100)
            .await
            .unwrap();
        assert_eq!(actions(&all_b), ["a2", "a4"], "{name}");

        let bob = list_audit(&db, &AuditScope::Actor(BOB.to_owned()), 0, None, 100)
            .await
            .unwrap();
        assert_eq!(actions(&bob), ["a2", "a3"], "{name}");
        let system = list_audit(&db, &AuditScope::Actor("system".to_owned()), 0, None, 100)
            .await
            .unwrap();
        assert_eq!(actions(&system), ["a5"], "{name}");

        // Paging: two at a time, resuming after the last sequence seen.
        let scope = AuditScope::Business(BN_A.to_owned());
        let page1 = list_audit(&db, &scope, 0, None, 2).await.unwrap();
        assert_eq!(actions(&page1), ["a1", "a2"], "{name}");
        let page2 = list_audit(&db, &scope, page1[1].seq, None, 2)
            .await
            .unwrap();
        assert_eq!(actions(&page2), ["a4", "a6"], "{name}");
        let page3 = list_audit(&db, &scope, page2[1].seq, None, 2)
            .await
            .unwrap();
        assert!(page3.is_empty(), "{name}");

        // start_time is inclusive: from a4's instant on.
        let since = list_audit(&db, &scope, 0, Some(t0() + ChronoDuration::minutes(3)), 100)
            .await
            .unwrap();
        assert_eq!(actions(&since), ["a4", "a6"], "{name}");
        let later = list_audit(&db, &scope, 0, Some(t0() + ChronoDuration::days(1)), 100)
            .await
            .unwrap();
        assert!(later.is_empty(), "{name}");

        // A record appended in a rolled-back transaction is not kept.
        let txn = db.begin().await.unwrap();
        append_audit(&txn, &record(ALICE, Some(BN_A), None, "a7"), t0())
            .await
            .unwrap();
        txn.rollback().await.unwrap();
        let after = list_audit(&db, &scope, 0, None, 100).await.unwrap();
        assert_eq!(actions(&after), ["a1", "a2", "a4", "a6"], "{name}");
    }
}

#[tokio::test]
async fn outbox_publishes_committed_events_in_order_once() {
    for backend in TestBackend::all().await {
        let name = backend.name();
        let db = open(&backend, "svc").await;
        let bus = Arc::new(MemoryBus::new(10_000));
        let relay = OutboxRelay::new(db.clone(), bus.clone());

        // Rolled back: nothing is left to publish.
        let txn = db.begin().await.unwrap();
        enqueue_event(&txn, STREAM, &event(100), t0())
            .await
            .unwrap();
        txn.rollback().await.unwrap();
        assert_eq!(
            relay.publish_pending().await.unwrap(),
            0,
            "{name}: rolled back"
        );

        // Not yet committed: invisible to the relay; committed: published.
        let txn = db.begin().await.unwrap();
        for n in 0..3 {
            enqueue_event(&txn, STREAM, &event(n), t0()).await.unwrap();
        }
        assert_eq!(
            relay.publish_pending().await.unwrap(),
            0,
            "{name}: uncommitted"
        );
        txn.commit().await.unwrap();
        for n in 3..5 {
            enqueue_event(&db, STREAM, &event(n), t0()).await.unwrap();
        }
        enqueue_event(&db, "ccp.other.events", &event(50), t0())
            .await
            .unwrap();

        assert_eq!(relay.publish_pending().await.unwrap(), 6, "{name}");
        let published = events_in(bus.as_ref(), STREAM).await;
        assert_eq!(
            ids(&published),
            expected_ids(0..5),
            "{name}: in commit order"
        );
        assert_eq!(published[0], event(0), "{name}: payload round-trips");
        assert_eq!(
            ids(&events_in(bus.as_ref(), "ccp.other.events").await),
            ["event-50"]
        );

        // Marked published: a second pass publishes nothing more.
        assert_eq!(relay.publish_pending().await.unwrap(), 0, "{name}");
        assert_eq!(events_in(bus.as_ref(), STREAM).await.len(), 5, "{name}");

        // More than one batch (the relay reads 100 at a time).
        for n in 1000..1250 {
            enqueue_event(&db, STREAM, &event(n), t0()).await.unwrap();
        }
        assert_eq!(relay.publish_pending().await.unwrap(), 250, "{name}");
        let published = events_in(bus.as_ref(), STREAM).await;
        let mut expected = expected_ids(0..5);
        expected.extend(expected_ids(1000..1250));
        assert_eq!(ids(&published), expected, "{name}");
    }
}

/// A bus that is unavailable while `down` is set, and fails after `fail_after` successful
/// publishes when that is set; otherwise publishes to a memory bus.
struct FlakyBus {
    inner: MemoryBus,
    down: AtomicBool,
    fail_after: AtomicUsize,
    attempts: AtomicUsize,
}

impl FlakyBus {
    fn new() -> Self {
        Self {
            inner: MemoryBus::new(10_000),
            down: AtomicBool::new(true),
            fail_after: AtomicUsize::new(usize::MAX),
            attempts: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl EventBus for FlakyBus {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<Position, BusError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable("test: bus is down".to_owned()));
        }
        let left = self.fail_after.load(Ordering::SeqCst);
        if left == 0 {
            return Err(BusError::Unavailable(
                "test: bus went down mid-batch".to_owned(),
            ));
        }
        if left != usize::MAX {
            self.fail_after.store(left - 1, Ordering::SeqCst);
        }
        self.inner.publish(stream, payload).await
    }

    async fn subscribe(&self, stream: &str, from: StartFrom) -> Result<Subscription, BusError> {
        self.inner.subscribe(stream, from).await
    }
}

#[tokio::test]
async fn outbox_relay_loses_nothing_while_the_bus_is_down_and_publishes_exactly_once_after() {
    for backend in TestBackend::all().await {
        let name = backend.name();
        let db = open(&backend, "svc").await;
        let bus = Arc::new(FlakyBus::new());
        let relay = OutboxRelay::new(db.clone(), bus.clone());
        for n in 0..5 {
            enqueue_event(&db, STREAM, &event(n), t0()).await.unwrap();
        }

        // Down: every pass fails, nothing is published, nothing is marked.
        for _ in 0..3 {
            assert!(
                relay.publish_pending().await.is_err(),
                "{name}: the failure is reported"
            );
        }
        assert!(bus.attempts.load(Ordering::SeqCst) >= 3);
        assert!(events_in(&bus.inner, STREAM).await.is_empty(), "{name}");

        // Up again: everything, once, in order.
        bus.down.store(false, Ordering::SeqCst);
        assert_eq!(relay.publish_pending().await.unwrap(), 5, "{name}");
        assert_eq!(
            ids(&events_in(&bus.inner, STREAM).await),
            expected_ids(0..5),
            "{name}"
        );
        assert_eq!(relay.publish_pending().await.unwrap(), 0, "{name}");

        // Down in the middle of a batch: what was acknowledged stays published, the rest waits.
        for n in 5..10 {
            enqueue_event(&db, STREAM, &event(n), t0()).await.unwrap();
        }
        bus.fail_after.store(2, Ordering::SeqCst);
        assert!(relay.publish_pending().await.is_err(), "{name}");
        assert_eq!(
            ids(&events_in(&bus.inner, STREAM).await),
            expected_ids(0..7),
            "{name}"
        );
        bus.fail_after.store(usize::MAX, Ordering::SeqCst);
        assert_eq!(relay.publish_pending().await.unwrap(), 3, "{name}");
        assert_eq!(
            ids(&events_in(&bus.inner, STREAM).await),
            expected_ids(0..10),
            "{name}"
        );
        assert_eq!(relay.publish_pending().await.unwrap(), 0, "{name}");
    }
}

#[tokio::test]
async fn outbox_relay_run_publishes_when_notified_and_stops_on_shutdown() {
    for backend in TestBackend::all().await {
        let name = backend.name();
        let db = open(&backend, "svc").await;
        let bus = Arc::new(MemoryBus::new(10_000));
        let relay = OutboxRelay::new(db.clone(), bus.clone());
        let mut sub = bus.subscribe(STREAM, StartFrom::Beginning).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(relay.clone().run(async move {
            let _ = stopped.await;
        }));

        enqueue_event(&db, STREAM, &event(1), t0()).await.unwrap();
        relay.notify();
        let mut seen = Vec::new();
        while seen.is_empty() {
            match timeout(WAIT, sub.next())
                .await
                .expect("relayed in time")
                .unwrap()
                .unwrap()
            {
                Delivery::Event(d) => seen.push(DomainEvent::decode(d.payload.as_slice()).unwrap()),
                Delivery::CaughtUp => {}
            }
        }
        assert_eq!(ids(&seen), ["event-1"], "{name}");

        stop.send(()).unwrap();
        timeout(WAIT, running)
            .await
            .expect("relay stopped in time")
            .unwrap();
    }
}

#[tokio::test]
async fn idempotency_records_round_trip_and_a_duplicate_is_a_unique_violation() {
    const P: &str = "person:0190a000-0000-7000-8000-000000000001";
    const M: &str = "/ccp.accounts.v1.Accounts/RegisterBusiness";
    for backend in TestBackend::all().await {
        let name = backend.name();
        let db = open(&backend, "svc").await;
        assert_eq!(
            idempotent_response(&db, P, M, "r1").await.unwrap(),
            None,
            "{name}"
        );

        let response = vec![0u8, 1, 2, 254, 255];
        store_idempotent_response(&db, P, M, "r1", &response, t0())
            .await
            .unwrap();
        assert_eq!(
            idempotent_response(&db, P, M, "r1").await.unwrap(),
            Some(response.clone())
        );

        // Keyed by principal, method and request id together.
        assert_eq!(
            idempotent_response(&db, P, M, "r2").await.unwrap(),
            None,
            "{name}"
        );
        assert_eq!(
            idempotent_response(&db, "system", M, "r1").await.unwrap(),
            None,
            "{name}"
        );
        assert_eq!(
            idempotent_response(&db, P, "/other", "r1").await.unwrap(),
            None,
            "{name}"
        );
        store_idempotent_response(&db, P, "/other", "r1", b"other", t0())
            .await
            .unwrap();
        assert_eq!(
            idempotent_response(&db, P, "/other", "r1")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"other"[..])
        );

        // A duplicate fails on the key and changes nothing.
        let err = store_idempotent_response(&db, P, M, "r1", b"second", t0())
            .await
            .unwrap_err();
        assert!(is_unique_violation(&err), "{name}: {err}");
        assert_eq!(
            idempotent_response(&db, P, M, "r1").await.unwrap(),
            Some(response),
            "{name}"
        );

        // Empty responses are stored too.
        store_idempotent_response(&db, P, M, "empty", &[], t0())
            .await
            .unwrap();
        assert_eq!(
            idempotent_response(&db, P, M, "empty").await.unwrap(),
            Some(Vec::new())
        );
    }
}

#[tokio::test]
async fn two_service_schemas_in_one_database_keep_separate_tables() {
    for backend in TestBackend::all().await {
        let name = backend.name();
        let a = open(&backend, "svc_a").await;
        let b = open(&backend, "svc_b").await;

        assert_eq!(bump_revision(&a, BN_A).await.unwrap(), 1, "{name}");
        assert_eq!(bump_revision(&a, BN_A).await.unwrap(), 2, "{name}");
        append_audit(&a, &record("system", Some(BN_A), None, "in-a"), t0())
            .await
            .unwrap();
        enqueue_event(&a, STREAM, &event(1), t0()).await.unwrap();
        store_idempotent_response(&a, "system", "/m", "r", b"a", t0())
            .await
            .unwrap();

        assert_eq!(
            current_revision(&b, BN_A).await.unwrap(),
            0,
            "{name}: b sees no revision"
        );
        let scope = AuditScope::Business(BN_A.to_owned());
        assert!(
            list_audit(&b, &scope, 0, None, 100)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_eq!(
            idempotent_response(&b, "system", "/m", "r").await.unwrap(),
            None,
            "{name}"
        );
        let bus_b = Arc::new(MemoryBus::new(100));
        assert_eq!(
            OutboxRelay::new(b.clone(), bus_b)
                .publish_pending()
                .await
                .unwrap(),
            0,
            "{name}"
        );
        // The same key in b is a fresh row, not a duplicate of a's.
        store_idempotent_response(&b, "system", "/m", "r", b"b", t0())
            .await
            .unwrap();
        assert_eq!(bump_revision(&b, BN_A).await.unwrap(), 1, "{name}");

        // And a is unchanged by b's writes.
        assert_eq!(current_revision(&a, BN_A).await.unwrap(), 2, "{name}");
        assert_eq!(
            idempotent_response(&a, "system", "/m", "r")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"a"[..])
        );
        let bus_a = Arc::new(MemoryBus::new(100));
        assert_eq!(
            OutboxRelay::new(a.clone(), bus_a)
                .publish_pending()
                .await
                .unwrap(),
            1,
            "{name}"
        );

        if let TestBackend::Postgres(_) = backend {
            // The tables really live in the two schemas.
            use sea_orm::{ConnectionTrait as _, Statement};
            let rows = a
                .query_all_raw(Statement::from_string(
                    a.get_database_backend(),
                    "SELECT table_schema FROM information_schema.tables \
                     WHERE table_name = 'revisions' ORDER BY table_schema"
                        .to_owned(),
                ))
                .await
                .unwrap();
            let schemas: Vec<String> = rows
                .iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect();
            assert_eq!(schemas, ["svc_a", "svc_b"]);
        }
    }
}

#[tokio::test]
async fn r_ev_1_replicas_relaying_one_outbox_publish_each_event_once_in_order_postgres() {
    // Replicas share PostgreSQL; SQLite is the one-process embedded mode.
    if let Some(backend) = TestBackend::postgres().await {
        let name = backend.name();
        let db = open(&backend, "svc").await;
        let bus = Arc::new(MemoryBus::new(10_000));
        let txn = db.begin().await.unwrap();
        for n in 0..300 {
            enqueue_event(&txn, STREAM, &event(n), t0()).await.unwrap();
        }
        txn.commit().await.unwrap();
        // Three replicas of the service, each with its own pool, relay the
        // same outbox at the same moment.
        let mut replicas = Vec::new();
        for _ in 0..3 {
            let own = connect(&backend.settings("svc")).await.unwrap();
            let relay = OutboxRelay::new(own, bus.clone());
            replicas.push(tokio::spawn(async move {
                let mut total = 0;
                for _ in 0..20 {
                    total += relay.publish_pending().await.unwrap();
                    tokio::task::yield_now().await;
                }
                total
            }));
        }
        let mut total = 0;
        for replica in replicas {
            total += timeout(WAIT, replica).await.unwrap().unwrap();
        }
        assert_eq!(total, 300, "{name}: publications counted by the relays");
        let published = events_in(bus.as_ref(), STREAM).await;
        assert_eq!(ids(&published), expected_ids(0..300), "{name}");
    }
}

/// The set-based queries the stores keep as SQL (`db::all`, `db::one`) run as prepared
/// statements on PostgreSQL, parsed and planned once per pooled connection and executed by
/// name after that (sqlx's statement cache): a second run adds no statement.
#[tokio::test]
async fn facts_queries_are_prepared_once_per_connection_on_postgres() {
    use sea_orm::FromQueryResult;
    #[derive(Debug, FromQueryResult)]
    struct Count {
        n: i64,
    }
    let Some(backend) = TestBackend::postgres().await else {
        return;
    };
    let mut settings = backend.settings("prepared");
    // One connection, so every query below runs on the one whose statements are counted.
    settings.max_connections = 1;
    let db = connect(&settings).await.unwrap();
    create_infrastructure_tables(&db).await.unwrap();
    let prepared = |db: DatabaseConnection| async move {
        ccp_platform::db::one::<Count, _>(
            &db,
            "SELECT count(*)::bigint AS n FROM pg_prepared_statements WHERE from_sql = false",
            vec![],
        )
        .await
        .unwrap()
        .unwrap()
        .n
    };
    let before = prepared(db.clone()).await;
    let revision = |scope: &'static str| {
        let db = db.clone();
        async move {
            ccp_platform::db::one::<Count, _>(
                &db,
                "SELECT COALESCE(MAX(counter), 0)::bigint AS n FROM revisions WHERE scope = $1",
                vec![scope.into()],
            )
            .await
            .unwrap()
            .unwrap()
            .n
        }
    };
    assert_eq!(revision(BN_A).await, 0);
    let after_first = prepared(db.clone()).await;
    assert_eq!(
        after_first,
        before + 1,
        "the first run prepares the query (and the count query itself was prepared before)"
    );
    for scope in [BN_A, BN_B, BN_C] {
        assert_eq!(revision(scope).await, 0);
    }
    assert_eq!(
        prepared(db.clone()).await,
        after_first,
        "later runs with other values reuse the prepared statement"
    );
}

/// Statements over data skewed by tenant (delegation's listings) run in
/// `db::begin_planned_with_values`: planned with their values every time, never with a generic
/// plan — a plan costed for the average provider read every row of a broker with 50k clients.
/// PostgreSQL switches a statement to its generic plan after five runs unless told not to, so
/// eight runs of one statement there must all be custom plans, and the connection goes back to
/// letting PostgreSQL choose after the transaction (a point read re-planned on every run spends
/// most of its time planning). Nothing is planned in parallel.
#[tokio::test]
async fn prepared_statements_are_planned_with_their_values_on_postgres() {
    use sea_orm::FromQueryResult;
    #[derive(Debug, FromQueryResult)]
    struct Plans {
        generic: i64,
        custom: i64,
    }
    #[derive(Debug, FromQueryResult)]
    struct Count {
        n: i64,
    }
    let Some(backend) = TestBackend::postgres().await else {
        return;
    };
    let mut settings = backend.settings("custom_plans");
    settings.max_connections = 1;
    #[derive(Debug, FromQueryResult)]
    struct Setting {
        value: String,
    }
    let setting = |db: sea_orm::DatabaseConnection, name: &'static str| async move {
        ccp_platform::db::one::<Setting, _>(
            &db,
            &format!("SELECT current_setting('{name}') AS value"),
            vec![],
        )
        .await
        .unwrap()
        .unwrap()
        .value
    };
    let chosen = connect(&settings).await.unwrap();
    assert_eq!(
        setting(chosen.clone(), "plan_cache_mode").await,
        "auto",
        "without the ask, PostgreSQL chooses"
    );
    assert_eq!(
        setting(chosen, "max_parallel_workers_per_gather").await,
        "0"
    );
    let db = connect(&settings).await.unwrap();
    create_infrastructure_tables(&db).await.unwrap();
    const QUERY: &str = "SELECT COALESCE(MAX(counter), 0)::bigint AS n FROM revisions \
                         WHERE scope = $1 /* custom plans */";
    let txn = ccp_platform::db::begin_planned_with_values(&db)
        .await
        .unwrap();
    for scope in [BN_A, BN_B, BN_C, BN_A, BN_B, BN_C, BN_A, BN_B] {
        let n = ccp_platform::db::one::<Count, _>(&txn, QUERY, vec![scope.into()])
            .await
            .unwrap()
            .unwrap()
            .n;
        assert_eq!(n, 0);
    }
    let plans = ccp_platform::db::one::<Plans, _>(
        &txn,
        "SELECT generic_plans AS generic, custom_plans AS custom FROM pg_prepared_statements \
         WHERE statement LIKE '%/* custom plans */%' AND statement NOT LIKE '%pg_prepared%'",
        vec![],
    )
    .await
    .unwrap()
    .expect("the statement is prepared");
    assert_eq!(
        (plans.generic, plans.custom),
        (0, 8),
        "every run is planned with its value"
    );
    let inside = ccp_platform::db::one::<Setting, _>(
        &txn,
        "SELECT current_setting('plan_cache_mode') AS value",
        vec![],
    )
    .await
    .unwrap()
    .unwrap()
    .value;
    assert_eq!(inside, ccp_platform::db::PLAN_CACHE_MODE);
    txn.commit().await.unwrap();
    // The one pooled connection is back to PostgreSQL's choice.
    assert_eq!(setting(db.clone(), "plan_cache_mode").await, "auto");
    assert_eq!(
        setting(db, "max_parallel_workers_per_gather").await,
        "0",
        "no parallel plans for short index reads"
    );
}
