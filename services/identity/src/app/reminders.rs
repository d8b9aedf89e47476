//! What identity does by itself: reminding a business of each machine credential that expires
//! within 30 days, once per credential. Every replica sweeps (no lease): a reminder is recorded
//! in the unit of work that marks its credential with a conditional UPDATE (`expiry_reminder_us`
//! still NULL), so replicas sweeping at once emit it once.

use std::sync::Arc;
use std::time::Duration;

use ccp_platform::error::{Error, Result};
use ccp_platform::store::{Begun, Change, WriteBy};
use ccp_proto::common::v1::EventType;

use super::Core;
use crate::domain::credential::{self, MachineCredential};
use crate::store::credentials;

/// Credentials read per query of the sweep.
const BATCH: u64 = 200;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Expiry reminders emitted (credentials another replica reminded of meanwhile are not
    /// counted).
    pub credential_reminders: usize,
}

impl Core {
    /// Sweeps once at the clock's current instant: emits the expiry reminder of every active
    /// credential expiring within 30 days that has had none.
    pub async fn sweep_once(&self) -> Result<SweepReport> {
        let now = self.now();
        let lead = credential::expiry_reminder_lead();
        let mut report = SweepReport::default();
        let mut after_id = String::new();
        loop {
            let due =
                credentials::due_expiry_reminders(&self.db, now, lead, &after_id, BATCH).await?;
            let Some(last) = due.last() else { break };
            after_id = last.id.to_string();
            for c in &due {
                if self.remind_expiry(c).await? {
                    report.credential_reminders += 1;
                }
            }
        }
        Ok(report)
    }

    /// Marks `c` reminded and records its reminder, in one unit of work; false (nothing
    /// written) when another replica reminded of it, or it was revoked or expired, meanwhile.
    async fn remind_expiry(&self, c: &MachineCredential) -> Result<bool> {
        let mut w = match self.writer.begin::<()>(WriteBy::system()).await? {
            Begun::Fresh(w) => *w,
            Begun::Replayed(()) => {
                return Err(Error::internal(anyhow::anyhow!(
                    "a system write was replayed"
                )));
            }
        };
        let now = w.now();
        if c.expire_time <= now || !credentials::mark_expiry_reminded(w.txn(), c.id, now).await? {
            w.commit_unchanged(()).await?;
            return Ok(false);
        }
        let details = serde_json::json!({
            "days": credential::reminder_days(c.expire_time, now),
            "expire_time": c.expire_time.to_rfc3339(),
            "display_name": c.display_name,
            "business": c.business.as_str(),
        });
        w.record(
            Change::new(
                EventType::CredentialExpiryReminder,
                "identity.credential.remind",
                c.name(),
            )
            .acting_for(c.business.as_str())
            .principals([c.principal()])
            .after(details.clone())
            .details(details),
        )
        .await?;
        w.commit(()).await?;
        tracing::info!(credential = %c.id, business = %c.business, "credential expiry reminder emitted");
        Ok(true)
    }
}

/// Runs sweeps; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sweeper {
    core: Arc<Core>,
}

impl Sweeper {
    /// Returns a sweeper over the service's state.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Sweeps once at the clock's current instant.
    pub async fn sweep_once(&self) -> anyhow::Result<SweepReport> {
        Ok(self.core.sweep_once().await?)
    }

    /// Sweeps every `interval` until `shutdown` completes.
    pub async fn run(self, interval: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(err) = self.core.sweep_once().await {
                tracing::warn!(error = %err, "sweep failed; will retry");
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
