//! Revision tokens (R-GW-4): every write returns one; a call or check carrying
//! it is answered from facts at least that fresh.
//!
//! A token names the service, the scope whose counter moved (a BN9, or a
//! principal for changes that concern one person or credential only) and the
//! counter after the change. It is opaque to callers: base64url of
//! `service|scope|counter`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

/// Returns the revision scope of a (provider, client) pair, the one
/// delegation bumps for a change to the pair and the gateway records when it
/// decides on the pair's facts.
pub fn pair_scope(provider: &str, client: &str) -> String {
    format!("pair:{provider}:{client}")
}

/// A decoded revision token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision {
    /// The service that made the change: `identity`, `accounts` or `delegation`.
    pub service: String,
    /// The BN9 (or principal) whose counter moved.
    pub scope: String,
    /// The counter after the change.
    pub counter: i64,
}

impl Revision {
    /// Returns a revision.
    pub fn new(service: impl Into<String>, scope: impl Into<String>, counter: i64) -> Self {
        Self {
            service: service.into(),
            scope: scope.into(),
            counter,
        }
    }

    /// Returns the opaque token.
    pub fn encode(&self) -> String {
        let raw = format!("{}|{}|{}", self.service, self.scope, self.counter);
        format!(
            "r1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        )
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// A token that is not a revision token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a revision token")]
pub struct RevisionParseError;

impl FromStr for Revision {
    type Err = RevisionParseError;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        let body = token.strip_prefix("r1.").ok_or(RevisionParseError)?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| RevisionParseError)?;
        let raw = String::from_utf8(raw).map_err(|_| RevisionParseError)?;
        let mut parts = raw.splitn(3, '|');
        let (Some(service), Some(scope), Some(counter)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(RevisionParseError);
        };
        let counter = counter.parse().map_err(|_| RevisionParseError)?;
        if service.is_empty() || scope.is_empty() {
            return Err(RevisionParseError);
        }
        Ok(Self::new(service, scope, counter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let r = Revision::new("accounts", "123456782", 42);
        assert_eq!(r.encode().parse::<Revision>(), Ok(r));
        assert!("r1.!!".parse::<Revision>().is_err());
        assert!("42".parse::<Revision>().is_err());
    }
}
