//! Which replica consumes a stream: the one holding its lease in `consumer_leases` (one row
//! per consumer, through `ccp_platform::store::lease`, the conditional upsert delegation's
//! sweep lease uses too). The holder renews it each third of `lease_ms`; a replica without it
//! waits and takes it once it lapses (the holder stopped or stalled) or is given up (the
//! holder shut down). Instants come from the service's clock, so the replicas' clocks must
//! agree to well within the lease (NTP).

use crate::Notifier;
use crate::store;

/// How one run of a stream's consumer ended.
pub(crate) enum Run {
    /// Another replica holds the lease: nothing consumed.
    Waiting,
    /// The lease was lost to another replica (this one stalled past it).
    Lost,
    /// The bus ended the subscription.
    Ended,
}

impl Notifier {
    /// Returns how long a taken lease lasts.
    pub(crate) fn lease_length(&self) -> std::time::Duration {
        self.lease
    }

    /// Takes or renews the lease `name`: true while this notifier holds it.
    pub(crate) async fn take_lease(&self, name: &'static str) -> Result<bool, sea_orm::DbErr> {
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX);
        let held = store::take_lease(self.db(), name, &self.holder, now, until).await?;
        let mut names = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        names.retain(|n| *n != name);
        if held {
            names.push(name);
        }
        Ok(held)
    }

    /// Gives up every lease this notifier holds (at shutdown), so another replica takes over
    /// without waiting for them to lapse; a failure only delays that.
    pub(crate) async fn release_leases(&self) {
        let names = std::mem::take(
            &mut *self
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for name in names {
            if let Err(err) =
                store::release_lease(self.db(), name, &self.holder, self.clock.now()).await
            {
                tracing::warn!(consumer = name, error = %err, "lease not given up; it lapses");
            }
        }
    }
}
