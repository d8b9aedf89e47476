//! The notices after a request: a relationship request approved, rejected (with the reason), a
//! relationship ended (by whom, with their note) or expired, and the 30/7/1-day reminders, to
//! both sides' opted-in managers (and, for reminders, the provider's assigned employees); an
//! employee access request received (the business's managers and its programs' managers) and
//! answered (the requester). Each through the real SMTP sink: exactly the right recipients,
//! each once, in their language, with one Message-ID per (event, recipient).

use std::sync::Arc;

use ccp_notifications::mail::message_id;
use ccp_notifications::store;
use ccp_platform::bus::{EventBus, MemoryBus};
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::{BusinessPair, DomainEvent, EventType};

use super::sink::{Received, Sink};
use super::{CLIENT, DOMAIN, PROVIDER, header, notifier, publish_accounts, run, wait_for};

/// The provider's and client's names as the notices show them (the provider's forged header
/// flattened to one line).
const P: &str = "Brokers Bcc: victim@evil.example";
const C: &str = "Importations Élan";

/// One message a test expects.
struct Expect {
    event: String,
    principal: &'static str,
    language: &'static str,
    subject: String,
    body: Vec<String>,
}

fn expect(
    event: &DomainEvent,
    principal: &'static str,
    language: &'static str,
    subject: impl Into<String>,
    body: &[&str],
) -> Expect {
    Expect {
        event: event.id.clone(),
        principal,
        language,
        subject: subject.into(),
        body: body.iter().map(|b| (*b).to_owned()).collect(),
    }
}

fn address(principal: &str) -> &'static str {
    match principal {
        "paul" => "<paul@provider.example>",
        "alice" => "<alice@client.example>",
        "bob" => "<bob@client.example>",
        "amy" => "<amy@provider.example>",
        "pam" => "<pam@client.example>",
        "rita" => "<rita@home.example>",
        other => panic!("no address for {other}"),
    }
}

/// Asserts that `received` holds exactly the `expected` messages, each once.
fn check(received: &[Received], expected: &[Expect]) {
    let ids: Vec<String> = received
        .iter()
        .map(|r| {
            let mail = mailparse::parse_mail(r.raw.as_bytes()).unwrap();
            let ids = header(&mail, "Message-ID");
            assert_eq!(ids.len(), 1, "{}", r.raw);
            ids[0].clone()
        })
        .collect();
    assert_eq!(
        received.len(),
        expected.len(),
        "received {:?}",
        received.iter().map(|r| &r.rcpt).collect::<Vec<_>>()
    );
    for e in expected {
        let id = message_id(&e.event, &format!("person:{}", e.principal), DOMAIN);
        let at: Vec<usize> = (0..ids.len()).filter(|i| ids[*i] == id).collect();
        assert_eq!(at.len(), 1, "one message {id} to {}", e.principal);
        let r = &received[at[0]];
        assert_eq!(r.rcpt, [address(e.principal)], "{}", r.raw);
        let mail = mailparse::parse_mail(r.raw.as_bytes()).unwrap();
        assert_eq!(
            header(&mail, "Subject"),
            std::slice::from_ref(&e.subject),
            "{}",
            r.raw
        );
        assert_eq!(header(&mail, "Content-Language"), [e.language], "{}", r.raw);
        assert_eq!(header(&mail, "To").len(), 1, "{}", r.raw);
        assert!(header(&mail, "Bcc").is_empty(), "{}", r.raw);
        let body = mail.get_body().unwrap();
        for fragment in &e.body {
            assert!(body.contains(fragment.as_str()), "{fragment:?} in {body}");
        }
    }
}

fn pair_event(kind: EventType, actor: &str, principals: &[&str], details: &str) -> DomainEvent {
    DomainEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: kind as i32,
        service: "delegation".into(),
        pairs: vec![BusinessPair {
            provider: PROVIDER.into(),
            client: CLIENT.into(),
        }],
        businesses: vec![PROVIDER.into(), CLIENT.into()],
        principals: principals.iter().map(|p| format!("person:{p}")).collect(),
        actor: actor.into(),
        details_json: details.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn answers_ends_and_reminders_reach_both_sides_managers_and_assignees_once_each() {
    let backend = TestBackend::sqlite();
    let sink = Sink::start().await;
    let notifier = notifier(&backend, &sink).await;

    let approved = pair_event(
        EventType::RelationshipRequestApproved,
        "person:alice",
        &["alice"],
        r#"{"relationship":"r1"}"#,
    );
    let outcome = notifier.handle(&approved).await.unwrap();
    // paul, alice, bob; pia and carol opted out; dave has no profile.
    assert_eq!((outcome.sent, outcome.skipped), (3, 2), "{outcome:?}");
    let rejected = pair_event(
        EventType::RelationshipRequestRejected,
        "person:alice",
        &["alice"],
        r#"{"reject_reason":"Not now\r\nBcc: x@evil.example { $client }"}"#,
    );
    let ended = pair_event(
        EventType::RelationshipEnded,
        "person:alice",
        &["alice"],
        r#"{"end_reason":"ENDED_BY_CLIENT","note":"We closed the file."}"#,
    );
    // Ended by someone without a profile: their business is named instead.
    let ended_by_provider = pair_event(
        EventType::RelationshipEnded,
        "person:nobody",
        &[],
        r#"{"end_reason":"ENDED_BY_PROVIDER","note":""}"#,
    );
    let expired = pair_event(
        EventType::RelationshipEnded,
        "system",
        &[],
        r#"{"end_reason":"EXPIRED"}"#,
    );
    // amy is assigned to the client; bob is both assigned and a client manager.
    let tomorrow = pair_event(
        EventType::RelationshipExpiryReminder,
        "system",
        &["amy", "bob"],
        r#"{"days":1,"expire_time":"2027-01-15T12:00:00+00:00"}"#,
    );
    let in_30 = pair_event(
        EventType::RelationshipExpiryReminder,
        "system",
        &["amy"],
        r#"{"days":30,"expire_time":"2027-02-13T12:00:00+00:00"}"#,
    );
    for event in [
        &rejected,
        &ended,
        &ended_by_provider,
        &expired,
        &tomorrow,
        &in_30,
    ] {
        notifier.handle(event).await.unwrap();
    }
    // A reminder delivered again sends nothing.
    let again = notifier.handle(&tomorrow).await.unwrap();
    assert_eq!((again.sent, again.already_sent), (0, 4), "{again:?}");

    let approved_fr = format!("{C} a approuvé la demande de {P}");
    let rejected_fr = format!("{C} a refusé la demande de {P}");
    let ended_fr = format!("La relation entre {P} et {C} a pris fin");
    let ended_en = format!("The relationship between {P} and {C} has ended");
    let expired_fr = format!("La relation entre {P} et {C} a expiré");
    let tomorrow_fr = format!("La relation entre {P} et {C} expire demain");
    let tomorrow_en = format!("The relationship between {P} and {C} expires tomorrow");
    let in_30_fr = format!("La relation entre {P} et {C} expire dans 30 jours");
    let in_30_en = format!("The relationship between {P} and {C} expires in 30 days");
    let fr_reason = "Raison donnée : Not now Bcc: x@evil.example { $client }";
    let en_reason = "Reason given: Not now Bcc: x@evil.example { $client }";
    let alice_ended_fr = format!("Alice Tremblay a mis fin, pour {C} (le client), à la relation");
    let alice_ended_en = format!("Alice Tremblay ended, for {C} (the client), the relationship");
    let provider_ended_en = format!("{P} ended, for {P} (the service provider), the relationship");
    let expected = vec![
        expect(
            &approved,
            "paul",
            "fr",
            &approved_fr,
            &["Bonjour Paul Gagnon,", &format!("auprès de {P}.")],
        ),
        expect(
            &approved,
            "alice",
            "fr",
            &approved_fr,
            &["Bonjour Alice Tremblay,", &format!("auprès de {C}.")],
        ),
        expect(
            &approved,
            "bob",
            "en",
            format!("{C} approved the request of {P}"),
            &["Hello Bob Smith,", "The relationship has begun."],
        ),
        expect(&rejected, "paul", "fr", &rejected_fr, &[fr_reason]),
        expect(&rejected, "alice", "fr", &rejected_fr, &[fr_reason]),
        expect(
            &rejected,
            "bob",
            "en",
            format!("{C} rejected the request of {P}"),
            &[en_reason],
        ),
        expect(
            &ended,
            "paul",
            "fr",
            &ended_fr,
            &[&alice_ended_fr, "Sa note : We closed the file."],
        ),
        expect(&ended, "alice", "fr", &ended_fr, &[&alice_ended_fr]),
        expect(
            &ended,
            "bob",
            "en",
            &ended_en,
            &[&alice_ended_en, "Their note: We closed the file."],
        ),
        expect(
            &ended_by_provider,
            "paul",
            "fr",
            &ended_fr,
            &["Aucune note n'a été laissée."],
        ),
        expect(&ended_by_provider, "alice", "fr", &ended_fr, &[]),
        expect(
            &ended_by_provider,
            "bob",
            "en",
            &ended_en,
            &[&provider_ended_en, "They left no note."],
        ),
        expect(
            &expired,
            "paul",
            "fr",
            &expired_fr,
            &["a atteint sa date d'expiration"],
        ),
        expect(&expired, "alice", "fr", &expired_fr, &[]),
        expect(
            &expired,
            "bob",
            "en",
            format!("The relationship between {P} and {C} has expired"),
            &["reached its expiry date"],
        ),
        expect(
            &tomorrow,
            "paul",
            "fr",
            &tomorrow_fr,
            &["expire le 2027-01-15, demain."],
        ),
        expect(&tomorrow, "alice", "fr", &tomorrow_fr, &[]),
        expect(
            &tomorrow,
            "bob",
            "en",
            &tomorrow_en,
            &["expires on 2027-01-15, tomorrow."],
        ),
        expect(
            &tomorrow,
            "amy",
            "en",
            &tomorrow_en,
            &["Hello Amy Lee,", &format!("because of your role with {P}.")],
        ),
        expect(
            &in_30,
            "paul",
            "fr",
            &in_30_fr,
            &["expire le 2027-02-13, dans 30 jours."],
        ),
        expect(&in_30, "alice", "fr", &in_30_fr, &[]),
        expect(
            &in_30,
            "bob",
            "en",
            &in_30_en,
            &["expires on 2027-02-13, in 30 days."],
        ),
        expect(&in_30, "amy", "en", &in_30_en, &[]),
    ];
    check(&sink.received(), &expected);
    let ledger = store::sent_for_event(notifier.db(), &tomorrow.id)
        .await
        .unwrap();
    assert_eq!(
        ledger.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
        ["person:alice", "person:amy", "person:bob", "person:paul"]
    );
}

fn employee_event(kind: EventType, requester: &str, actor: &str, details: &str) -> DomainEvent {
    let id = uuid::Uuid::new_v4();
    DomainEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: kind as i32,
        service: "accounts".into(),
        businesses: vec![CLIENT.into()],
        principals: vec![format!("person:{requester}")],
        actor: actor.into(),
        subject: format!("businesses/{CLIENT}/employeeRequests/{id}"),
        details_json: details.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn employee_requests_reach_the_managers_and_program_managers_and_answers_the_requester() {
    for backend in TestBackend::all().await {
        eprintln!("backend: {}", backend.name());
        let sink = Sink::start().await;
        let notifier = notifier(&backend, &sink).await;
        let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1_000));
        let consumer = run(&notifier, &bus);

        // bob is a BAM and a PAM: one message.
        let received = employee_event(
            EventType::EmployeeRequestCreated,
            "rita",
            "person:rita",
            r#"{"note":"I run shipping\r\nBcc: boss@evil.example","program_managers":["person:pam","person:bob"]}"#,
        );
        let approved = employee_event(
            EventType::EmployeeRequestApproved,
            "rita",
            "person:alice",
            "",
        );
        // ron opted out: no message.
        let ron_approved = employee_event(
            EventType::EmployeeRequestApproved,
            "ron",
            "person:alice",
            "",
        );
        let rejected = employee_event(
            EventType::EmployeeRequestRejected,
            "rita",
            "person:bob",
            r#"{"reject_reason":"We do not know you."}"#,
        );
        // In order on accounts' stream: once rita's rejection arrives, all came.
        for event in [&received, &approved, &ron_approved, &rejected] {
            publish_accounts(&bus, event).await;
        }
        let all = wait_for(&sink, 5).await;
        consumer.stop().await;
        let asks_fr = format!("Rita Roy demande à se joindre à {C}");
        let asks_en = format!("Rita Roy asks to join {C}");
        let note_en = "Their note: I run shipping Bcc: boss@evil.example";
        let expected = vec![
            expect(
                &received,
                "alice",
                "fr",
                &asks_fr,
                &[
                    "Sa note : I run shipping Bcc: boss@evil.example",
                    "Bonjour Alice Tremblay,",
                ],
            ),
            expect(
                &received,
                "bob",
                "en",
                &asks_en,
                &[note_en, "Hello Bob Smith,"],
            ),
            expect(
                &received,
                "pam",
                "en",
                &asks_en,
                &[note_en, &format!("because of your role with {C}.")],
            ),
            expect(
                &approved,
                "rita",
                "fr",
                format!("Vous vous êtes joint à {C}"),
                &["Bonjour Rita Roy,", "a approuvé votre demande"],
            ),
            expect(
                &rejected,
                "rita",
                "fr",
                format!("{C} a refusé votre demande pour vous y joindre"),
                &["Raison donnée : We do not know you."],
            ),
        ];
        check(&all, &expected);
    }
}
