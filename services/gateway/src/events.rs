//! The event consumer: reads accounts', delegation's and identity's domain
//! events and evicts exactly the facts each names, in both cache levels;
//! applies identity's revocations at once (they are durable at identity and
//! polled from it too: [`crate::revocations`]; the bus only speeds them up).
//! Every stream is read from Latest; a resubscription resumes after the last
//! event seen. While any stream is broken or behind (an `Err` until its next
//! `CaughtUp`), cached facts are not trusted, and while identity's is, the
//! bus does not vouch for the revocations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::Retryable as _;
use ccp_platform::auth::Principal;
use ccp_platform::bus::{Delivery, EventBus, Position, StartFrom};
use ccp_proto::common::v1::{DomainEvent, EventType};
use futures::StreamExt as _;
use prost::Message as _;

use crate::facts::{FactsCache, FactsKey};
use crate::revocations::Revocations;
use crate::tokens::Authenticator;
use ccp_types::Bn9;

/// Identity's stream (sessions, credentials, signing keys).
pub const IDENTITY_STREAM: &str = "ccp.events.identity";

/// The streams the gateway consumes.
pub const STREAMS: [&str; 3] = [
    "ccp.events.accounts",
    "ccp.events.delegation",
    IDENTITY_STREAM,
];

/// Returns the facts an event makes stale: the role and assignment facts of
/// every principal it names, the facts of every pair it names, and the
/// program accounts of every business an accounts event names (registration
/// and the registry import link them; evicting on any accounts change keeps
/// that true for any event that may come to link them).
pub fn affected(event: &DomainEvent) -> Vec<FactsKey> {
    let mut keys = Vec::new();
    if event.service == "accounts" {
        keys.extend(
            event
                .businesses
                .iter()
                .filter_map(|b| Bn9::try_new(b))
                .map(FactsKey::Programs),
        );
    }
    for p in &event.principals {
        if let Ok(p) = p.parse::<Principal>() {
            keys.push(FactsKey::Role(p));
            keys.push(FactsKey::Assignments(p));
        }
    }
    for pair in &event.pairs {
        if let (Some(provider), Some(client)) =
            (Bn9::try_new(&pair.provider), Bn9::try_new(&pair.client))
        {
            keys.push(FactsKey::Pair(provider, client));
        }
    }
    keys
}

/// Applies one event: evictions and revocations.
pub async fn apply(event: &DomainEvent, facts: &FactsCache, tokens: &Authenticator) {
    apply_revocations(event, tokens);
    if event.r#type == EventType::SigningKeyRotated as i32
        && let Err(err) = tokens.verifier().refresh().await
    {
        tracing::warn!(error = %err, "signing key refresh after rotation failed");
    }
    facts.evict(&affected(event)).await;
}

/// Returns true when the event revokes tokens or credentials.
fn revokes(event: &DomainEvent) -> bool {
    matches!(
        EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified),
        EventType::SessionSignedOut
            | EventType::SessionFamilyRevoked
            | EventType::CredentialRevoked
    )
}

/// Applies one event's token revocations.
pub fn apply_revocations(event: &DomainEvent, tokens: &Authenticator) {
    match EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified) {
        EventType::SessionSignedOut | EventType::SessionFamilyRevoked => {
            for family in &event.token_families {
                match family.parse() {
                    Ok(id) => tokens.revoke_family(id),
                    Err(_) => {
                        tracing::warn!(family = %family, "event names a malformed token family")
                    }
                }
            }
        }
        EventType::CredentialRevoked => {
            for p in &event.principals {
                if let Ok(p) = p.parse::<Principal>() {
                    tokens.revoke_principal(p);
                }
            }
        }
        _ => {}
    }
}

/// Runs the consumer until the task is dropped. Trust is granted only while
/// every stream has caught up; a broken stream withdraws it and, when it
/// comes back, the in-process level is dropped (events of the outage may be
/// lost with the server) before trust returns.
pub async fn run(
    bus: Arc<dyn EventBus>,
    facts: FactsCache,
    tokens: Authenticator,
    revocations: Revocations,
) {
    let caught_up = Arc::new(AtomicUsize::new(0));
    // Joined, not spawned: dropping this future stops every stream's consumer.
    futures::future::join_all(STREAMS.map(|stream| {
        consume(
            bus.clone(),
            stream,
            facts.clone(),
            tokens.clone(),
            revocations.clone(),
            caught_up.clone(),
        )
    }))
    .await;
}

async fn consume(
    bus: Arc<dyn EventBus>,
    stream: &'static str,
    facts: FactsCache,
    tokens: Authenticator,
    revocations: Revocations,
    caught_up: Arc<AtomicUsize>,
) {
    let mut live = false;
    let set_live = |live: &mut bool, now_live: bool| {
        if *live == now_live {
            return;
        }
        *live = now_live;
        let n = if now_live {
            caught_up.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            caught_up.fetch_sub(1, Ordering::AcqRel) - 1
        };
        if stream == IDENTITY_STREAM {
            if now_live {
                revocations.bus_live();
            } else {
                revocations.bus_down();
            }
        }
        if !now_live {
            facts.trust().set(false);
        } else if n == STREAMS.len() {
            facts.evict_all_local();
            facts.trust().set(true);
        }
    };
    let policy = ccp_platform::retry::backoff(Duration::from_millis(50), Duration::from_secs(1));
    // Where to resume after a broken subscription, so nothing published in
    // between is lost (a revocation above all).
    let mut last: Option<Position> = None;
    loop {
        let start = match &last {
            Some(position) => StartFrom::After(position.clone()),
            None => StartFrom::Latest,
        };
        let subscribed = (|| bus.subscribe(stream, start.clone()))
            .retry(policy)
            .notify(|err, _| {
                tracing::warn!(stream, error = %err, "cannot subscribe to events; cached facts not trusted");
                set_live(&mut live, false);
            })
            .await;
        let Ok(mut subscription) = subscribed else {
            continue;
        };
        while let Some(item) = subscription.next().await {
            match item {
                Ok(Delivery::CaughtUp) => set_live(&mut live, true),
                Ok(Delivery::Event(delivered)) => {
                    last = Some(delivered.position.clone());
                    match DomainEvent::decode(delivered.payload.as_slice()) {
                        Ok(event) => {
                            apply(&event, &facts, &tokens).await;
                            crate::metrics::get().event(
                                stream,
                                event.occurred_at.as_ref(),
                                revokes(&event),
                            );
                        }
                        Err(err) => {
                            // What it named is unknown: forget everything kept here.
                            tracing::warn!(stream, error = %err, "undecodable event; in-process facts dropped");
                            facts.evict_all_local();
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(stream, error = %err, "event stream broken; cached facts not trusted");
                    set_live(&mut live, false);
                }
            }
        }
        set_live(&mut live, false);
    }
}
