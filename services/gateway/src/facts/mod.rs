//! The facts cache (R-GW-2): role facts per principal, assignment facts per
//! (principal, client), pair facts per (provider, client) and program accounts
//! per business — facts, never decisions —
//! in two levels: in-process (moka) and the shared [`Cache`] (Redis in the
//! distributed mode, memory in the embedded one).
//!
//! - Keys hold every input (`role:<principal>`, `asg:<principal>:<client>`,
//!   `pair:<provider>:<client>`, `prog:<bn9>`, under a format version). In the
//!   shared level an assignment's key also carries its principal's generation
//!   (`asg:<principal>:<generation>:<client>`, the generation kept under
//!   `asg:<principal>`), so one delete evicts every client's.
//! - Expiry is absolute: an entry lives until `read time + ttl`, clamped to
//!   the earliest end of a relationship it holds, measured by the configured
//!   clock and checked on every hit (reads never extend it).
//! - Concurrent misses of one key make one lookup (moka's `try_get_with`).
//! - The event consumer ([`crate::events`]) evicts exactly the named entries
//!   in both levels. A fetch that overlaps an eviction is answered but not
//!   kept, so an eviction can never be undone by a slow fetch; and a shared
//!   value fetched (by any replica) before an eviction seen here is refused,
//!   so a slower replica cannot bring an old fact back through Redis.
//! - While the event subscription is broken or behind, nothing cached is
//!   trusted: every read goes to the facts services (and is not kept).
//! - A request carrying a revision token (R-GW-4) uses a cached entry only
//!   when the entry provably reflects that revision; otherwise it refetches.
//! - Facts that cannot be had and are not cached fail closed: UNAVAILABLE (R-GW-5).

mod cache;
mod convert;
mod keys;
mod loaders;
mod view;

use ccp_platform::auth::InternalClientInterceptor;
use ccp_platform::balance::BalancedChannel;
use tonic::service::interceptor::InterceptedService;

pub use cache::{CLOCK_SKEW_MARGIN, FactsCache, FactsCacheSettings, FactsStats, Trust};
pub use convert::{
    assignment_facts_from_proto, pair_facts_from_proto, relationship_from_proto,
    role_facts_from_proto, role_from_proto,
};
pub use keys::{FactsKey, FactsValue, ProgramAccounts};
pub use view::FactsView;

/// A facts client: a channel with the gateway's internal token and trace context.
pub type FactsChannel = InterceptedService<BalancedChannel, InternalClientInterceptor>;

/// Why facts could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FactsError {
    /// The facts service could not be reached or failed, and nothing trusted is cached.
    #[error("facts unavailable: {0}")]
    Unavailable(String),
}

impl From<FactsError> for tonic::Status {
    fn from(err: FactsError) -> Self {
        tracing::warn!(error = %err, "failing closed");
        tonic::Status::unavailable("authorization facts are unavailable; try again")
    }
}
