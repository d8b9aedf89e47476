//! End-to-end tests of CCP: the guide's stories across every service and the
//! gateway, in the embedded mode and distributed over PostgreSQL and Redis.
//!
//! The stories arrive with the end-to-end issue; until then this crate holds
//! only this description.
