//! sea-orm entities, one per table of m0002 and m0003 (they match the
//! migrations, which are never edited). Models never leave `store/`.

pub mod credential_attempt;
pub mod federated_identity;
pub mod machine_credential;
pub mod profile;
pub mod refresh_token;
pub mod revocation;
pub mod session_family;
pub mod signing_key;
