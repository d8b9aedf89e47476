//! Access tokens at the gateway: verified locally with identity's published
//! keys ([`AccessTokenVerifier`], refreshed on an unknown `kid` at a bounded
//! rate), kept verified until their `exp` in a bounded cache keyed by the token
//! (a lock-free read on a hit), and refused at once when identity's events
//! revoke their session family or their credential.

use std::sync::Arc;
use std::time::Duration;

use ccp_platform::auth::{AccessTokenVerifier, AuthError, Caller, Principal, UntilExp};
use ccp_platform::clock::Clock;
use uuid::Uuid;

/// How long a revocation is remembered: longer than any access token lives
/// (at most 15 minutes, R-ID-3), so every token it concerns has expired by then.
pub const REVOCATION_MEMORY: Duration = Duration::from_secs(20 * 60);

/// Authenticates bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<AccessTokenVerifier>,
    verified: moka::sync::Cache<Arc<str>, Arc<Caller>>,
    revoked_families: moka::sync::Cache<Uuid, ()>,
    revoked_principals: moka::sync::Cache<Principal, ()>,
    clock: Clock,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("verified", &self.verified.entry_count())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Returns an authenticator keeping at most `max_tokens` verified tokens.
    pub fn new(verifier: Arc<AccessTokenVerifier>, clock: Clock, max_tokens: u64) -> Self {
        Self {
            verified: moka::sync::Cache::builder()
                .max_capacity(max_tokens)
                .expire_after(UntilExp {
                    clock: clock.clone(),
                })
                .build(),
            verifier,
            revoked_families: Self::revocations(),
            revoked_principals: Self::revocations(),
            clock,
        }
    }

    /// Returns the verifier (the event consumer refreshes its keys on rotation).
    pub fn verifier(&self) -> &Arc<AccessTokenVerifier> {
        &self.verifier
    }

    /// Returns the verified caller of `token`, or why it is refused.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Caller>, AuthError> {
        if let Some(caller) = self.verified.get(token) {
            if caller.expires_at <= self.clock.now() {
                self.verified.invalidate(token);
                return Err(AuthError::Expired);
            }
            if self.verifier.has_key(&caller.key_id) {
                return self.not_revoked(caller);
            }
            // Its key was withdrawn: verify again (refused unless it is back).
            self.verified.invalidate(token);
        }
        let caller = Arc::new(self.verifier.verify(token).await?);
        self.verified.insert(Arc::from(token), caller.clone());
        self.not_revoked(caller)
    }

    fn revocations<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> moka::sync::Cache<K, ()> {
        moka::sync::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(REVOCATION_MEMORY)
            .build()
    }

    fn not_revoked(&self, caller: Arc<Caller>) -> Result<Arc<Caller>, AuthError> {
        let family_revoked = caller
            .session_family
            .is_some_and(|f| self.revoked_families.contains_key(&f));
        if family_revoked || self.revoked_principals.contains_key(&caller.principal) {
            return Err(AuthError::Invalid);
        }
        Ok(caller)
    }

    /// Returns true when `caller`'s session family or credential is revoked.
    pub fn is_revoked(&self, caller: &Caller) -> bool {
        self.not_revoked(Arc::new(caller.clone())).is_err()
    }

    /// Returns true when every token of `principal` is refused (a revoked credential).
    pub fn is_principal_revoked(&self, principal: &Principal) -> bool {
        self.revoked_principals.contains_key(principal)
    }

    /// Refuses every token of a session family from now on (sign-out, reuse).
    pub fn revoke_family(&self, family: Uuid) {
        self.revoked_families.insert(family, ());
    }

    /// Refuses every token of a principal from now on (a revoked credential).
    pub fn revoke_principal(&self, principal: Principal) {
        self.revoked_principals.insert(principal, ());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ccp_platform::auth::{KeySet, TokenMinter};
    use chrono::TimeZone as _;

    use super::*;

    fn setup() -> (Authenticator, TokenMinter, Clock) {
        let clock = Clock::settable(chrono::Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap());
        let minter = TokenMinter::new(clock.clone()).unwrap();
        let verifier = AccessTokenVerifier::new(clock.clone());
        verifier.set_keys(KeySet::from_jwks_json(&minter.signer().jwks_json()).unwrap());
        (
            Authenticator::new(Arc::new(verifier), clock.clone(), 100),
            minter,
            clock,
        )
    }

    #[test]
    fn r_id_3_a_verified_token_is_kept_until_its_exp_and_no_longer() {
        let (auth, minter, clock) = setup();
        let token = minter.person(Uuid::new_v4()).unwrap();
        futures::executor::block_on(async {
            assert!(auth.authenticate(&token).await.is_ok());
            assert!(auth.authenticate(&token).await.is_ok());
            clock.advance(chrono::Duration::seconds(900));
            assert_eq!(
                auth.authenticate(&token).await.unwrap_err(),
                AuthError::Expired
            );
        });
    }

    #[test]
    fn r_id_5_a_revoked_family_or_credential_is_refused_even_when_cached() {
        let (auth, minter, _clock) = setup();
        let claims = minter.claims(Principal::Person(Uuid::new_v4()));
        let family: Uuid = claims.sid.as_deref().unwrap().parse().unwrap();
        let token = minter.sign(&claims).unwrap();
        let cred = Uuid::new_v4();
        let machine = minter.credential(cred, "123456782").unwrap();
        futures::executor::block_on(async {
            assert!(auth.authenticate(&token).await.is_ok());
            assert!(auth.authenticate(&machine).await.is_ok());
            auth.revoke_family(family);
            auth.revoke_principal(Principal::Credential(cred));
            assert!(auth.authenticate(&token).await.is_err());
            assert!(auth.authenticate(&machine).await.is_err());
        });
    }

    #[test]
    fn r_gw_4_a_cached_token_whose_key_identity_withdrew_is_refused() {
        let (auth, minter, clock) = setup();
        let token = minter.person(Uuid::new_v4()).unwrap();
        let successor = TokenMinter::new(clock).unwrap();
        futures::executor::block_on(async {
            assert!(auth.authenticate(&token).await.is_ok());
            auth.verifier()
                .set_keys(KeySet::from_jwks_json(&successor.signer().jwks_json()).unwrap());
            assert_eq!(
                auth.authenticate(&token).await.unwrap_err(),
                AuthError::UnknownKey
            );
        });
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let (auth, minter, _clock) = setup();
        let token = minter.person(Uuid::new_v4()).unwrap();
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        futures::executor::block_on(async {
            assert!(auth.authenticate(&tampered).await.is_err());
            assert!(auth.authenticate("not a token").await.is_err());
        });
    }
}
