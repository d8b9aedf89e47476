//! Background work: the periodic sweep and the consumer of accounts' events
//! (a business registered: waiting requests to it become visible). The loops
//! live here; what each pass does is in `app::sweeps`.

use std::sync::Arc;
use std::time::Duration;

use ccp_platform::bus::{Delivery, Position, StartFrom};
use futures::StreamExt as _;

use crate::app::Core;
use crate::store;

pub use crate::app::sweeps::{SweepLease, SweepReport};

/// The stream accounts publishes to.
pub const ACCOUNTS_STREAM: &str = "ccp.events.accounts";

/// The name under which the accounts consumer stores its position.
pub const ACCOUNTS_CONSUMER: &str = "accounts-events";

/// Runs sweeps; cheap to clone. However many replicas run, one sweeps at a
/// time: the one holding the sweep lease ([`SweepLease`]); each change is
/// also guarded, so that it is recorded (and its event emitted) once.
#[derive(Debug, Clone)]
pub struct Sweeper {
    core: Core,
    lease: Arc<SweepLease>,
}

impl Sweeper {
    /// Returns a sweeper over the service's state, claiming the sweep as
    /// `lease`'s holder.
    pub fn new(core: Core, lease: SweepLease) -> Self {
        Self {
            core,
            lease: Arc::new(lease),
        }
    }

    /// Sweeps once at the clock's current instant, without the lease.
    pub async fn sweep_once(&self) -> anyhow::Result<SweepReport> {
        Ok(self.core.sweep_once().await?)
    }

    /// Sweeps once if this sweeper holds or can take the lease; None when
    /// another replica holds it.
    pub async fn sweep_leased(&self) -> anyhow::Result<Option<SweepReport>> {
        Ok(self.core.sweep_leased(&self.lease).await?)
    }

    /// Sweeps every `interval` while it holds the lease until `shutdown`
    /// completes, then gives the lease up.
    pub async fn run(self, interval: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.sweep_leased().await {
                Ok(Some(_)) => {}
                Ok(None) => tracing::debug!("another replica holds the sweep lease"),
                Err(err) => tracing::warn!(error = %err, "sweep failed; will retry"),
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
        if let Err(err) = self.core.release_sweep_lease(&self.lease).await {
            tracing::warn!(error = %err, "could not give the sweep lease up; it lapses");
        }
    }
}

/// Consumes accounts' events from the position stored in this schema,
/// storing each handled event's position in the unit of work that applies it.
pub async fn consume_accounts_events(core: Core, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut delays =
        ccp_platform::retry::Delays::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let run = async {
            let from = match store::consumer_position(core.db(), ACCOUNTS_CONSUMER).await? {
                Some(p) => StartFrom::After(Position::new(p)),
                None => StartFrom::Beginning,
            };
            let mut sub = core.ctx.bus.subscribe(ACCOUNTS_STREAM, from).await?;
            while let Some(item) = sub.next().await {
                match item {
                    Ok(Delivery::Event(d)) => {
                        core.apply_accounts_event(
                            ACCOUNTS_CONSUMER,
                            d.position.as_str(),
                            &d.payload,
                        )
                        .await?
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
            () = tokio::time::sleep(delays.next_delay()) => {}
        }
    }
}
