//! What the system does by itself: the sweep (requests and relationships
//! that lapsed, reminders that fell due) and applying accounts' registration
//! events. Each change is its own unit of work by `system`, guarded so that
//! several replicas sweeping at once record it (and emit its event) once;
//! and the replicas take turns through a lease ([`SweepLease`], one row in
//! `sweep_leases`), so only one sweeps at a time rather than all of them
//! racing for the same rows.

use ccp_platform::error::Result;
use ccp_platform::store::Change;
use ccp_platform::store::from_timestamp;
use ccp_proto::common::v1::{DomainEvent, EventType};
use chrono::{DateTime, Utc};
use prost::Message as _;

use super::{Core, begin_system, finish_system, pair_scope, record_pair};
use crate::domain::{Party, REMINDER_DAYS, Relationship, RequestState};
use crate::store;

const BATCH: u64 = 200;

/// The name of the sweep's row in `sweep_leases`.
const SWEEP_LEASE: &str = "sweep";

/// A replica's claim on the sweep: its holder id (random, one per process)
/// and how long a taken lease lasts. The holder renews it while it sweeps
/// (each time a third of it has passed) and at each sweep; another replica
/// takes it over once it lapses (the holder died or stalled). Instants come
/// from the service's clock, so the replicas' clocks must agree to well
/// within the lease (NTP).
#[derive(Debug, Clone)]
pub struct SweepLease {
    holder: String,
    length: chrono::Duration,
}

impl SweepLease {
    /// Returns a claim of a new holder for leases of `length`.
    pub fn new(length: std::time::Duration) -> Self {
        Self {
            holder: uuid::Uuid::new_v4().to_string(),
            length: chrono::Duration::from_std(length).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// Returns the holder's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }
}

/// A lease held during one sweep, and when it was last renewed.
struct Holding<'a> {
    lease: &'a SweepLease,
    renewed: DateTime<Utc>,
}

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

impl Core {
    /// Sweeps once at the clock's current instant, without the lease (tests
    /// drive it at exact instants; the background loop uses [`Core::sweep_leased`]).
    pub async fn sweep_once(&self) -> Result<SweepReport> {
        self.sweep(self.now(), None).await
    }

    /// Takes (or renews) the sweep lease for `lease`'s holder and sweeps,
    /// renewing it as it goes; None, sweeping nothing, while another
    /// replica holds it. A sweep that loses its lease midway (it stalled
    /// past the lease and another replica took over) stops there.
    pub async fn sweep_leased(&self, lease: &SweepLease) -> Result<Option<SweepReport>> {
        // The sweep's instant is read first: it sweeps as of when it was asked.
        let now = self.now();
        if !self.take_sweep_lease(lease, now).await? {
            return Ok(None);
        }
        let holding = Holding {
            lease,
            renewed: now,
        };
        self.sweep(now, Some(holding)).await.map(Some)
    }

    /// Gives the sweep lease up when `lease`'s holder holds it (at
    /// shutdown), so another replica takes over without waiting for it to lapse.
    pub async fn release_sweep_lease(&self, lease: &SweepLease) -> Result<()> {
        Ok(store::release_lease(self.db(), SWEEP_LEASE, &lease.holder, self.now()).await?)
    }

    async fn take_sweep_lease(&self, lease: &SweepLease, now: DateTime<Utc>) -> Result<bool> {
        let until = now + lease.length;
        Ok(store::take_lease(self.db(), SWEEP_LEASE, &lease.holder, now, until).await?)
    }

    /// Returns whether the sweep may go on: always without a lease; with
    /// one, renewing it once a third of it has passed, false when it was lost.
    async fn still_holds(&self, holding: &mut Option<Holding<'_>>) -> Result<bool> {
        let Some(h) = holding else {
            return Ok(true);
        };
        let now = self.now();
        if now - h.renewed < h.lease.length / 3 {
            return Ok(true);
        }
        if self.take_sweep_lease(h.lease, now).await? {
            h.renewed = now;
            return Ok(true);
        }
        tracing::warn!(holder = %h.lease.holder, "sweep lease lost to another replica; this sweep stops");
        Ok(false)
    }

    /// Sweeps as of `now`, while `holding` (when set) still holds its lease.
    async fn sweep(
        &self,
        now: DateTime<Utc>,
        mut holding: Option<Holding<'_>>,
    ) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        loop {
            let rows = store::lapsed_requests(self.db(), now, BATCH).await?;
            let n = rows.len();
            for row in rows {
                if !self.still_holds(&mut holding).await? {
                    return Ok(report);
                }
                let mut w = begin_system(&self.writer).await?;
                let rev = w
                    .bump_revision(&pair_scope(&row.provider, &row.client))
                    .await?;
                let mut recorded = 0;
                if let Some(fresh) = store::get_request(w.txn(), &row.id).await?
                    && fresh.state == RequestState::Pending
                    && fresh.expire_time.is_some_and(|e| e <= now)
                    && self.record_request_lapse(&mut w, &fresh, &rev).await?
                {
                    recorded += 1;
                }
                if finish_system(w, recorded).await? {
                    report.requests_expired += recorded;
                }
            }
            if (n as u64) < BATCH {
                break;
            }
        }
        loop {
            let rows = store::lapsed_relationships(self.db(), now, BATCH).await?;
            let n = rows.len();
            for row in rows {
                if !self.still_holds(&mut holding).await? {
                    return Ok(report);
                }
                let mut w = begin_system(&self.writer).await?;
                let rev = w
                    .bump_revision(&pair_scope(&row.provider, &row.client))
                    .await?;
                w.bump_revision(&row.provider).await?;
                let mut recorded = 0;
                if let Some(fresh) = store::get_relationship(w.txn(), &row.id).await?
                    && fresh.ended.is_none()
                    && fresh.expire_time <= now
                    && self.record_relationship_lapse(&mut w, &fresh, &rev).await?
                {
                    recorded += 1;
                }
                if finish_system(w, recorded).await? {
                    report.relationships_expired += recorded;
                }
            }
            if (n as u64) < BATCH {
                break;
            }
        }
        let mut after_id = String::new();
        loop {
            let rows = store::due_reminders(self.db(), now, &after_id, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after_id = last.id.clone();
            for row in rows {
                if !self.still_holds(&mut holding).await? {
                    return Ok(report);
                }
                if self.remind(&row, now).await? {
                    report.reminders += 1;
                }
            }
        }
        Ok(report)
    }

    /// Emits the most imminent due reminder of a relationship and clears
    /// every due threshold (an earlier one missed while the sweep did not run
    /// is skipped rather than sent late), in one unit of work with the event.
    async fn remind(&self, row: &Relationship, now: DateTime<Utc>) -> Result<bool> {
        let due = row.reminders.map(|d| d.is_some_and(|d| d <= now));
        let Some(index) = (0..3).rev().find(|i| due[*i]) else {
            return Ok(false);
        };
        let days = REMINDER_DAYS[index];
        let mut w = begin_system(&self.writer).await?;
        if !store::clear_reminders(w.txn(), row, due).await? {
            return Ok(false);
        }
        let revision = self
            .pair_revision(w.txn(), &row.provider, &row.client)
            .await?;
        record_pair(
            &mut w,
            &row.provider,
            &row.client,
            Party::Client,
            None,
            Change::new(
                EventType::RelationshipExpiryReminder,
                "delegation.relationship.remind",
                format!("businesses/{}/relationships/{}", row.client, row.id),
            )
            .after(serde_json::json!({"days": days}))
            .details(serde_json::json!({
                "days": days,
                "expire_time": row.expire_time.to_rfc3339(),
            }))
            .revision(revision),
        )
        .await?;
        w.commit(()).await?;
        Ok(true)
    }

    /// Applies one event of accounts' stream (a business registered: the
    /// requests waiting for it become visible) and stores the consumer's
    /// `position` in the same unit of work.
    pub async fn apply_accounts_event(
        &self,
        consumer: &str,
        position: &str,
        payload: &[u8],
    ) -> Result<()> {
        let mut w = begin_system(&self.writer).await?;
        let mut recorded = 0;
        match DomainEvent::decode(payload) {
            Ok(event) if event.r#type == EventType::BusinessRegistered as i32 => {
                let at = event
                    .occurred_at
                    .as_ref()
                    .and_then(from_timestamp)
                    .unwrap_or_else(|| self.now());
                for bn in &event.businesses {
                    if ccp_types::Bn9::try_new(bn).is_some() {
                        recorded += self.mark_registered_in(&mut w, bn, at).await?;
                    }
                }
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "accounts events: undecodable payload skipped");
            }
        }
        store::store_consumer_position(w.txn(), consumer, position).await?;
        if finish_system(w, recorded).await? {
            Ok(())
        } else {
            Err(ccp_platform::error::Error::aborted(
                "a concurrent change made the requests visible first; retry",
            ))
        }
    }
}
