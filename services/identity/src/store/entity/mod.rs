//! sea-orm entities, one per table of m0002 (they match the migration,
//! which is never edited). Models never leave `store/`.

pub mod credential_attempt;
pub mod federated_identity;
pub mod machine_credential;
pub mod profile;
pub mod refresh_token;
pub mod session_family;
pub mod signing_key;
