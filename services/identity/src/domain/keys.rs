//! Signing keys of access tokens (R-ID-3): one active, the retired ones
//! published until every token they signed has expired.

use chrono::{DateTime, Utc};

/// The state of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs new tokens.
    Active,
    /// Signs nothing; still published until its tokens expire.
    Retired,
}

impl KeyState {
    /// Returns the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Retired => "RETIRED",
        }
    }
}

/// A stored key state that is neither `ACTIVE` nor `RETIRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an unknown signing key state")]
pub struct UnknownKeyState;

impl std::str::FromStr for KeyState {
    type Err = UnknownKeyState;

    fn from_str(s: &str) -> Result<Self, UnknownKeyState> {
        match s {
            "ACTIVE" => Ok(Self::Active),
            "RETIRED" => Ok(Self::Retired),
            _ => Err(UnknownKeyState),
        }
    }
}

/// The public half of a signing key and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Key id.
    pub kid: String,
    /// Raw Ed25519 public key, base64url without padding.
    pub public_key: String,
    /// Active or retired.
    pub state: KeyState,
    /// When it became active.
    pub create_time: DateTime<Utc>,
    /// Until when a retired key is published.
    pub publish_until: Option<DateTime<Utc>>,
}

impl SigningKey {
    /// Returns true for the active key.
    pub fn is_active(&self) -> bool {
        self.state == KeyState::Active
    }
}
