//! The notifications service: e-mails people about the events that wait on them, in their
//! language (English or French), each message once.
//!
//! A fifth service rather than a part of delegation or accounts (docs/notifications.md says why
//! at length): it reads every service's events, talks to a mail server no other service needs,
//! keeps a ledger of its own, and its outages (a mail server down) must never slow a domain
//! write. Like the gateway it only consumes the bus.
//!
//! Rooms: `notices` turns an event into messages (who, which language, once each), `render` the
//! Fluent catalogues in `templates/<language>/`, `mail` the messages and where they go (SMTP or
//! `.eml` files), `directory` the recipients (accounts' and identity's facts APIs),
//! `dead_letters` the messages given up on and their replay, `lease` which replica consumes,
//! `grpc` the operator API over them and `service` the process (consumers and API), `store` the
//! sent ledger, the dead letters, the consumer positions and leases.

pub mod config;
pub mod dead_letters;
pub mod directory;
pub mod grpc;
mod lease;
pub mod mail;
pub mod notices;
pub mod render;
pub mod service;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use ccp_platform::bus::{Delivery, EventBus, Position, StartFrom};
use ccp_platform::context::ServiceContext;
use futures::StreamExt as _;
use prost::Message as _;
use secrecy::ExposeSecret as _;

pub use config::NotificationsSettings;
pub use notices::{Notifier, Outcome};
pub use service::Application;

/// The stream of delegation's events (relationship requests, relationships, reminders).
pub const DELEGATION_STREAM: &str = "ccp.events.delegation";

/// The name under which the delegation-events consumer stores its position.
pub const DELEGATION_CONSUMER: &str = "delegation-events";

/// Builds the notifier of a deployment: the database (migrated when the settings say so), the
/// mailer (SMTP, or `.eml` files in `mail_dir`) and the directory over accounts and identity.
pub async fn build(
    ctx: &ServiceContext,
    settings: &NotificationsSettings,
) -> anyhow::Result<Notifier> {
    let db = ccp_platform::db::connect_for_service::<store::Migrator>(
        &settings.database.for_service("notifications"),
    )
    .await?;
    let mailer = mailer(settings)?;
    let timeout = Duration::from_secs(5);
    let interceptor = || ctx.client_interceptor("service:notifications");
    let directory = directory::GrpcDirectory::new(
        tonic::service::interceptor::InterceptedService::new(
            ctx.upstream_channel(&settings.accounts_facts_endpoint, timeout)?,
            interceptor(),
        ),
        tonic::service::interceptor::InterceptedService::new(
            ctx.upstream_channel(&settings.identity_facts_endpoint, timeout)?,
            interceptor(),
        ),
    );
    Ok(Notifier::new(
        db,
        mailer,
        Arc::new(directory),
        settings.from.parse()?,
        settings.message_id_domain.clone(),
        ctx.clock.clone(),
    )?
    .give_up_after(Duration::from_millis(settings.give_up_after_ms))
    .lease(Duration::from_millis(settings.lease_ms)))
}

/// Returns the mailer the settings name: SMTP when `smtp_url` is set, else `.eml` files.
pub fn mailer(settings: &NotificationsSettings) -> anyhow::Result<mail::Mailer> {
    let url = settings.smtp_url.expose_secret();
    Ok(if url.is_empty() {
        mail::Mailer::files(std::path::Path::new(&settings.mail_dir))?
    } else {
        mail::Mailer::smtp(url, Duration::from_millis(settings.smtp_timeout_ms))?
    })
}

/// The stream of accounts' events (employee access requests).
pub const ACCOUNTS_STREAM: &str = "ccp.events.accounts";

/// The name under which the accounts-events consumer stores its position.
pub const ACCOUNTS_CONSUMER: &str = "accounts-events";

/// The stream of identity's events (machine credentials expiring).
pub const IDENTITY_STREAM: &str = "ccp.events.identity";

/// The name under which the identity-events consumer stores its position.
pub const IDENTITY_CONSUMER: &str = "identity-events";

/// Consumes delegation's, accounts' and identity's events until `shutdown` completes, each stream from the
/// position stored for it in this service's schema, storing each event's position once its
/// notices are delivered. An event that cannot be handled now (mail server or directory down)
/// is retried, with backoff, from the last stored position; the ledger keeps what was
/// delivered from being sent twice. With several replicas on one database, each stream is
/// consumed by the one holding its lease (`consumer_leases`); the others wait and take over
/// once it lapses. At shutdown the leases are given up, so another replica takes over at once.
pub async fn consume(
    notifier: Notifier,
    bus: Arc<dyn EventBus>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    // Each stream's loop runs until shutdown drops it (at an await, as a stop mid-event would:
    // the ledger and the stored position make that safe).
    let notifier_leases = notifier.clone();
    let both = async {
        tokio::join!(
            consume_stream(
                notifier.clone(),
                bus.clone(),
                DELEGATION_STREAM,
                DELEGATION_CONSUMER
            ),
            consume_stream(
                notifier.clone(),
                bus.clone(),
                ACCOUNTS_STREAM,
                ACCOUNTS_CONSUMER
            ),
            consume_stream(notifier, bus, IDENTITY_STREAM, IDENTITY_CONSUMER),
        );
    };
    tokio::select! {
        () = shutdown => {}
        () = both => {}
    }
    notifier_leases.release_leases().await;
}

/// Consumes one stream as [`consume`] says, its position stored under `consumer`.
async fn consume_stream(
    notifier: Notifier,
    bus: Arc<dyn EventBus>,
    stream: &'static str,
    consumer: &'static str,
) {
    let renew_every = notifier.lease_length() / 3;
    // Retries stay within a third of the lease, so the holder keeps it while it retries.
    let mut delays = ccp_platform::retry::Delays::new(
        Duration::from_millis(100),
        Duration::from_secs(30).min(renew_every),
    );
    loop {
        let run = async {
            // Only the replica holding the stream's lease consumes it.
            if !notifier.take_lease(consumer).await? {
                return anyhow::Ok(lease::Run::Waiting);
            }
            let mut renewed = tokio::time::Instant::now();
            let from = match store::consumer_position(notifier.db(), consumer).await? {
                Some(p) => StartFrom::After(Position::new(p)),
                None => StartFrom::Beginning,
            };
            let mut sub = bus.subscribe(stream, from).await?;
            let mut renew = tokio::time::interval(renew_every);
            loop {
                let item = tokio::select! {
                    item = sub.next() => item,
                    _ = renew.tick() => {
                        if !notifier.take_lease(consumer).await? {
                            return Ok(lease::Run::Lost);
                        }
                        renewed = tokio::time::Instant::now();
                        continue;
                    }
                };
                let Some(item) = item else { break };
                match item {
                    Ok(Delivery::Event(d)) => {
                        if renewed.elapsed() >= renew_every {
                            if !notifier.take_lease(consumer).await? {
                                return Ok(lease::Run::Lost);
                            }
                            renewed = tokio::time::Instant::now();
                        }
                        match ccp_proto::common::v1::DomainEvent::decode(d.payload.as_slice()) {
                            Ok(event) => {
                                let outcome = notifier.handle(&event).await?;
                                if outcome != Outcome::default() {
                                    tracing::info!(event = %event.id, ?outcome, "notices handled");
                                }
                            }
                            Err(err) => {
                                tracing::warn!(stream, position = %d.position, error = %err, "undecodable event skipped")
                            }
                        }
                        store::store_position(notifier.db(), consumer, d.position.as_str()).await?;
                    }
                    Ok(Delivery::CaughtUp) => {}
                    Err(err) => tracing::warn!(stream, error = %err, "bus error"),
                }
            }
            Ok(lease::Run::Ended)
        };
        match run.await {
            Ok(lease::Run::Waiting) => {
                tokio::time::sleep(renew_every).await;
                continue;
            }
            Ok(lease::Run::Lost) => {
                tracing::warn!(
                    stream,
                    "lease lost to another replica; waiting to take it back"
                );
                tokio::time::sleep(renew_every).await;
                continue;
            }
            Ok(lease::Run::Ended) => {}
            Err(err) => {
                tracing::warn!(stream, error = %err, "notifications consumer failed; retrying");
            }
        }
        tokio::time::sleep(delays.next_delay()).await;
    }
}
