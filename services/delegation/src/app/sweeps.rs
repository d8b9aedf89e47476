//! What the system does by itself: the sweep (requests and relationships
//! that lapsed, reminders that fell due) and applying accounts' registration
//! events. Each change is its own unit of work by `system`, guarded so that
//! several replicas sweeping at once record it (and emit its event) once.

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
    /// Sweeps once at the clock's current instant.
    pub async fn sweep_once(&self) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let now = self.now();
        loop {
            let rows = store::lapsed_requests(self.db(), now, BATCH).await?;
            let n = rows.len();
            for row in rows {
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
