//! Plain-Rust rules of identity: profiles, sessions, credentials. No prost,
//! no sea-orm. Filled in by the identity issue.
