//! The notifications service against a real SMTP server (an in-test sink on a loopback port), a
//! real event bus and a real database (SQLite, and PostgreSQL when `CCP_TEST_DATABASE_URL` is
//! set): a relationship request received reaches the client's opted-in managers once each, in
//! their language, with nothing forged into the headers; a redelivered event or a restart sends
//! nothing twice; an SMTP outage delays delivery. The directory (accounts' and identity's facts)
//! is a fixed one of the test's own. `dead_letters` and `replicas` test the failed notices and
//! their replay through the operator API, and the consumers' lease.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod answers;
mod binary;
mod choices;
mod dead_letters;
mod replicas;
mod sink;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ccp_notifications::directory::{Business, Directory, Person};
use ccp_notifications::mail::{Mailer, message_id};
use ccp_notifications::render::Language;
use ccp_notifications::{Notifier, consume, store};
use ccp_platform::bus::{EventBus, MemoryBus};
use ccp_platform::clock::Clock;
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::{BusinessPair, DomainEvent, EventType};
use prost::Message as _;
use sea_orm::ConnectionTrait as _;
use tokio::sync::oneshot;

use sink::{Received, Sink};

const DOMAIN: &str = "ccp.test";
const PROVIDER: &str = "123456789";
const CLIENT: &str = "987654321";
const OTHER_CLIENT: &str = "111111118";
/// Upper bound for any wait on a delivery.
const WAIT: Duration = Duration::from_secs(20);

/// The people and businesses of the tests.
struct FixedDirectory {
    businesses: HashMap<&'static str, Business>,
    people: Vec<Person>,
}

fn person(id: &str, name: &str, email: &str, language: Language, opted_in: bool) -> Person {
    Person {
        principal: format!("person:{id}"),
        name: name.to_owned(),
        email: email.to_owned(),
        language,
        email_notifications: opted_in,
        choices: std::collections::BTreeMap::new(),
    }
}

fn directory() -> Arc<dyn Directory> {
    let business = |name: &str, managers: &[&str]| Business {
        name: name.to_owned(),
        managers: managers.iter().map(|m| format!("person:{m}")).collect(),
    };
    Arc::new(FixedDirectory {
        businesses: HashMap::from([
            // A provider whose legal name tries to forge a header.
            (
                PROVIDER,
                business("Brokers\r\nBcc: victim@evil.example\r\n", &["paul", "pia"]),
            ),
            (
                CLIENT,
                business("Importations Élan", &["alice", "bob", "carol", "dave"]),
            ),
            (OTHER_CLIENT, business("Other Imports", &["erin"])),
        ]),
        people: vec![
            person(
                "alice",
                "Alice Tremblay",
                "alice@client.example",
                Language::Fr,
                true,
            ),
            person(
                "bob",
                "Bob\nSmith",
                "bob@client.example",
                Language::En,
                true,
            ),
            // Opted out: gets nothing.
            person(
                "carol",
                "Carol",
                "carol@client.example",
                Language::En,
                false,
            ),
            // dave has no profile.
            person("erin", "Erin", "erin@other.example", Language::En, true),
            // The provider's managers (pia opted out), an employee it assigned to the client,
            // a program manager of the client, and two people asking to join the client.
            person(
                "paul",
                "Paul Gagnon",
                "paul@provider.example",
                Language::Fr,
                true,
            ),
            person("pia", "Pia", "pia@provider.example", Language::En, false),
            person("amy", "Amy Lee", "amy@provider.example", Language::En, true),
            person("pam", "Pam Wong", "pam@client.example", Language::En, true),
            person("rita", "Rita Roy", "rita@home.example", Language::Fr, true),
            person("ron", "Ron", "ron@home.example", Language::En, false),
        ],
    })
}

#[async_trait::async_trait]
impl Directory for FixedDirectory {
    async fn business(&self, bn: &str) -> anyhow::Result<Business> {
        Ok(self.businesses.get(bn).cloned().unwrap_or_default())
    }

    async fn people(&self, principals: &[String]) -> anyhow::Result<Vec<Person>> {
        Ok(self
            .people
            .iter()
            .filter(|p| principals.contains(&p.principal))
            .cloned()
            .collect())
    }
}

fn request_sent(client: &str) -> DomainEvent {
    DomainEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: EventType::RelationshipRequestSent as i32,
        service: "delegation".into(),
        pairs: vec![BusinessPair {
            provider: PROVIDER.into(),
            client: client.into(),
        }],
        ..Default::default()
    }
}

async fn publish(bus: &Arc<dyn EventBus>, event: &DomainEvent) {
    bus.publish(ccp_notifications::DELEGATION_STREAM, &event.encode_to_vec())
        .await
        .unwrap();
}

async fn publish_accounts(bus: &Arc<dyn EventBus>, event: &DomainEvent) {
    bus.publish(ccp_notifications::ACCOUNTS_STREAM, &event.encode_to_vec())
        .await
        .unwrap();
}

/// A consumer running in the background until stopped.
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn run(notifier: &Notifier, bus: &Arc<dyn EventBus>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(consume(notifier.clone(), bus.clone(), async {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the consumer stops")
            .unwrap();
    }
}

/// Waits until the sink holds `n` messages (bounded by [`WAIT`]) and returns them.
async fn wait_for(sink: &Sink, n: usize) -> Vec<Received> {
    tokio::time::timeout(WAIT, async {
        loop {
            let received = sink.received();
            if received.len() >= n {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} message(s) within {WAIT:?}; got {:?}", sink.received()))
}

fn header<'a>(mail: &'a mailparse::ParsedMail<'a>, name: &str) -> Vec<String> {
    mail.headers
        .iter()
        .filter(|h| h.get_key().eq_ignore_ascii_case(name))
        .map(|h| h.get_value())
        .collect()
}

async fn notifier(backend: &TestBackend, sink: &Sink) -> Notifier {
    notifier_with(backend, sink, directory()).await
}

async fn notifier_with(
    backend: &TestBackend,
    sink: &Sink,
    directory: Arc<dyn Directory>,
) -> Notifier {
    let db = ccp_platform::db::connect_and_migrate::<store::Migrator>(
        &backend.settings("notifications"),
    )
    .await
    .unwrap();
    Notifier::new(
        db,
        Mailer::smtp(&sink.url(), Duration::from_secs(5)).unwrap(),
        directory,
        "CCP <noreply@ccp.test>".parse().unwrap(),
        DOMAIN.into(),
        Clock::system(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_relationship_request_reaches_the_clients_opted_in_managers_once_each_in_their_language()
{
    for backend in TestBackend::all().await {
        eprintln!("backend: {}", backend.name());
        let sink = Sink::start().await;
        let notifier = notifier(&backend, &sink).await;
        let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1_000));
        let consumer = run(&notifier, &bus);

        let event = request_sent(CLIENT);
        publish(&bus, &event).await;
        let received = wait_for(&sink, 2).await;

        // alice (fr) and bob (en); not carol (opted out) nor dave (no profile).
        let mut by_rcpt: HashMap<String, &Received> = HashMap::new();
        for r in &received {
            assert_eq!(r.rcpt.len(), 1, "{r:?}");
            by_rcpt.insert(r.rcpt[0].clone(), r);
        }
        let mut rcpts: Vec<_> = by_rcpt.keys().cloned().collect();
        rcpts.sort();
        assert_eq!(
            rcpts,
            ["<alice@client.example>", "<bob@client.example>"],
            "{received:?}"
        );
        for (rcpt, principal, language, subject, greeting) in [
            (
                "<alice@client.example>",
                "person:alice",
                "fr",
                "Brokers Bcc: victim@evil.example demande à agir pour Importations Élan",
                "Bonjour Alice Tremblay,",
            ),
            (
                "<bob@client.example>",
                "person:bob",
                "en",
                "Brokers Bcc: victim@evil.example asks to act for Importations Élan",
                "Hello Bob Smith,",
            ),
        ] {
            let raw = &by_rcpt[rcpt].raw;
            let mail = mailparse::parse_mail(raw.as_bytes()).unwrap();
            assert_eq!(header(&mail, "Subject"), [subject], "{raw}");
            assert_eq!(header(&mail, "Content-Language"), [language], "{raw}");
            assert_eq!(
                header(&mail, "Message-ID"),
                [message_id(&event.id, principal, DOMAIN)],
                "{raw}"
            );
            // Nothing forged: one To, no Bcc, no header line begun by a user's text.
            assert_eq!(header(&mail, "To").len(), 1, "{raw}");
            assert!(header(&mail, "Bcc").is_empty(), "{raw}");
            let body = mail.get_body().unwrap();
            assert!(body.starts_with(greeting), "{body}");
            assert!(body.contains(&format!("({PROVIDER})")) || body.contains(PROVIDER));
        }
        // The ledger row follows the server's acceptance: wait (bounded) for the second.
        let ledger = tokio::time::timeout(WAIT, async {
            loop {
                let ledger = store::sent_for_event(notifier.db(), &event.id)
                    .await
                    .unwrap();
                if ledger.len() >= 2 {
                    return ledger;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("both deliveries recorded");
        assert_eq!(
            ledger.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
            ["person:alice", "person:bob"]
        );

        // The same event again (redelivered), then a restart that lost the consumer's position
        // (as a crash before it was stored would): nothing is sent a second time. A request to
        // another client marks the end.
        publish(&bus, &event).await;
        consumer.stop().await;
        notifier
            .db()
            .execute_unprepared("DELETE FROM consumer_positions")
            .await
            .unwrap();
        let consumer = run(&notifier, &bus);
        publish(&bus, &request_sent(OTHER_CLIENT)).await;
        let received = wait_for(&sink, 3).await;
        assert_eq!(received.len(), 3, "{received:?}");
        assert_eq!(received[2].rcpt, ["<erin@other.example>"]);
        consumer.stop().await;
    }
}

/// A restart in the middle of an event's messages (the first manager's accepted, the mail
/// server gone before the second's) sends the first again under no new Message-ID: after the
/// restart the sink holds one message per manager, each with its own stable Message-ID.
#[tokio::test]
async fn a_restart_mid_delivery_sends_no_second_message_id_for_a_notice() {
    for backend in TestBackend::all().await {
        eprintln!("backend: {}", backend.name());
        let sink = Sink::start().await;
        sink.accept_at_most(1);
        let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1_000));
        let first = notifier(&backend, &sink).await;
        let consumer = run(&first, &bus);
        let event = request_sent(CLIENT);
        publish(&bus, &event).await;
        // One message accepted, the next refused: the event is half delivered.
        wait_for(&sink, 1).await;
        tokio::time::timeout(WAIT, async {
            while sink.refused_connections() < 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the second message was tried and refused");
        consumer.stop().await;
        let recorded = store::sent_for_event(first.db(), &event.id).await.unwrap();
        assert_eq!(recorded.len(), 1, "{recorded:?}");

        // A new process on the same database and bus, the mail server back.
        sink.refuse(false);
        let second = notifier(&backend, &sink).await;
        let consumer = run(&second, &bus);
        // A request to another client marks the end (a resend would come before it).
        publish(&bus, &request_sent(OTHER_CLIENT)).await;
        let received = wait_for(&sink, 3).await;
        consumer.stop().await;
        assert_eq!(received.len(), 3, "{received:?}");
        let ids = |rcpt: &str| -> Vec<String> {
            received
                .iter()
                .filter(|r| r.rcpt == [rcpt])
                .flat_map(|r| {
                    let mail = mailparse::parse_mail(r.raw.as_bytes()).unwrap();
                    header(&mail, "Message-ID")
                })
                .collect()
        };
        assert_eq!(
            ids("<alice@client.example>"),
            [message_id(&event.id, "person:alice", DOMAIN)]
        );
        assert_eq!(
            ids("<bob@client.example>"),
            [message_id(&event.id, "person:bob", DOMAIN)]
        );
        assert_eq!(received[2].rcpt, ["<erin@other.example>"]);
    }
}

#[tokio::test]
async fn an_smtp_outage_delays_the_notice_and_it_is_delivered_once_the_server_is_back() {
    let backend = TestBackend::sqlite();
    let sink = Sink::start().await;
    sink.refuse(true);
    let notifier = notifier(&backend, &sink).await;
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1_000));
    let consumer = run(&notifier, &bus);
    let event = request_sent(OTHER_CLIENT);
    publish(&bus, &event).await;
    // Refused twice: tried, and tried again.
    tokio::time::timeout(WAIT, async {
        while sink.refused_connections() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the notifier retries while the server refuses");
    assert!(sink.received().is_empty());
    assert!(
        store::sent_for_event(notifier.db(), &event.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing is recorded as sent while the server refuses"
    );
    sink.refuse(false);
    let received = wait_for(&sink, 1).await;
    assert_eq!(received[0].rcpt, ["<erin@other.example>"]);
    consumer.stop().await;
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn without_smtp_each_message_is_written_as_an_eml_file() {
    let backend = TestBackend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let db = ccp_platform::db::connect_and_migrate::<store::Migrator>(
        &backend.settings("notifications"),
    )
    .await
    .unwrap();
    let notifier = Notifier::new(
        db,
        Mailer::files(dir.path()).unwrap(),
        directory(),
        "CCP <noreply@ccp.test>".parse().unwrap(),
        DOMAIN.into(),
        Clock::system(),
    )
    .unwrap();
    let event = request_sent(OTHER_CLIENT);
    let outcome = notifier.handle(&event).await.unwrap();
    assert_eq!((outcome.sent, outcome.already_sent), (1, 0));
    assert_eq!(notifier.handle(&event).await.unwrap().already_sent, 1);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains("To: Erin <erin@other.example>"), "{raw}");
    assert!(
        raw.contains(&message_id(&event.id, "person:erin", DOMAIN)),
        "{raw}"
    );
}
