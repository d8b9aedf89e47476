//! Two notifiers on one database (PostgreSQL when configured, and one SQLite file) and one
//! bus, each sending through a sink of its own: only the holder of a stream's lease consumes
//! it, so each notice arrives once; when the holder stops renewing (its task is killed) the
//! other takes over once the lease lapses and the rest arrives, once; a holder that shuts down
//! gives its leases up to the next.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ccp_notifications::mail::{Mailer, message_id};
use ccp_notifications::{Notifier, store};
use ccp_platform::bus::{EventBus, MemoryBus};
use ccp_platform::clock::Clock;
use ccp_platform::testing::TestBackend;

use super::sink::{Received, Sink};
use super::{DOMAIN, OTHER_CLIENT, WAIT, directory, header, publish, request_sent, run, wait_for};

async fn replica(backend: &TestBackend, sink: &Sink) -> Notifier {
    let db = ccp_platform::db::connect_and_migrate::<store::Migrator>(
        &backend.settings("notifications"),
    )
    .await
    .unwrap();
    Notifier::new(
        db,
        Mailer::smtp(&sink.url(), Duration::from_secs(5)).unwrap(),
        directory(),
        "CCP <noreply@ccp.test>".parse().unwrap(),
        DOMAIN.into(),
        Clock::system(),
    )
    .unwrap()
    .lease(Duration::from_secs(1))
}

/// Waits (bounded by [`WAIT`]) until the ledger holds every message of `ids`.
async fn recorded(notifier: &Notifier, ids: &[String]) {
    tokio::time::timeout(WAIT, async {
        for id in ids {
            while !store::was_sent(notifier.db(), id).await.unwrap() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await
    .expect("the deliveries are recorded");
}

fn ids(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            let mail = mailparse::parse_mail(r.raw.as_bytes()).unwrap();
            header(&mail, "Message-ID").concat()
        })
        .collect()
}

#[tokio::test]
async fn with_two_replicas_each_notice_arrives_once_and_the_other_takes_over_when_the_holder_stops()
{
    for backend in TestBackend::all().await {
        eprintln!("backend: {}", backend.name());
        let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1_000));
        let (sink_a, sink_b) = (Sink::start().await, Sink::start().await);
        let a = replica(&backend, &sink_a).await;
        let b = replica(&backend, &sink_b).await;
        // Each event has one recipient (erin): one message per event.
        let events: Vec<_> = (0..6).map(|_| request_sent(OTHER_CLIENT)).collect();
        let expected = |range: std::ops::Range<usize>| -> Vec<String> {
            events[range]
                .iter()
                .map(|e| message_id(&e.id, "person:erin", DOMAIN))
                .collect()
        };

        // a starts first and takes the lease with its first notice; b starts and waits.
        let consumer_a = run(&a, &bus);
        publish(&bus, &events[0]).await;
        wait_for(&sink_a, 1).await;
        let consumer_b = run(&b, &bus);
        for event in &events[1..4] {
            publish(&bus, event).await;
        }
        assert_eq!(ids(&wait_for(&sink_a, 4).await), expected(0..4));
        // The ledger row follows the server's acceptance (a kill between the two resends that
        // Message-ID once, as documented): wait (bounded) for the rows before killing a.
        recorded(&a, &expected(0..4)).await;

        // a stops renewing (killed, its lease left to lapse): b takes over, the rest arrives.
        consumer_a.task.abort();
        let _ = consumer_a.task.await;
        for event in &events[4..6] {
            publish(&bus, event).await;
        }
        assert_eq!(ids(&wait_for(&sink_b, 2).await), expected(4..6));
        assert_eq!(
            ids(&sink_a.received()),
            expected(0..4),
            "a sent nothing more"
        );
        // Likewise before b stops (a stop mid-event may resend a message once, never lose one).
        recorded(&b, &expected(4..6)).await;

        // b shuts down and gives its leases up: a new replica takes over and sends the next.
        consumer_b.stop().await;
        let c = replica(&backend, &sink_a).await;
        let consumer_c = run(&c, &bus);
        let last = request_sent(OTHER_CLIENT);
        publish(&bus, &last).await;
        let received = wait_for(&sink_a, 5).await;
        assert_eq!(
            ids(&received[4..]),
            [message_id(&last.id, "person:erin", DOMAIN)]
        );
        consumer_c.stop().await;

        // Each notice once, all told.
        let mut all = ids(&sink_a.received());
        all.extend(ids(&sink_b.received()));
        let distinct: HashSet<_> = all.iter().collect();
        assert_eq!((all.len(), distinct.len()), (7, 7), "{all:?}");
    }
}
