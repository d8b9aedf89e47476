//! Dead letters through the operator API: a recipient the mail server refuses for good, and an
//! outage longer than `give_up_after`, each become a failed notice listed by
//! `ListFailedNotices` while the consumer moves on to the next event; once the server takes
//! them, a retry delivers the very message (same Message-ID) once, records it and removes it;
//! a retry of what was already sent sends nothing. Every call needs the internal token.

use std::sync::Arc;
use std::time::Duration;

use ccp_notifications::mail::{Mailer, message_id};
use ccp_notifications::{Application, Notifier, store};
use ccp_platform::bus::EventBus;
use ccp_platform::clock::Clock;
use ccp_platform::context::ServiceContext;
use ccp_platform::testing::TestBackend;
use ccp_proto::notifications::v1 as pb;
use ccp_proto::notifications::v1::notifications_admin_client::NotificationsAdminClient;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::sink::Sink;
use super::{
    CLIENT, DOMAIN, OTHER_CLIENT, WAIT, directory, header, publish, request_sent, wait_for,
};

type Admin = NotificationsAdminClient<
    InterceptedService<Channel, ccp_platform::auth::InternalClientInterceptor>,
>;

/// A notifier giving up after `give_up_after`, served with its operator API; the API's client
/// (with the internal token) and a stop.
struct Served {
    notifier: Notifier,
    bus: Arc<dyn EventBus>,
    admin: Admin,
    channel: Channel,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(backend: &TestBackend, sink: &Sink, give_up_after: Duration) -> Served {
    let db = ccp_platform::db::connect_and_migrate::<store::Migrator>(
        &backend.settings("notifications"),
    )
    .await
    .unwrap();
    let notifier = Notifier::new(
        db,
        Mailer::smtp(&sink.url(), Duration::from_secs(5)).unwrap(),
        directory(),
        "CCP <noreply@ccp.test>".parse().unwrap(),
        DOMAIN.into(),
        Clock::system(),
    )
    .unwrap()
    .give_up_after(give_up_after);
    let ctx = ServiceContext::in_memory(Clock::system());
    let app = Application::with_notifier(
        &ctx,
        &ccp_platform::config::ServerSettings::default(),
        notifier.clone(),
    )
    .await
    .unwrap();
    let channel = Channel::from_shared(format!("http://{}", app.local_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let admin = NotificationsAdminClient::with_interceptor(
        channel.clone(),
        ctx.client_interceptor("platform:ccp-notifications"),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Served {
        notifier,
        bus: ctx.bus.clone(),
        admin,
        channel,
        stop,
        task,
    }
}

impl Served {
    async fn failed(&mut self) -> Vec<pb::FailedNotice> {
        self.admin
            .list_failed_notices(pb::ListFailedNoticesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .notices
    }

    /// Waits (bounded by [`WAIT`]) until `n` notices are listed as failed and returns them.
    async fn wait_failed(&mut self, n: usize) -> Vec<pb::FailedNotice> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let failed = self.failed().await;
            if failed.len() >= n {
                return failed;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} failed notice(s) within {WAIT:?}; got {failed:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn retry(&mut self, id: &str) -> Result<pb::RetryFailedNoticeResponse, tonic::Status> {
        self.admin
            .retry_failed_notice(pb::RetryFailedNoticeRequest {
                message_id: id.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the service stops")
            .unwrap()
            .unwrap();
    }
}

fn message_ids(received: &[super::sink::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            let mail = mailparse::parse_mail(r.raw.as_bytes()).unwrap();
            header(&mail, "Message-ID").concat()
        })
        .collect()
}

#[tokio::test]
async fn a_recipient_refused_for_good_is_listed_and_a_retry_sends_the_same_message_once() {
    for backend in TestBackend::all().await {
        eprintln!("backend: {}", backend.name());
        let sink = Sink::start().await;
        sink.reject("erin@other.example", true);
        // A day: the refusal alone makes it a dead letter.
        let mut served = serve(&backend, &sink, Duration::from_secs(86_400)).await;

        // Without the internal token the API answers nothing.
        let mut anonymous = NotificationsAdminClient::new(served.channel.clone());
        let refused = anonymous
            .list_failed_notices(pb::ListFailedNoticesRequest::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

        let refused_event = request_sent(OTHER_CLIENT);
        publish(&served.bus, &refused_event).await;
        // The consumer moves on: the next event's notices arrive.
        let next = request_sent(CLIENT);
        publish(&served.bus, &next).await;
        let received = wait_for(&sink, 2).await;
        let erin = message_id(&refused_event.id, "person:erin", DOMAIN);
        assert!(!message_ids(&received).contains(&erin), "{received:?}");

        let failed = served.wait_failed(1).await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        let notice = &failed[0];
        assert_eq!(notice.message_id, erin);
        assert_eq!(notice.event_id, refused_event.id);
        assert_eq!(notice.recipient, "person:erin");
        assert_eq!(notice.address, "erin@other.example");
        assert_eq!(notice.notice, "relationship-request-received");
        assert_eq!(notice.attempts, 1, "a refusal is not retried");
        assert!(notice.error.contains("550"), "{}", notice.error);
        assert!(
            notice.subject.ends_with("asks to act for Other Imports"),
            "{}",
            notice.subject
        );
        assert!(
            !store::was_sent(served.notifier.db(), &erin).await.unwrap(),
            "a dead letter is not in the ledger"
        );

        // Still refused: the retry fails, the notice stays, its attempt counted.
        let again = served.retry(&erin).await.unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
        let failed = served.failed().await;
        assert_eq!((failed.len(), failed[0].attempts), (1, 2), "{failed:?}");

        // The server takes it now: a retry (the id without brackets works too) sends it.
        sink.reject("erin@other.example", false);
        let bare = erin.trim_start_matches('<').trim_end_matches('>');
        let retried = served.retry(bare).await.unwrap();
        assert_eq!(retried.outcome(), pb::RetryOutcome::Sent);
        assert_eq!(retried.message_id, erin);
        let received = wait_for(&sink, 3).await;
        assert_eq!(received[2].rcpt, ["<erin@other.example>"]);
        assert_eq!(message_ids(&received)[2], erin, "the same Message-ID");
        let mail = mailparse::parse_mail(received[2].raw.as_bytes()).unwrap();
        assert_eq!(
            header(&mail, "Subject"),
            std::slice::from_ref(&notice.subject)
        );
        assert!(store::was_sent(served.notifier.db(), &erin).await.unwrap());
        assert!(served.failed().await.is_empty());

        // Gone from the list: NOT_FOUND. Put back (as after a crash between the ledger row and
        // the removal), a retry finds it sent and sends nothing.
        let gone = served.retry(&erin).await.unwrap_err();
        assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
        let letter = store::DeadLetter {
            message_id: erin.clone(),
            event_id: refused_event.id.clone(),
            recipient: "person:erin".into(),
            address: "erin@other.example".into(),
            notice: "relationship-request-received".into(),
            message: received[2].raw.clone(),
            error: "550".into(),
            attempts: 1,
            first_failed: chrono::Utc::now(),
            last_failed: chrono::Utc::now(),
        };
        store::record_dead_letter(served.notifier.db(), &letter)
            .await
            .unwrap();
        let retried = served.retry(&erin).await.unwrap();
        assert_eq!(retried.outcome(), pb::RetryOutcome::AlreadySent);
        assert!(served.failed().await.is_empty());
        assert_eq!(sink.received().len(), 3, "nothing sent twice");
        served.stop().await;
    }
}

#[tokio::test]
async fn an_outage_longer_than_give_up_after_makes_a_dead_letter_and_retry_all_delivers_it() {
    let backend = TestBackend::sqlite();
    let sink = Sink::start().await;
    sink.refuse(true);
    let mut served = serve(&backend, &sink, Duration::from_millis(300)).await;
    let event = request_sent(OTHER_CLIENT);
    publish(&served.bus, &event).await;
    let failed = served.wait_failed(1).await;
    let erin = message_id(&event.id, "person:erin", DOMAIN);
    assert_eq!(failed[0].message_id, erin);
    // Tried, retried with backoff, then given up on.
    assert!(failed[0].attempts >= 2, "{failed:?}");
    assert!(failed[0].error.contains("421"), "{}", failed[0].error);
    assert!(sink.received().is_empty());

    // The server is back: the consumer has moved on (the next event's notices arrive, the
    // dead letter is not sent by it) and a retry of them all delivers the dead letter once.
    sink.refuse(false);
    publish(&served.bus, &request_sent(CLIENT)).await;
    let received = wait_for(&sink, 2).await;
    assert!(!message_ids(&received).contains(&erin), "{received:?}");
    let report = served
        .admin
        .retry_all_failed_notices(pb::RetryAllFailedNoticesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (report.sent, report.already_sent, report.failed),
        (1, 0, 0),
        "{report:?}"
    );
    let received = wait_for(&sink, 3).await;
    assert_eq!(message_ids(&received)[2], erin);
    assert!(served.failed().await.is_empty());
    served.stop().await;
    assert_eq!(sink.received().len(), 3);
}
