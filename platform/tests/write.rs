//! The one write path (`store::Writer`): a change commits only with its audit
//! record and outbox event (R-AU-1, R-EV-1), a failed change leaves nothing,
//! and a replayed request id returns the first answer without doing the work
//! twice — each case on SQLite and, when `CCP_TEST_DATABASE_URL` is set, on
//! PostgreSQL (a fresh database per case).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ccp_platform::bus::MemoryBus;
use ccp_platform::clock::Clock;
use ccp_platform::db::{connect, exec, one};
use ccp_platform::error::ErrorCode;
use ccp_platform::store::{
    Begun, Change, OutboxRelay, UnitOfWork, WriteBy, Writer, Written, create_infrastructure_tables,
};
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::EventType;
use ccp_proto::identity::v1::SignOutResponse;
use ccp_types::RequestId;
use sea_orm::{DatabaseConnection, FromQueryResult};

const STREAM: &str = "ccp.test.events";

#[derive(Debug, FromQueryResult)]
struct Count {
    n: i64,
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    one::<Count, _>(db, &format!("SELECT COUNT(*) AS n FROM {table}"), vec![])
        .await
        .expect("count")
        .expect("a row")
        .n
}

async fn open(backend: &TestBackend) -> (DatabaseConnection, Writer) {
    let db = connect(&backend.settings("writetest"))
        .await
        .unwrap_or_else(|e| panic!("{}: connect: {e}", backend.name()));
    create_infrastructure_tables(&db).await.expect("tables");
    exec(&db, "CREATE TABLE things (id TEXT PRIMARY KEY)", vec![])
        .await
        .expect("things");
    let relay = OutboxRelay::new(db.clone(), Arc::new(MemoryBus::new(1000)));
    let writer = Writer::new(db.clone(), relay, Clock::system(), "test", STREAM);
    (db, writer)
}

fn by(request_id: &str) -> WriteBy {
    WriteBy::idempotent(
        "person:1",
        "MakeThing",
        RequestId::parse(request_id).expect("valid"),
    )
}

async fn fresh(writer: &Writer, request_id: &str) -> UnitOfWork<SignOutResponse> {
    match writer.begin(by(request_id)).await.expect("begin") {
        Begun::Fresh(w) => *w,
        Begun::Replayed(r) => panic!("unexpected replay {r:?}"),
    }
}

async fn make_thing(w: &mut UnitOfWork<SignOutResponse>, id: &str) -> String {
    let revision = w.bump_revision("123456782").await.expect("bump");
    add_thing(w, id).await;
    revision
}

async fn add_thing(w: &mut UnitOfWork<SignOutResponse>, id: &str) {
    exec(
        w.txn(),
        "INSERT INTO things (id) VALUES ($1)",
        vec![id.into()],
    )
    .await
    .expect("insert");
    w.record(
        Change::new(
            EventType::Unspecified,
            "test.thing.create",
            format!("things/{id}"),
        )
        .acting_for("123456782")
        .after(serde_json::json!({ "id": id })),
    )
    .await
    .expect("record");
}

#[tokio::test]
async fn r_au_1_r_ev_1_a_committed_write_has_its_audit_record_event_and_idempotency_record() {
    for backend in TestBackend::all().await {
        let (db, writer) = open(&backend).await;
        let mut w = fresh(&writer, "req-1").await;
        let revision = make_thing(&mut w, "a").await;
        let written = w
            .commit(SignOutResponse {
                revision: revision.clone(),
            })
            .await
            .expect("commit");
        assert!(!written.is_replay(), "{}", backend.name());
        for table in [
            "things",
            "audit_events",
            "outbox_events",
            "idempotency_records",
        ] {
            assert_eq!(count(&db, table).await, 1, "{}: {table}", backend.name());
        }
    }
}

#[tokio::test]
async fn r_au_1_a_write_that_fails_after_its_audit_record_leaves_nothing() {
    for backend in TestBackend::all().await {
        let (db, writer) = open(&backend).await;
        let mut w = fresh(&writer, "req-1").await;
        make_thing(&mut w, "a").await;
        // The change fails after its audit record and event were written: the
        // unit of work is dropped without committing.
        let failed = exec(w.txn(), "INSERT INTO no_such_table (id) VALUES (1)", vec![]).await;
        assert!(failed.is_err(), "{}", backend.name());
        drop(w);
        for table in [
            "things",
            "audit_events",
            "outbox_events",
            "idempotency_records",
        ] {
            assert_eq!(count(&db, table).await, 0, "{}: {table}", backend.name());
        }
        // The request id is free again: a retry does the work once.
        let mut w = fresh(&writer, "req-1").await;
        make_thing(&mut w, "a").await;
        w.commit(SignOutResponse::default()).await.expect("commit");
        assert_eq!(count(&db, "audit_events").await, 1, "{}", backend.name());
    }
}

#[tokio::test]
async fn r_au_1_a_change_without_its_audit_record_and_event_cannot_commit() {
    for backend in TestBackend::all().await {
        let (db, writer) = open(&backend).await;
        let mut w = fresh(&writer, "req-1").await;
        w.bump_revision("123456782").await.expect("bump");
        exec(w.txn(), "INSERT INTO things (id) VALUES ('a')", vec![])
            .await
            .expect("insert");
        let err = w
            .commit(SignOutResponse::default())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), ErrorCode::Internal, "{}", backend.name());
        for table in ["things", "revisions", "idempotency_records"] {
            assert_eq!(count(&db, table).await, 0, "{}: {table}", backend.name());
        }
        // Nor can it pass itself off as a write that changed nothing.
        let mut w = fresh(&writer, "req-2").await;
        w.bump_revision("123456782").await.expect("bump");
        let err = w
            .commit_unchanged(SignOutResponse::default())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), ErrorCode::Internal, "{}", backend.name());
        assert_eq!(count(&db, "revisions").await, 0, "{}", backend.name());
    }
}

#[tokio::test]
async fn r_au_1_a_replayed_request_id_returns_the_first_answer_without_a_second_audit_record() {
    for backend in TestBackend::all().await {
        let (db, writer) = open(&backend).await;
        let mut w = fresh(&writer, "req-1").await;
        let revision = make_thing(&mut w, "a").await;
        let first = SignOutResponse { revision };
        w.commit(first.clone()).await.expect("commit");
        // The same request id, trimmed the same way, is answered from the record.
        match writer
            .begin::<SignOutResponse>(by("  req-1 "))
            .await
            .expect("begin")
        {
            Begun::Replayed(r) => assert_eq!(r, first, "{}", backend.name()),
            Begun::Fresh(_) => panic!("{}: a repeated request id was not replayed", backend.name()),
        }
        assert_eq!(count(&db, "audit_events").await, 1, "{}", backend.name());
        assert_eq!(count(&db, "outbox_events").await, 1, "{}", backend.name());
    }
}

#[tokio::test]
async fn r_au_1_of_two_concurrent_writes_with_one_request_id_the_second_gets_the_first_answer() {
    for backend in TestBackend::all().await {
        let (db, writer) = open(&backend).await;
        // The first has begun and bumped its scope: on SQLite it holds the write
        // lock, on PostgreSQL the scope's revision row.
        let mut first = fresh(&writer, "req-1").await;
        let revision = first.bump_revision("123456782").await.expect("bump");
        // The second starts before the first commits. Whether it finds the stored
        // answer at once or begins, waits for the first and meets the stored
        // record at commit, it answers with the first's answer and writes nothing.
        let second = tokio::spawn({
            let writer = writer.clone();
            async move {
                let mut second = match writer.begin::<SignOutResponse>(by("req-1")).await {
                    Ok(Begun::Replayed(answer)) => return answer,
                    Ok(Begun::Fresh(w)) => *w,
                    Err(err) => panic!("second begin: {err}"),
                };
                second.bump_revision("123456782").await.expect("bump");
                add_thing(&mut second, "b").await;
                match second.commit(SignOutResponse::default()).await {
                    Ok(Written::Replayed(answer)) => answer,
                    other => panic!("the second did the work: {other:?}"),
                }
            }
        });
        add_thing(&mut first, "a").await;
        let answer = SignOutResponse { revision };
        let written = first.commit(answer.clone()).await.expect("first commit");
        assert!(!written.is_replay(), "{}", backend.name());
        let second = tokio::time::timeout(std::time::Duration::from_secs(20), second)
            .await
            .expect("the second finishes")
            .expect("the second does not panic");
        assert_eq!(second, answer, "{}", backend.name());
        assert_eq!(count(&db, "things").await, 1, "{}", backend.name());
        assert_eq!(count(&db, "audit_events").await, 1, "{}", backend.name());
    }
}

/// A unit of work that reads before it writes still writes when another
/// connection commits in between. On SQLite a deferred transaction would hold
/// a stale snapshot and its first write would fail at once (SQLITE_BUSY_SNAPSHOT,
/// UNAVAILABLE to the caller): a sign-in racing the outbox relay of another
/// replica failed so. The unit of work takes SQLite's write lock when it
/// begins, so the other writer waits for it instead.
#[tokio::test]
async fn r_gw_5_a_unit_of_work_that_reads_first_still_writes_when_another_connection_commits_meanwhile()
 {
    for backend in TestBackend::all().await {
        let (db, writer) = open(&backend).await;
        let mut w = fresh(&writer, "req-1").await;
        let before = one::<Count, _>(w.txn(), "SELECT COUNT(*) AS n FROM things", vec![])
            .await
            .expect("read")
            .expect("a row")
            .n;
        assert_eq!(before, 0);
        let mut other = tokio::spawn({
            let db = db.clone();
            async move { exec(&db, "INSERT INTO things (id) VALUES ('other')", vec![]).await }
        });
        // Time for the other write to land if nothing holds it back (on
        // PostgreSQL it does land: it touches no row this unit holds).
        let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut other).await;
        if backend.name() == "sqlite" {
            assert!(
                early.is_err(),
                "the other writer waits for the unit of work"
            );
        }
        make_thing(&mut w, "a").await;
        w.commit(SignOutResponse::default()).await.expect("commit");
        match early {
            Ok(landed) => landed.expect("join").expect("other insert"),
            Err(_) => tokio::time::timeout(std::time::Duration::from_secs(20), other)
                .await
                .expect("the other writer finishes")
                .expect("join")
                .expect("other insert"),
        };
        assert_eq!(count(&db, "things").await, 2, "{}", backend.name());
    }
}

/// R-GW-1: a write the gateway decided on an older revision of the scope it
/// changes is refused (ABORTED, FACTS_CHANGED, naming what it found) and
/// leaves nothing; decided on the current revision — or on another
/// service's or scope's — it lands; a second bump of the scope in the same
/// write is not mistaken for a change under it.
#[tokio::test]
async fn r_gw_1_a_write_decided_on_facts_that_moved_is_refused_and_leaves_nothing() {
    use ccp_platform::revision::Revision;
    use ccp_platform::store::deciding_on;
    for backend in TestBackend::all().await {
        let (db, writer) = open(&backend).await;
        let mut w = fresh(&writer, "req-0").await;
        make_thing(&mut w, "first").await; // the scope is at 1
        w.commit(SignOutResponse::default()).await.expect("commit");

        let decided = |counter| vec![Revision::new("test", "123456782", counter)];
        let refused = deciding_on(decided(0), async {
            let mut w = fresh(&writer, "req-1").await;
            w.bump_revision("123456782").await.map(|_| ())
        })
        .await
        .expect_err("decided on revision 0, the scope is at 1");
        assert_eq!(refused.code(), ErrorCode::Aborted, "{}", backend.name());
        assert_eq!(refused.reason(), Some("FACTS_CHANGED"));
        let status = tonic::Status::from(refused);
        let found = ccp_gateway_facts_changed(&status);
        assert_eq!(
            found.as_deref(),
            Some(Revision::new("test", "123456782", 1).encode().as_str())
        );
        assert_eq!(count(&db, "things").await, 1, "{}", backend.name());

        for (case, decided_on) in [
            ("the current revision", decided(1)),
            (
                "another service's",
                vec![Revision::new("other", "123456782", 0)],
            ),
            (
                "another scope's",
                vec![Revision::new("test", "999999998", 0)],
            ),
        ] {
            let request_id = format!("req-{case}").replace([' ', '\''], "-");
            deciding_on(decided_on, async {
                let mut w = fresh(&writer, &request_id).await;
                let revision = make_thing(&mut w, &request_id).await;
                // A second bump of the same scope sees this write's own first.
                w.bump_revision("123456782").await.expect("second bump");
                w.commit(SignOutResponse { revision })
                    .await
                    .expect("commit");
            })
            .await;
        }
        assert_eq!(count(&db, "things").await, 4, "{}", backend.name());
    }
}

/// Reads the `revision` of a FACTS_CHANGED ErrorInfo as a client does.
fn ccp_gateway_facts_changed(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    let info = status.get_details_error_info()?;
    (info.reason == "FACTS_CHANGED").then(|| info.metadata.get("revision").cloned())?
}
