//! Background work: the periodic sweep (requests and relationships that
//! lapsed, reminders that fell due) and the consumer of accounts' events
//! (a business registered: waiting requests to it become visible).

use std::time::Duration;

use ccp_platform::bus::{Delivery, Position, StartFrom};
use ccp_platform::store::from_timestamp;
use ccp_proto::common::v1::{DomainEvent, EventType};
use futures::StreamExt as _;
use prost::Message as _;

use crate::domain::REMINDER_DAYS;
use crate::grpc::Core;
use crate::grpc::core::{Change, SYSTEM};
use crate::store::{self, from_us, us};

/// The stream accounts publishes to.
pub const ACCOUNTS_STREAM: &str = "ccp.events.accounts";

/// The name under which the accounts consumer stores its position.
pub const ACCOUNTS_CONSUMER: &str = "accounts-events";

const BATCH: u64 = 200;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Requests recorded as expired.
    pub requests_expired: usize,
    /// Relationships recorded as expired.
    pub relationships_expired: usize,
    /// Reminder events emitted.
    pub reminders: usize,
}

/// Runs sweeps; cheap to clone. Several replicas may sweep at once: each
/// change is guarded so that it is recorded (and its event emitted) once.
#[derive(Debug, Clone)]
pub struct Sweeper {
    core: Core,
}

impl Sweeper {
    /// Returns a sweeper over the service's state.
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    /// Sweeps once at the clock's current instant.
    pub async fn sweep_once(&self) -> anyhow::Result<SweepReport> {
        let core = &self.core;
        let mut report = SweepReport::default();
        let now = core.now();
        loop {
            let rows = store::lapsed_requests(&core.db, us(now), BATCH).await?;
            let n = rows.len();
            for row in rows {
                let txn = core.begin().await?;
                let rev = core.bump_pair(&txn, &row.provider, &row.client).await?;
                if let Some(fresh) = store::get_request(&txn, &row.id).await?
                    && fresh.state == "PENDING"
                    && fresh.expire_us.is_some_and(|e| e <= us(now))
                    && core.record_request_lapse(&txn, &fresh, &rev).await?
                {
                    report.requests_expired += 1;
                }
                core.commit_plain(txn).await?;
            }
            if (n as u64) < BATCH {
                break;
            }
        }
        loop {
            let rows = store::lapsed_relationships(&core.db, us(now), BATCH).await?;
            let n = rows.len();
            for row in rows {
                let txn = core.begin().await?;
                let rev = core.bump_pair(&txn, &row.provider, &row.client).await?;
                core.bump_business(&txn, &row.provider).await?;
                if let Some(fresh) = store::get_relationship(&txn, &row.id).await?
                    && fresh.end_us.is_none()
                    && fresh.expire_us <= us(now)
                    && core.record_relationship_lapse(&txn, &fresh, &rev).await?
                {
                    report.relationships_expired += 1;
                }
                core.commit_plain(txn).await?;
            }
            if (n as u64) < BATCH {
                break;
            }
        }
        let mut after_id = String::new();
        loop {
            let rows = store::due_reminders(&core.db, us(now), BATCH).await?;
            let rows: Vec<_> = rows.into_iter().filter(|r| r.id > after_id).collect();
            let Some(last) = rows.last() else { break };
            after_id = last.id.clone();
            for row in rows {
                if self.remind(&row, us(now)).await? {
                    report.reminders += 1;
                }
            }
        }
        Ok(report)
    }

    /// Emits the most imminent due reminder of a relationship and clears
    /// every due threshold (an earlier one missed while the sweep did not run
    /// is skipped rather than sent late), in one transaction with the event.
    async fn remind(&self, row: &store::RelationshipRow, now_us: i64) -> anyhow::Result<bool> {
        let core = &self.core;
        let due = [row.remind_30_us, row.remind_7_us, row.remind_1_us]
            .map(|d| d.is_some_and(|d| d <= now_us));
        let Some(index) = (0..3).rev().find(|i| due[*i]) else {
            return Ok(false);
        };
        let days = REMINDER_DAYS[index];
        let txn = core.begin().await?;
        if !store::clear_reminders(&txn, row, due).await? {
            return Ok(false);
        }
        let revision = ccp_platform::revision::Revision::new(
            crate::grpc::core::SERVICE,
            crate::grpc::core::pair_scope(&row.provider, &row.client),
            ccp_platform::store::current_revision(
                &txn,
                &crate::grpc::core::pair_scope(&row.provider, &row.client),
            )
            .await?,
        )
        .encode();
        core.record(
            &txn,
            SYSTEM,
            "",
            &revision,
            Change {
                acting_for: row.client.clone(),
                other_business: Some(row.provider.clone()),
                action: "delegation.relationship.remind".to_owned(),
                target: format!("businesses/{}/relationships/{}", row.client, row.id),
                after_json: serde_json::json!({"days": days}).to_string(),
                event: EventType::RelationshipExpiryReminder as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                details_json: serde_json::json!({
                    "days": days,
                    "expire_time": from_us(row.expire_us).to_rfc3339(),
                })
                .to_string(),
                ..Change::default()
            },
        )
        .await?;
        core.commit_plain(txn).await?;
        Ok(true)
    }

    /// Sweeps every `interval` until `shutdown` completes.
    pub async fn run(self, interval: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(err) = self.sweep_once().await {
                tracing::warn!(error = %err, "sweep failed; will retry");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// Consumes accounts' events from the position stored in this schema,
/// storing each handled event's position in the transaction that applies it.
pub async fn consume_accounts_events(core: Core, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(100);
    loop {
        let run = async {
            let from = match store::consumer_position(&core.db, ACCOUNTS_CONSUMER).await? {
                Some(p) => StartFrom::After(Position::new(p)),
                None => StartFrom::Beginning,
            };
            let mut sub = core.ctx.bus.subscribe(ACCOUNTS_STREAM, from).await?;
            while let Some(item) = sub.next().await {
                match item {
                    Ok(Delivery::Event(d)) => {
                        handle_accounts_event(&core, &d.position, &d.payload).await?
                    }
                    Ok(Delivery::CaughtUp) => {}
                    Err(err) => tracing::warn!(error = %err, "accounts events: bus error"),
                }
            }
            anyhow::Ok(())
        };
        tokio::select! {
            () = &mut shutdown => return,
            result = run => {
                if let Err(err) = result {
                    tracing::warn!(error = %err, "accounts events consumer failed; resubscribing");
                }
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn handle_accounts_event(
    core: &Core,
    position: &Position,
    payload: &[u8],
) -> anyhow::Result<()> {
    let txn = core.begin().await?;
    match DomainEvent::decode(payload) {
        Ok(event) if event.r#type == EventType::BusinessRegistered as i32 => {
            let at = event
                .occurred_at
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or_else(|| core.now());
            for bn in &event.businesses {
                if crate::domain::Bn9::parse(bn).is_ok() {
                    core.mark_registered_in(&txn, bn, at).await?;
                }
            }
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "accounts events: undecodable payload skipped"),
    }
    store::store_consumer_position(&txn, ACCOUNTS_CONSUMER, position.as_str()).await?;
    core.commit_plain(txn).await?;
    Ok(())
}
