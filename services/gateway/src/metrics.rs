//! The gateway's own series (docs/operations.md, "Metrics"): decisions by
//! allow/deny reason, the facts cache, revocation and event lag, rate-limit
//! rejections. Every handle is made once, on first use (after `ccp` installed
//! the recorder; a no-op when metrics are off), so Check records through
//! ready handles and builds no labels.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::decide::{AllowReason, Decision, DenyReason};
use crate::events::STREAMS;

/// Every allow reason, in the order of [`allow_index`].
const ALLOW: [&str; 4] = [
    "self_service",
    "own_role",
    "provider_relationship",
    "expired_user_own_submission",
];

/// Every deny reason, in the order of [`deny_index`].
const DENY: [&str; 9] = [
    "not_a_member",
    "no_relationship",
    "relationship_ended",
    "not_assigned",
    "program_not_covered",
    "no_role",
    "role_too_low",
    "visibility",
    "revoked",
];

fn allow_index(reason: AllowReason) -> usize {
    match reason {
        AllowReason::SelfService => 0,
        AllowReason::OwnRole => 1,
        AllowReason::ProviderRelationship => 2,
        AllowReason::ExpiredUserOwnSubmission => 3,
    }
}

fn deny_index(reason: DenyReason) -> usize {
    match reason {
        DenyReason::NotAMember => 0,
        DenyReason::NoRelationship => 1,
        DenyReason::RelationshipEnded => 2,
        DenyReason::NotAssigned => 3,
        DenyReason::ProgramNotCovered => 4,
        DenyReason::NoRole => 5,
        DenyReason::RoleTooLow => 6,
        DenyReason::Visibility => 7,
        DenyReason::Revoked => 8,
    }
}

/// Where a facts load was answered from.
#[derive(Debug, Clone, Copy)]
pub enum LoadSource {
    /// The shared (Redis) level.
    Shared,
    /// The owning facts service (accounts or delegation).
    Service,
}

/// The gateway's handles, made once.
pub struct GatewayMetrics {
    allow: [Counter; ALLOW.len()],
    deny: [Counter; DENY.len()],
    cache_hits: Counter,
    cache_misses: Counter,
    cache_evictions: Counter,
    load_shared: Histogram,
    load_service: Histogram,
    revocations_synced: Gauge,
    revocation_lag: Histogram,
    event_lag: [Histogram; STREAMS.len()],
    rate_limited: Counter,
}

impl std::fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayMetrics").finish_non_exhaustive()
    }
}

/// Returns the gateway's handles (made on the first call).
pub fn get() -> &'static GatewayMetrics {
    static METRICS: OnceLock<GatewayMetrics> = OnceLock::new();
    METRICS.get_or_init(GatewayMetrics::new)
}

impl GatewayMetrics {
    fn new() -> Self {
        describe();
        let decisions = "ccp_gateway_decisions_total";
        let load = "ccp_gateway_facts_load_duration_seconds";
        Self {
            allow: ALLOW
                .map(|r| metrics::counter!(decisions, "decision" => "allow", "reason" => r)),
            deny: DENY.map(|r| metrics::counter!(decisions, "decision" => "deny", "reason" => r)),
            cache_hits: metrics::counter!("ccp_gateway_facts_cache_hits_total"),
            cache_misses: metrics::counter!("ccp_gateway_facts_cache_misses_total"),
            cache_evictions: metrics::counter!("ccp_gateway_facts_cache_evictions_total"),
            load_shared: metrics::histogram!(load, "source" => "shared"),
            load_service: metrics::histogram!(load, "source" => "service"),
            revocations_synced: metrics::gauge!("ccp_gateway_revocations_synced_timestamp_seconds"),
            revocation_lag: metrics::histogram!("ccp_gateway_revocation_lag_seconds"),
            event_lag: STREAMS
                .map(|s| metrics::histogram!("ccp_gateway_event_lag_seconds", "stream" => s)),
            rate_limited: metrics::counter!("ccp_gateway_rate_limited_total"),
        }
    }

    /// Counts one decision answered (Check, BatchCheck: one per question).
    pub fn decision(&self, decision: &Decision) {
        match decision {
            Decision::Allow { reason, .. } => self.allow[allow_index(*reason)].increment(1),
            Decision::Deny(reason) => self.deny[deny_index(*reason)].increment(1),
        }
    }

    /// Counts `n` decisions denied for the same reason.
    pub fn denied(&self, reason: DenyReason, n: u64) {
        self.deny[deny_index(reason)].increment(n);
    }

    /// Counts a read answered from the in-process level.
    pub fn cache_hit(&self) {
        self.cache_hits.increment(1);
    }

    /// Counts a read that had to load.
    pub fn cache_miss(&self) {
        self.cache_misses.increment(1);
    }

    /// Counts `n` entries evicted (events; a broken stream counts 1 for all).
    pub fn evicted(&self, n: usize) {
        self.cache_evictions
            .increment(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Records how long a load took, by where it was answered from.
    pub fn loaded(&self, source: LoadSource, took: Duration) {
        match source {
            LoadSource::Shared => self.load_shared.record(took),
            LoadSource::Service => self.load_service.record(took),
        }
    }

    /// Records that a poll of identity's revocations succeeded now.
    pub fn revocations_synced(&self) {
        let now = chrono::Utc::now();
        #[allow(clippy::cast_precision_loss)] // Seconds since 1970 fit an f64's 52 bits.
        self.revocations_synced
            .set(now.timestamp_millis() as f64 / 1000.0);
    }

    /// Records the lag of an event of `stream` (its occurred_at to now), and
    /// of the revocations it carries.
    pub fn event(&self, stream: &str, occurred_at: Option<&prost_types::Timestamp>, revokes: bool) {
        let Some(occurred_at) = occurred_at else {
            return;
        };
        let Some(at) = chrono::DateTime::from_timestamp(
            occurred_at.seconds,
            u32::try_from(occurred_at.nanos).unwrap_or(0),
        ) else {
            return;
        };
        // A clock behind the publisher's counts as no lag.
        let lag = (chrono::Utc::now() - at).to_std().unwrap_or(Duration::ZERO);
        if let Some(i) = STREAMS.iter().position(|s| *s == stream) {
            self.event_lag[i].record(lag);
        }
        if revokes {
            self.revocation_lag.record(lag);
        }
    }

    /// Counts a call refused by the rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.increment(1);
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "ccp_gateway_decisions_total",
        "Authorization decisions answered, by decision (allow/deny) and reason"
    );
    describe_counter!(
        "ccp_gateway_facts_cache_hits_total",
        "Facts reads answered from the in-process cache"
    );
    describe_counter!(
        "ccp_gateway_facts_cache_misses_total",
        "Facts reads that loaded (shared level or facts service), including untrusted read-throughs"
    );
    describe_counter!(
        "ccp_gateway_facts_cache_evictions_total",
        "Facts cache entries evicted by events (and whole-cache drops)"
    );
    describe_histogram!(
        "ccp_gateway_facts_load_duration_seconds",
        Unit::Seconds,
        "Duration of a facts load on a cache miss, by where it was answered from"
    );
    describe_gauge!(
        "ccp_gateway_revocations_synced_timestamp_seconds",
        Unit::Seconds,
        "When identity's revocations were last read in full (Unix time)"
    );
    describe_histogram!(
        "ccp_gateway_revocation_lag_seconds",
        Unit::Seconds,
        "Time from a revocation event's occurrence to its application here"
    );
    describe_histogram!(
        "ccp_gateway_event_lag_seconds",
        Unit::Seconds,
        "Time from a domain event's occurrence to its consumption here, by stream"
    );
    describe_counter!(
        "ccp_gateway_rate_limited_total",
        "Calls refused by the per-principal rate limit"
    );
}
