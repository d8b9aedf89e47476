//! A person's choice per kind of notice overrides their opt-in either way, and a machine
//! credential expiring within 30 days (identity's `CREDENTIAL_EXPIRY_REMINDER`, consumed from
//! identity's stream) reaches its business's managers only, each once, in their language.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ccp_notifications::directory::{Business, Directory, Person};
use ccp_notifications::mail::message_id;
use ccp_notifications::render::Language;
use ccp_platform::bus::{EventBus, MemoryBus};
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::{BusinessPair, DomainEvent, EventType};
use prost::Message as _;

use super::sink::{Received, Sink};
use super::{DOMAIN, FixedDirectory, header, notifier_with, run, wait_for};

/// The business whose managers choose.
const CHOOSERS: &str = "222222226";
/// Another business, one manager: the end marker of a stream.
const MARKER: &str = "333333334";

fn person(id: &str, language: Language, opted_in: bool, choices: &[(&str, bool)]) -> Person {
    Person {
        principal: format!("person:{id}"),
        name: format!("{id} Example"),
        email: format!("{id}@choosers.example"),
        language,
        email_notifications: opted_in,
        choices: choices
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn directory() -> Arc<dyn Directory> {
    Arc::new(FixedDirectory {
        businesses: HashMap::from([
            (
                CHOOSERS,
                Business {
                    name: "Choosers Inc.".to_owned(),
                    managers: ["olga", "otto", "fern", "nora", "dave"]
                        .iter()
                        .map(|m| format!("person:{m}"))
                        .collect(),
                },
            ),
            (
                "123456789",
                Business {
                    name: "Brokers Inc.".to_owned(),
                    managers: vec!["person:paul".to_owned()],
                },
            ),
            (
                MARKER,
                Business {
                    name: "Marker Ltd.".to_owned(),
                    managers: vec!["person:mark".to_owned()],
                },
            ),
        ]),
        people: vec![
            // Opted in, but not to credential reminders.
            person(
                "olga",
                Language::En,
                true,
                &[("credential-expiry-reminder", false)],
            ),
            // Opted out, but on for credential reminders.
            person(
                "otto",
                Language::Fr,
                false,
                &[("credential-expiry-reminder", true)],
            ),
            // Opted in, no choice: everything.
            person("fern", Language::En, true, &[]),
            // Opted out, no choice (or one for another kind): nothing.
            person("nora", Language::En, false, &[("relationship-ended", true)]),
            // dave has no profile.
            person("paul", Language::En, true, &[]),
            person("rick", Language::En, true, &[]),
            person("mark", Language::En, true, &[]),
        ],
    })
}

fn credential_reminder(bn: &str, name: &str) -> DomainEvent {
    DomainEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: EventType::CredentialExpiryReminder as i32,
        service: "identity".into(),
        businesses: vec![bn.into()],
        principals: vec![format!("credential:{}", uuid::Uuid::new_v4())],
        actor: "system".into(),
        subject: format!("businesses/{bn}/machineCredentials/x"),
        details_json: serde_json::json!({
            "days": 30,
            "expire_time": "2027-01-15T12:00:00+00:00",
            "display_name": name,
            "business": bn,
        })
        .to_string(),
        ..Default::default()
    }
}

/// Everyone of the directory.
const PEOPLE: [&str; 7] = ["olga", "otto", "fern", "nora", "paul", "rick", "mark"];

/// The people `event`'s messages among `received` went to (by their Message-IDs), sorted.
fn recipients_of(received: &[Received], event: &DomainEvent) -> Vec<String> {
    let mut out: Vec<String> = received
        .iter()
        .filter_map(|r| {
            let mail = mailparse::parse_mail(r.raw.as_bytes()).unwrap();
            let id = header(&mail, "Message-ID").first().cloned()?;
            PEOPLE
                .iter()
                .find(|p| id == message_id(&event.id, &format!("person:{p}"), DOMAIN))
                .map(|p| (*p).to_owned())
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_choice_per_kind_overrides_the_opt_in_either_way() {
    let backend = TestBackend::sqlite();
    let sink = Sink::start().await;
    let notifier = notifier_with(&backend, &sink, directory()).await;

    // Three kinds of notice to the same managers.
    let received_request = DomainEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: EventType::RelationshipRequestSent as i32,
        service: "delegation".into(),
        pairs: vec![BusinessPair {
            provider: "123456789".into(),
            client: CHOOSERS.into(),
        }],
        ..Default::default()
    };
    let employee_request = DomainEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: EventType::EmployeeRequestCreated as i32,
        service: "accounts".into(),
        subject: format!("businesses/{CHOOSERS}/employeeRequests/e1"),
        businesses: vec![CHOOSERS.into()],
        principals: vec!["person:rick".into()],
        actor: "person:rick".into(),
        details_json: r#"{"note":"","program_managers":[]}"#.into(),
        ..Default::default()
    };
    let reminder = credential_reminder(CHOOSERS, "ITN sync");
    for event in [&received_request, &employee_request, &reminder] {
        notifier.handle(event).await.unwrap();
    }
    let received = wait_for(&sink, 6).await;
    assert_eq!(received.len(), 6, "{received:?}");
    // olga (in, off for credential reminders) gets the other two; otto (out, on for credential
    // reminders) only that one; fern (in) all three; nora (out, a choice for another kind) none.
    assert_eq!(
        recipients_of(&received, &received_request),
        ["fern", "olga"]
    );
    assert_eq!(
        recipients_of(&received, &employee_request),
        ["fern", "olga"]
    );
    assert_eq!(recipients_of(&received, &reminder), ["fern", "otto"]);
}

#[tokio::test]
async fn a_credential_expiry_reminder_reaches_its_business_managers_once_each_in_their_language() {
    for backend in TestBackend::all().await {
        eprintln!("backend: {}", backend.name());
        let sink = Sink::start().await;
        let notifier = notifier_with(&backend, &sink, directory()).await;
        let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1_000));
        let consumer = run(&notifier, &bus);
        let publish = async |event: &DomainEvent| {
            bus.publish(ccp_notifications::IDENTITY_STREAM, &event.encode_to_vec())
                .await
                .unwrap();
        };

        let reminder = credential_reminder(CHOOSERS, "ITN sync { $business }");
        publish(&reminder).await;
        // Redelivered; then a reminder to another business marks the end of the stream.
        publish(&reminder).await;
        let marker = credential_reminder(MARKER, "Marker");
        publish(&marker).await;
        let received = wait_for(&sink, 3).await;
        assert_eq!(received.len(), 3, "{received:?}");
        // The managers who want it (fern, and otto by his choice), once each; not the
        // credential (the event's principal), nor olga (off), nora (opted out), dave (no
        // profile).
        assert_eq!(recipients_of(&received, &reminder), ["fern", "otto"]);
        assert_eq!(recipients_of(&received, &marker), ["mark"]);
        for r in &received {
            let mail = mailparse::parse_mail(r.raw.as_bytes()).unwrap();
            let subject = header(&mail, "Subject")[0].clone();
            let language = header(&mail, "Content-Language")[0].clone();
            let body = mail.get_body().unwrap();
            match r.rcpt[0].as_str() {
                "<otto@choosers.example>" => {
                    assert_eq!(language, "fr");
                    assert_eq!(
                        subject,
                        "L'identifiant machine ITN sync { $business } de Choosers Inc. expire dans 30 jours"
                    );
                    assert!(
                        body.contains("expire le 2027-01-15, dans 30 jours"),
                        "{body}"
                    );
                    assert!(body.contains(&format!("({CHOOSERS})")) || body.contains(CHOOSERS));
                }
                "<fern@choosers.example>" => {
                    assert_eq!(language, "en");
                    assert_eq!(
                        subject,
                        "The machine credential ITN sync { $business } of Choosers Inc. expires in 30 days"
                    );
                    assert!(body.contains("expires on 2027-01-15, in 30 days"), "{body}");
                    assert!(body.starts_with("Hello fern Example,"), "{body}");
                }
                "<mark@choosers.example>" => assert_eq!(language, "en"),
                other => panic!("{other} got {subject}"),
            }
        }
        let mail = mailparse::parse_mail(received[2].raw.as_bytes()).unwrap();
        assert_eq!(
            header(&mail, "Subject"),
            ["The machine credential Marker of Marker Ltd. expires in 30 days"]
        );
        assert_eq!(header(&mail, "Content-Language"), ["en"]);
        consumer.stop().await;
    }
}
