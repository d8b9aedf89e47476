//! Shared plumbing for every CCP service: what each service needs and nothing domain-specific —
//! the fact cache and the event bus, each with a Redis and an in-memory implementation.
//! It must never hold domain rules: services decide, this crate only carries.

pub mod bus;
pub mod cache;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
