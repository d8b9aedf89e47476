//! The revocations in force, kept in step with identity (R-GW-4): identity
//! owns them durably and serves them in commit order after a cursor
//! (`IdentityFacts.ListRevocations`); the event bus only speeds them up.
//!
//! - At start the gateway loads every revocation in force before it accepts
//!   any token (health NOT_SERVING until then).
//! - It then polls identity from its cursor: every `revocation_poll_ms`
//!   while the bus cannot vouch for the revocations, every
//!   `revocation_poll_live_ms` while it can. The bus vouches only while
//!   identity's stream is live *and* a poll has succeeded since the stream
//!   (re)connected: events published while it was away (Redis restarted,
//!   flushed, trimmed, a lost connection) are then known from identity.
//! - A token is accepted while the bus vouches or the last successful poll
//!   began at most `revocation_max_staleness_ms` ago; otherwise the call
//!   first confirms with identity (one poll shared by the calls waiting) and
//!   is answered UNAVAILABLE when identity cannot be asked — a token is never
//!   trusted unconfirmed.
//! - A call carrying an identity revision first catches up with identity
//!   (one poll shared by the calls waiting), so the token a sign-out or
//!   credential revocation revoked is never answered after its revision.
//!
//! It also refreshes identity's signing keys every half key age, so a key
//! identity withdraws stops verifying within `key_max_age_ms`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::Retryable as _;
use ccp_platform::auth::{InternalClientInterceptor, Principal};
use ccp_platform::balance::BalancedChannel;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_facts_client::IdentityFactsClient;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;

use crate::tokens::Authenticator;

/// Most pages one poll reads (a bound on every loop; 10 million revocations).
const MAX_PAGES_PER_POLL: usize = 10_000;

/// Where the revocations in force come from.
#[tonic::async_trait]
pub trait RevocationSource: Send + Sync + 'static {
    /// Returns the revocations after `after`, one page.
    async fn list(&self, after: i64) -> Result<idn::ListRevocationsResponse, Status>;
}

/// Identity's internal facts API.
#[derive(Clone)]
pub struct RemoteRevocations {
    client: IdentityFactsClient<InterceptedService<BalancedChannel, InternalClientInterceptor>>,
}

impl RemoteRevocations {
    /// Returns a source calling identity at `channel` with internal tokens.
    pub fn new(channel: BalancedChannel, interceptor: InternalClientInterceptor) -> Self {
        Self {
            client: IdentityFactsClient::with_interceptor(channel, interceptor)
                .max_decoding_message_size(64 * 1024 * 1024),
        }
    }
}

#[tonic::async_trait]
impl RevocationSource for RemoteRevocations {
    async fn list(&self, after: i64) -> Result<idn::ListRevocationsResponse, Status> {
        let mut client = self.client.clone();
        Ok(client
            .list_revocations(idn::ListRevocationsRequest {
                after,
                page_size: 5_000,
            })
            .await?
            .into_inner())
    }
}

/// No revocations ever (gateways in tests whose identity is a double
/// without the facts API; revocations then come from the bus only).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocations;

#[tonic::async_trait]
impl RevocationSource for NoRevocations {
    async fn list(&self, after: i64) -> Result<idn::ListRevocationsResponse, Status> {
        Ok(idn::ListRevocationsResponse {
            revocations: Vec::new(),
            cursor: after,
            more: false,
        })
    }
}

/// How the revocations are kept in step.
#[derive(Debug, Clone, Copy)]
pub struct RevocationTiming {
    /// Poll interval while the bus cannot vouch.
    pub poll: Duration,
    /// Poll interval while it can.
    pub poll_live: Duration,
    /// Longest time since the last successful poll began during which
    /// tokens are accepted without the bus.
    pub max_staleness: Duration,
    /// How long signing keys are trusted (refreshed every half of it).
    pub key_max_age: Duration,
}

impl Default for RevocationTiming {
    /// The gateway's default settings.
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(100),
            poll_live: Duration::from_millis(200),
            max_staleness: Duration::from_millis(250),
            key_max_age: Duration::from_secs(60),
        }
    }
}

const NEVER: u64 = u64::MAX;

struct Inner {
    source: Arc<dyn RevocationSource>,
    tokens: Authenticator,
    timing: RevocationTiming,
    epoch: Instant,
    /// Identity's cursor; the lock makes polls one at a time.
    cursor: tokio::sync::Mutex<i64>,
    /// When (µs since `epoch`, at least 1) the last successful poll began; 0 if none.
    last_ok: AtomicU64,
    /// When identity's stream last became live; NEVER while it is not.
    live_since: AtomicU64,
    loaded: AtomicBool,
}

/// The revocations in force and whether they can be vouched for now.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("loaded", &self.is_loaded())
            .field("timing", &self.inner.timing)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// Returns revocations read from `source` into `tokens`.
    pub fn new(
        source: Arc<dyn RevocationSource>,
        tokens: Authenticator,
        timing: RevocationTiming,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                tokens,
                timing,
                epoch: Instant::now(),
                cursor: tokio::sync::Mutex::new(0),
                last_ok: AtomicU64::new(0),
                live_since: AtomicU64::new(NEVER),
                loaded: AtomicBool::new(false),
            }),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.inner.epoch).as_micros())
            .unwrap_or(NEVER - 1)
    }

    /// Returns true once every revocation in force at start has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    /// Returns true when a token may be accepted now: the revocations are
    /// loaded, and the bus vouches for them or a poll succeeded recently.
    pub fn can_vouch(&self) -> bool {
        if !self.is_loaded() {
            return false;
        }
        let last_ok = self.inner.last_ok.load(Ordering::Acquire);
        if last_ok == 0 {
            return false;
        }
        let live_since = self.inner.live_since.load(Ordering::Acquire);
        if live_since != NEVER && last_ok >= live_since {
            return true;
        }
        let now = self.micros(Instant::now());
        let staleness = u64::try_from(self.inner.timing.max_staleness.as_micros()).unwrap_or(0);
        now.saturating_sub(last_ok) <= staleness
    }

    /// Readiness: loaded, and the bus vouches or identity answered a poll
    /// within the last second (a replica that can confirm no token is
    /// taken out of the load balancer's set; it would answer UNAVAILABLE).
    pub fn is_ready(&self) -> bool {
        if !self.is_loaded() {
            return false;
        }
        if self.bus_vouches() {
            return true;
        }
        let last_ok = self.inner.last_ok.load(Ordering::Acquire);
        last_ok != 0 && self.micros(Instant::now()).saturating_sub(last_ok) <= 1_000_000
    }

    /// Records that identity's stream is live (caught up) from now on; it
    /// vouches once a poll begun after this succeeds.
    pub fn bus_live(&self) {
        let now = self.micros(Instant::now());
        let _ =
            self.inner
                .live_since
                .compare_exchange(NEVER, now, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Records that identity's stream is broken or behind.
    pub fn bus_down(&self) {
        self.inner.live_since.store(NEVER, Ordering::Release);
    }

    fn bus_vouches(&self) -> bool {
        let live_since = self.inner.live_since.load(Ordering::Acquire);
        live_since != NEVER && self.inner.last_ok.load(Ordering::Acquire) >= live_since
    }

    /// Applies one revocation (from identity or the bus).
    fn apply(&self, revocation: &idn::Revocation) {
        use idn::revocation::Subject;
        match &revocation.subject {
            Some(Subject::TokenFamily(family)) => match family.parse() {
                Ok(id) => self.inner.tokens.revoke_family(id),
                Err(_) => tracing::warn!(%family, "identity names a malformed token family"),
            },
            Some(Subject::Principal(p)) => match p.parse::<Principal>() {
                Ok(p) => self.inner.tokens.revoke_principal(p),
                Err(_) => tracing::warn!(principal = %p, "identity names a malformed principal"),
            },
            None => {}
        }
    }

    /// Reads every revocation after the cursor (the caller holds the lock).
    async fn poll_locked(&self, cursor: &mut i64) -> Result<(), Status> {
        let began = self.micros(Instant::now()).max(1);
        for _ in 0..MAX_PAGES_PER_POLL {
            let page = self.inner.source.list(*cursor).await?;
            for revocation in &page.revocations {
                self.apply(revocation);
            }
            *cursor = (*cursor).max(page.cursor);
            if !page.more {
                self.inner.last_ok.fetch_max(began, Ordering::AcqRel);
                crate::metrics::get().revocations_synced();
                return Ok(());
            }
        }
        Err(Status::unavailable(
            "too many revocations to read in one poll",
        ))
    }

    /// Polls identity now.
    pub async fn poll(&self) -> Result<(), Status> {
        let mut cursor = self.inner.cursor.lock().await;
        self.poll_locked(&mut cursor).await
    }

    /// Makes sure every revocation identity committed before `since` is
    /// applied: done when a poll begun after `since` has succeeded, else
    /// polls now (calls waiting together share one poll). UNAVAILABLE when
    /// identity cannot be asked.
    pub async fn catch_up(&self, since: Instant) -> Result<(), Status> {
        let since = self.micros(since);
        let mut cursor = self.inner.cursor.lock().await;
        let last_ok = self.inner.last_ok.load(Ordering::Acquire);
        if last_ok != 0 && last_ok >= since {
            return Ok(());
        }
        self.poll_locked(&mut cursor).await.map_err(|err| {
            tracing::warn!(error = %err, "cannot confirm revocations with identity");
            Status::unavailable("cannot confirm revocations with identity; try again")
        })
    }

    /// Returns true when `principal` (a machine credential) is revoked.
    pub fn is_revoked(&self, principal: &Principal) -> bool {
        self.inner.tokens.is_principal_revoked(principal)
    }

    /// Keeps the revocations in step until the task is dropped: loads them
    /// (retrying with backoff), reports ready, then polls; refreshes the
    /// signing keys every half key age.
    pub async fn run(self) {
        if !self.is_loaded() {
            let policy =
                ccp_platform::retry::backoff(Duration::from_millis(50), Duration::from_secs(1));
            let loaded = (|| self.poll())
                .retry(policy)
                .notify(|err, _| {
                    tracing::warn!(error = %err, "cannot load revocations from identity yet; tokens refused");
                })
                .await;
            if loaded.is_ok() {
                self.inner.loaded.store(true, Ordering::Release);
                tracing::info!("revocations in force loaded from identity");
            }
        }
        futures::future::join(
            self.clone().poll_forever(),
            self.clone().refresh_keys_forever(),
        )
        .await;
    }

    async fn poll_forever(self) {
        let mut failing = false;
        loop {
            let pause = if self.bus_vouches() {
                self.inner.timing.poll_live
            } else {
                self.inner.timing.poll
            };
            tokio::time::sleep(pause).await;
            match self.poll().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("revocations confirmed with identity again");
                }
                Ok(()) => {}
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!(error = %err, "cannot poll revocations from identity");
                }
                Err(_) => {}
            }
        }
    }

    /// Fetches the signing keys every half key age: a cached token signed
    /// with a key identity withdrew is refused on its next use.
    async fn refresh_keys_forever(self) {
        let period = self.inner.timing.key_max_age / 2;
        // The first fetch happens on the first token (an unknown `kid`).
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(err) = self.inner.tokens.verifier().refresh().await {
                tracing::warn!(error = %err, "signing key refresh failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;

    use ccp_platform::auth::{AccessTokenVerifier, AuthError, KeySet, TokenMinter};
    use ccp_platform::clock::Clock;
    use uuid::Uuid;

    use super::*;

    /// Identity's revocations in memory; `down` makes it unreachable.
    #[derive(Default)]
    struct Identity {
        revocations: Mutex<Vec<idn::Revocation>>,
        down: AtomicBool,
    }

    #[tonic::async_trait]
    impl RevocationSource for Arc<Identity> {
        async fn list(&self, after: i64) -> Result<idn::ListRevocationsResponse, Status> {
            if self.down.load(Ordering::SeqCst) {
                return Err(Status::unavailable("identity is down"));
            }
            let found: Vec<_> = self
                .revocations
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.sequence > after)
                .cloned()
                .collect();
            let cursor = found.iter().map(|r| r.sequence).fold(after, i64::max);
            Ok(idn::ListRevocationsResponse {
                revocations: found,
                cursor,
                more: false,
            })
        }
    }

    fn setup() -> (Arc<Identity>, Revocations, Authenticator, TokenMinter) {
        let clock = Clock::system();
        let minter = TokenMinter::new(clock.clone()).unwrap();
        let verifier = AccessTokenVerifier::new(clock.clone());
        verifier.set_keys(KeySet::from_jwks_json(&minter.signer().jwks_json()).unwrap());
        let tokens = Authenticator::new(Arc::new(verifier), clock, 100);
        let identity = Arc::new(Identity::default());
        let timing = RevocationTiming {
            max_staleness: Duration::from_millis(50),
            ..RevocationTiming::default()
        };
        let revocations = Revocations::new(Arc::new(identity.clone()), tokens.clone(), timing);
        (identity, revocations, tokens, minter)
    }

    fn family_revoked(sequence: i64, family: Uuid) -> idn::Revocation {
        idn::Revocation {
            sequence,
            subject: Some(idn::revocation::Subject::TokenFamily(family.to_string())),
            expire_time: None,
        }
    }

    #[tokio::test]
    async fn r_gw_4_nothing_is_vouched_for_before_the_load_and_a_poll_applies_revocations() {
        let (identity, revocations, tokens, minter) = setup();
        assert!(!revocations.can_vouch(), "nothing before the load");
        let claims = minter.claims(Principal::Person(Uuid::new_v4()));
        let family: Uuid = claims.sid.as_deref().unwrap().parse().unwrap();
        let token = minter.sign(&claims).unwrap();
        identity
            .revocations
            .lock()
            .unwrap()
            .push(family_revoked(1, family));
        let credential = Principal::Credential(Uuid::new_v4());
        identity.revocations.lock().unwrap().push(idn::Revocation {
            sequence: 2,
            subject: Some(idn::revocation::Subject::Principal(credential.to_string())),
            expire_time: None,
        });
        revocations.poll().await.unwrap();
        assert_eq!(
            tokens.authenticate(&token).await.unwrap_err(),
            AuthError::Invalid
        );
        assert!(revocations.is_revoked(&credential));
        assert!(!revocations.is_revoked(&Principal::Credential(Uuid::new_v4())));
    }

    #[tokio::test]
    async fn r_gw_4_without_the_bus_a_stale_poll_is_not_vouched_for_and_catch_up_needs_identity() {
        let (identity, revocations, _tokens, _minter) = setup();
        revocations.poll().await.unwrap();
        revocations.inner.loaded.store(true, Ordering::Release);
        assert!(revocations.can_vouch(), "a poll just now");
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(!revocations.can_vouch(), "older than the staleness bound");
        identity.down.store(true, Ordering::SeqCst);
        let refused = revocations.catch_up(Instant::now()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        identity.down.store(false, Ordering::SeqCst);
        revocations.catch_up(Instant::now()).await.unwrap();
        assert!(revocations.can_vouch());
    }

    #[tokio::test]
    async fn r_gw_4_the_bus_vouches_only_after_a_poll_begun_after_it_reconnected() {
        let (_identity, revocations, _tokens, _minter) = setup();
        revocations.poll().await.unwrap();
        revocations.inner.loaded.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(5)).await;
        revocations.bus_live();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(
            !revocations.can_vouch(),
            "events may have been lost before the reconnection"
        );
        revocations.poll().await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(revocations.can_vouch(), "the bus vouches from then on");
        revocations.bus_down();
        assert!(!revocations.can_vouch());
    }
}
