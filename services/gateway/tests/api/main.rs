#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The gateway's API tests against in-test doubles of identity, accounts and
//! delegation, for what the real services cannot produce on demand: call
//! counts (single-flight, key-refresh rate), slow facts answers, a fetch
//! racing an eviction, events delivered at a chosen moment, key rotation,
//! forwarded metadata, rate and size limits (the rate limit shared by two
//! replicas on one Redis), paging over many clients.
//! Everything the real services can produce is tested on them in
//! `tests/real` (the authorization matrix, revocation, faults, token attacks).

mod binary;
mod decisions;
mod facts_cache;
mod forwarding;
mod helpers;
mod rate_limit;
mod tokens;
