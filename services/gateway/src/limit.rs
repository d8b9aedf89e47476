//! The per-principal rate limit, shared by every gateway replica.
//!
//! Each call is first counted by this replica's own GCRA (one atomic per
//! principal, no lock, no I/O): a principal over the limit on one replica
//! alone is refused without asking Redis. A call it lets through is then
//! counted against the principal's shared budget in Redis
//! ([`Cache::throttle`], one atomic script), so N replicas together allow the
//! configured limit, not N times it. When the shared budget cannot be asked
//! (Redis down, or slower than `gateway.rate_limit_shared_timeout_ms`), the
//! local count alone decides, as if each replica were alone, and Redis is
//! asked again after [`SHARED_RETRY`]; the outage is logged once when it
//! begins and once when it ends (docs/operations.md, "Redis loss").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use ccp_platform::auth::Principal;
use ccp_platform::cache::{Cache, Gcra, Throttle};

/// How long a replica limits on its own after the shared budget failed to answer.
pub const SHARED_RETRY: Duration = Duration::from_secs(1);

/// One principal's local state.
struct PrincipalState {
    /// The theoretical arrival time, nanoseconds since the limiter started.
    tat: AtomicI64,
    /// The principal's key in the shared cache, built once (`rate:{person:…}`;
    /// the braces are a Redis Cluster hash tag).
    key: Box<str>,
}

/// The shared half: the cache every replica counts in, and its health.
struct Shared {
    cache: Arc<dyn Cache>,
    /// Longest wait for the shared answer before the local one stands.
    timeout: Duration,
    /// Until when (nanoseconds since start) only the local count decides.
    local_until: AtomicI64,
    /// Whether an outage has been logged and not yet its end.
    in_outage: AtomicBool,
}

impl Shared {
    fn failed(&self, now: i64, cause: &dyn std::fmt::Display) {
        let retry = i64::try_from(SHARED_RETRY.as_nanos()).unwrap_or(i64::MAX);
        self.local_until
            .store(now.saturating_add(retry), Ordering::Relaxed);
        if !self.in_outage.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %cause,
                "shared rate limit unavailable; each replica limits on its own until it answers"
            );
        }
    }

    fn answered(&self) {
        // A load first: the common case writes nothing to the shared line.
        if self.in_outage.load(Ordering::Relaxed) && self.in_outage.swap(false, Ordering::Relaxed) {
            tracing::info!("shared rate limit answers again");
        }
    }
}

/// A per-principal rate limit (GCRA): local to this replica, or shared with
/// every replica on the same cache ([`RateLimiter::shared_through`]).
#[derive(Clone)]
pub struct RateLimiter {
    /// None when the limit is off.
    limit: Option<Gcra>,
    /// `limit` in nanoseconds: (interval, tolerance).
    nanos: (i64, i64),
    start: Instant,
    states: moka::sync::Cache<Principal, Arc<PrincipalState>>,
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limit", &self.limit)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl RateLimiter {
    /// Returns a limiter of this replica alone allowing `per_second` calls
    /// sustained and `burst` at once; 0 = off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limit = Gcra::per_second(per_second, burst);
        Self {
            nanos: limit.map_or((0, 0), |l| (nanos(l.interval), nanos(l.tolerance()))),
            limit,
            start: Instant::now(),
            states: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            shared: None,
        }
    }

    /// Returns this limiter counting every call also in `cache` when that
    /// cache is shared between processes (Redis), waiting at most `timeout`
    /// for its answer.
    pub fn shared_through(mut self, cache: Arc<dyn Cache>, timeout: Duration) -> Self {
        self.shared = Some(Arc::new(Shared {
            cache,
            timeout,
            local_until: AtomicI64::new(0),
            in_outage: AtomicBool::new(false),
        }));
        self
    }

    /// Counts one more call of `principal` now, or returns how long it must
    /// wait before the next one would be allowed.
    pub async fn check(&self, principal: &Principal) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let now = nanos(self.start.elapsed());
        let state = self.states.get_with(*principal, || {
            Arc::new(PrincipalState {
                tat: AtomicI64::new(0),
                key: format!("rate:{{{principal}}}").into_boxed_str(),
            })
        });
        self.check_locally(&state.tat, now)?;
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        if now < shared.local_until.load(Ordering::Relaxed) {
            return Ok(());
        }
        match tokio::time::timeout(shared.timeout, shared.cache.throttle(&state.key, limit)).await {
            Ok(Ok(Throttle::Allowed)) => {
                shared.answered();
                Ok(())
            }
            Ok(Ok(Throttle::NotShared)) => {
                // An in-memory cache (the embedded mode): never ask it again.
                shared.local_until.store(i64::MAX, Ordering::Relaxed);
                Ok(())
            }
            Ok(Ok(Throttle::Refused(wait))) => {
                shared.answered();
                Err(wait)
            }
            Ok(Err(e)) => {
                shared.failed(now, &e);
                Ok(())
            }
            Err(_) => {
                shared.failed(now, &"no answer in time");
                Ok(())
            }
        }
    }

    /// This replica's own GCRA: one compare-and-swap on the principal's state.
    fn check_locally(&self, tat: &AtomicI64, now: i64) -> Result<(), Duration> {
        let (interval, tolerance) = self.nanos;
        let mut seen = tat.load(Ordering::Acquire);
        loop {
            let base = seen.max(now);
            if base - now + interval > tolerance {
                let wait = base - now + interval - tolerance;
                return Err(Duration::from_nanos(u64::try_from(wait).unwrap_or(0)));
            }
            match tat.compare_exchange_weak(
                seen,
                base + interval,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => seen = actual,
            }
        }
    }
}
