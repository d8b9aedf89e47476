#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The gateway's API tests: the facts cache, the decision API and forwarding,
//! against in-test doubles of identity, accounts and delegation (built in
//! parallel; swapped for the real services after the merge).

mod decisions;
mod facts_cache;
mod forwarding;
mod helpers;
mod revocation;
mod tokens;
