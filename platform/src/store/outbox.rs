//! The transactional outbox (R-EV-1) and its relay to the event bus.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use prost::Message as _;
use sea_orm::{DatabaseConnection, DbBackend, Statement, TransactionTrait as _};
use tokio::sync::Notify;

use super::t;
use crate::bus::EventBus;

/// Queues a domain event in the outbox, in the caller's transaction.
pub async fn enqueue_event<C: ConnectionTrait>(
    db: &C,
    stream: &str,
    event: &ccp_proto::common::v1::DomainEvent,
    time: DateTime<Utc>,
) -> Result<(), DbErr> {
    let stmt = Query::insert()
        .into_table(t("outbox_events"))
        .columns([t("event_id"), t("stream"), t("payload"), t("created_at")])
        .values_panic([
            event.id.clone().into(),
            stream.into(),
            event.encode_to_vec().into(),
            time.into(),
        ])
        .to_owned();
    db.execute(&stmt).await?;
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct OutboxRow {
    seq: i64,
    stream: String,
    payload: Vec<u8>,
}

/// Publishes outbox events to the bus in commit order, at least once: an
/// event is marked published only after the bus acknowledged it, so a bus
/// outage delays events and never loses them.
#[derive(Clone)]
pub struct OutboxRelay {
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    poll_interval: Duration,
    health: Option<tonic_health::server::HealthReporter>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// Returns a relay from `db`'s outbox to `bus`.
    pub fn new(db: DatabaseConnection, bus: Arc<dyn EventBus>) -> Self {
        Self {
            db,
            bus,
            wake: Arc::new(Notify::new()),
            poll_interval: Duration::from_millis(200),
            health: None,
        }
    }

    /// The health service name under which the relay reports whether it can
    /// publish: SERVING while the bus takes its events, NOT_SERVING while it
    /// does not (the service itself stays SERVING: its writes wait in the
    /// outbox).
    pub const HEALTH_NAME: &'static str = "ccp.bus";

    /// Reports the bus state to `health` under [`Self::HEALTH_NAME`].
    pub fn with_health(mut self, health: tonic_health::server::HealthReporter) -> Self {
        self.health = Some(health);
        self
    }

    async fn report(&self, up: bool) {
        if let Some(health) = &self.health {
            let status = if up {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            health.set_service_status(Self::HEALTH_NAME, status).await;
        }
    }

    /// Wakes the relay after a commit, so events go out without waiting for the poll.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Publishes every pending event once; returns how many were published.
    ///
    /// Replicas of a service share one outbox: on PostgreSQL a batch is
    /// published under a transaction-scoped advisory lock of this schema's
    /// outbox, so one replica relays at a time (in commit order) and the
    /// others find the lock taken and leave the batch to it. Publishing stays
    /// at least once: a crash between publish and mark publishes again, and
    /// consumers apply an event id once.
    pub async fn publish_pending(&self) -> Result<usize, anyhow::Error> {
        let mut published = 0;
        loop {
            let batch = if self.db.get_database_backend() == DbBackend::Postgres {
                self.publish_batch_locked().await?
            } else {
                // SQLite is the embedded mode: one process, one relay.
                self.publish_batch(&self.db).await?
            };
            match batch {
                Some(0) | None => return Ok(published),
                Some(n) => published += n,
            }
        }
    }

    /// Publishes one batch under this schema's advisory lock; None when
    /// another replica holds it.
    async fn publish_batch_locked(&self) -> Result<Option<usize>, anyhow::Error> {
        let txn = self.db.begin().await?;
        let locked = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox_events'))",
            ))
            .await?
            .map(|row| row.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(false);
        if !locked {
            return Ok(None);
        }
        let batch = self.publish_batch(&txn).await;
        // Keep the marks of what did go out, even when a publish failed.
        txn.commit().await?;
        batch
    }

    /// Publishes up to 100 pending events in order, marking each once the
    /// bus acknowledged it; returns how many went out.
    async fn publish_batch<C: ConnectionTrait>(
        &self,
        db: &C,
    ) -> Result<Option<usize>, anyhow::Error> {
        let q = Query::select()
            .columns([t("seq"), t("stream"), t("payload")])
            .from(t("outbox_events"))
            .and_where(Expr::col(t("published_at")).is_null())
            .order_by(t("seq"), Order::Asc)
            .limit(100)
            .to_owned();
        let stmt = db.get_database_backend().build(&q);
        let rows = OutboxRow::find_by_statement(stmt).all(db).await?;
        let mut published = 0;
        for row in rows {
            self.bus.publish(&row.stream, &row.payload).await?;
            let mark = Query::update()
                .table(t("outbox_events"))
                .value(t("published_at"), Utc::now())
                .and_where(Expr::col(t("seq")).eq(row.seq))
                .to_owned();
            db.execute(&mark).await?;
            published += 1;
            relay_lag(&row.stream, &row.payload);
        }
        Ok(Some(published))
    }

    /// Sets `ccp_outbox_depth{stream}` to the events not yet published (0
    /// for a stream seen before that has none now).
    async fn measure_depth(&self, seen: &mut Vec<String>) -> Result<(), DbErr> {
        #[derive(Debug, FromQueryResult)]
        struct Depth {
            stream: String,
            n: i64,
        }
        let q = Query::select()
            .column(t("stream"))
            .expr_as(Expr::col(t("seq")).count(), t("n"))
            .from(t("outbox_events"))
            .and_where(Expr::col(t("published_at")).is_null())
            .group_by_col(t("stream"))
            .to_owned();
        let stmt = self.db.get_database_backend().build(&q);
        let depths = Depth::find_by_statement(stmt).all(&self.db).await?;
        for stream in seen.iter() {
            if !depths.iter().any(|d| &d.stream == stream) {
                metrics::gauge!("ccp_outbox_depth", "stream" => stream.clone()).set(0.0);
            }
        }
        for depth in depths {
            #[allow(clippy::cast_precision_loss)] // A queue's length fits an f64.
            metrics::gauge!("ccp_outbox_depth", "stream" => depth.stream.clone())
                .set(depth.n as f64);
            if !seen.contains(&depth.stream) {
                seen.push(depth.stream);
            }
        }
        Ok(())
    }

    /// Runs until `shutdown` completes: publishes on every wake-up and poll,
    /// retrying with backoff while the bus is unavailable.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut delays = crate::retry::Delays::new(self.poll_interval, Duration::from_secs(5));
        let mut streams = Vec::new();
        let mut measured: Option<std::time::Instant> = None;
        loop {
            let published = self.publish_pending().await;
            // The queue's depth, at most once a second (a count query).
            if crate::metrics::enabled()
                && measured.is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
            {
                measured = Some(std::time::Instant::now());
                if let Err(err) = self.measure_depth(&mut streams).await {
                    tracing::debug!(error = %err, "outbox relay: cannot measure the depth");
                }
            }
            if self.health.is_some() {
                // Nothing to publish says nothing of the bus: ask it.
                let up = match &published {
                    Ok(0) => self.bus.ping().await.is_ok(),
                    Ok(_) => true,
                    Err(_) => false,
                };
                self.report(up).await;
            }
            let wait = match published {
                Ok(_) => {
                    delays = crate::retry::Delays::new(self.poll_interval, Duration::from_secs(5));
                    self.poll_interval
                }
                Err(err) => {
                    tracing::warn!(error = %err, "outbox relay: publish failed; will retry");
                    delays.next_delay()
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Records `ccp_outbox_relay_lag_seconds{stream}`: from the event's
/// `occurred_at` to its publication (0 when the clock is behind it).
fn relay_lag(stream: &str, payload: &[u8]) {
    if !crate::metrics::enabled() {
        return;
    }
    let Ok(event) = ccp_proto::common::v1::DomainEvent::decode(payload) else {
        return;
    };
    let Some(at) = event
        .occurred_at
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
    else {
        return;
    };
    let lag = (Utc::now() - at).to_std().unwrap_or(Duration::ZERO);
    metrics::histogram!("ccp_outbox_relay_lag_seconds", "stream" => stream.to_owned()).record(lag);
    // The stream's depth series exists (0) from its first event on; the
    // relay's count sets it.
    metrics::gauge!("ccp_outbox_depth", "stream" => stream.to_owned()).increment(0.0);
}
