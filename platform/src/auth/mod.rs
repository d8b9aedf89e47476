//! Who is calling: principals, access tokens (signed by identity's Ed25519
//! keys) and internal tokens (HMAC with a key from configuration).
//!
//! Every service requires an internal token on every call: it proves the
//! call came through the gateway (or from another service or a platform
//! team), which has already authorized it. Public calls also carry the
//! caller's access token, verified again here and exposed to handlers as a
//! [`Caller`]. Expiry is measured against the configured [`Clock`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::server::NamedService;
use uuid::Uuid;

use crate::clock::Clock;

mod internal;
mod keys;
mod server;

pub use internal::{
    InternalClaims, InternalClientInterceptor, InternalTokenSource, InternalTokens,
};
pub use keys::{
    AccessTokenSigner, AccessTokenVerifier, KeySet, KeySource, StaticKeySource, TokenMinter,
    UntilExp, jwks_json,
};
pub use server::{Authenticated, ServerAuth, bearer};

/// Metadata key of the internal token.
pub const INTERNAL_TOKEN_HEADER: &str = "x-ccp-internal-token";
/// Metadata key of a revision token a read must be at least as fresh as.
pub const REVISION_HEADER: &str = "x-ccp-revision";
/// Metadata key of the facts revisions the gateway decided a forwarded call
/// on: revision tokens separated by commas (R-GW-1). A write refuses with
/// ABORTED (`FACTS_CHANGED`) when a scope it changes moved past them.
pub const DECIDED_ON_HEADER: &str = "x-ccp-decided-on";
/// Metadata key of the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Issuer of access tokens.
pub const ACCESS_TOKEN_ISSUER: &str = "ccp-identity";
/// Audience of access tokens.
pub const ACCESS_TOKEN_AUDIENCE: &str = "ccp";
/// Issuer and audience of internal tokens.
pub const INTERNAL_TOKEN_AUDIENCE: &str = "ccp-internal";
/// Verified access tokens each service keeps until their `exp` (a token with
/// its caller is well under 1 KiB: at most ~20 MiB).
pub const VERIFIED_TOKENS_CACHED: u64 = 20_000;

/// A failed verification. Every variant answers UNAUTHENTICATED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token where one is required.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The token is malformed, wrongly signed, or has the wrong algorithm, issuer or audience.
    #[error("invalid token")]
    Invalid,
    /// The header names a key that is not published.
    #[error("unknown signing key")]
    UnknownKey,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token is not valid yet.
    #[error("token not yet valid")]
    NotYetValid,
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        Status::unauthenticated(err.to_string())
    }
}

/// Who acts: a person (by profile id) or a machine credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// `person:<uuid>`: a person; the uuid is the profile id.
    Person(Uuid),
    /// `credential:<uuid>`: a machine credential.
    Credential(Uuid),
}

impl Principal {
    /// Returns the uuid.
    pub fn id(&self) -> Uuid {
        match self {
            Self::Person(id) | Self::Credential(id) => *id,
        }
    }

    /// Returns true for a person.
    pub fn is_person(&self) -> bool {
        matches!(self, Self::Person(_))
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(id) => write!(f, "person:{id}"),
            Self::Credential(id) => write!(f, "credential:{id}"),
        }
    }
}

/// A malformed principal string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be person:<uuid> or credential:<uuid>")]
pub struct PrincipalParseError;

impl FromStr for Principal {
    type Err = PrincipalParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, text) = s.split_once(':').ok_or(PrincipalParseError)?;
        let id = Uuid::parse_str(text).map_err(|_| PrincipalParseError)?;
        // Only the canonical spelling (lowercase, hyphenated): a principal is
        // used as a text key (caches, audit, idempotency) and must have one form.
        if id.hyphenated().to_string() != text {
            return Err(PrincipalParseError);
        }
        match kind {
            "person" => Ok(Self::Person(id)),
            "credential" => Ok(Self::Credential(id)),
            _ => Err(PrincipalParseError),
        }
    }
}

impl Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer, [`ACCESS_TOKEN_ISSUER`].
    pub iss: String,
    /// Audience, [`ACCESS_TOKEN_AUDIENCE`].
    pub aud: String,
    /// The principal, `person:<uuid>` or `credential:<uuid>`.
    pub sub: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Not before (seconds since the epoch).
    pub nbf: i64,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// The session's token family (people only); sign-out revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The profile id, absent until the profile exists (people only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// The credential's business BN9 (machine credentials only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bn: Option<String>,
}

/// A verified caller, put in each request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who calls.
    pub principal: Principal,
    /// The profile, once it exists (people only).
    pub profile: Option<Uuid>,
    /// The credential's business (machine credentials only).
    pub business: Option<String>,
    /// The session's token family (people only).
    pub session_family: Option<Uuid>,
    /// The token's id.
    pub token_id: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
    /// The `kid` of the key that signed it (a cache of verified tokens drops
    /// it once identity withdraws that key).
    pub key_id: String,
}

impl Caller {
    /// Returns the caller's profile id, or FAILED_PRECONDITION when the person
    /// has not created one yet (R-ID-2).
    pub fn require_profile(&self) -> Result<Uuid, crate::error::Error> {
        match (self.principal, self.profile) {
            (Principal::Person(_), Some(profile)) => Ok(profile),
            (Principal::Person(_), None) => Err(crate::error::Error::failed_precondition(
                "create your profile first",
            )),
            (Principal::Credential(_), _) => Err(crate::error::Error::permission_denied(
                "a machine credential has no profile",
            )),
        }
    }

    fn from_claims(claims: AccessClaims) -> Result<Self, AuthError> {
        let principal: Principal = claims.sub.parse().map_err(|_| AuthError::Invalid)?;
        let parse_uuid = |v: Option<String>| -> Result<Option<Uuid>, AuthError> {
            v.map(|s| Uuid::parse_str(&s).map_err(|_| AuthError::Invalid))
                .transpose()
        };
        let profile = parse_uuid(claims.pid)?;
        let session_family = parse_uuid(claims.sid)?;
        match principal {
            Principal::Person(id) => {
                if profile.is_some_and(|p| p != id) || claims.bn.is_some() {
                    return Err(AuthError::Invalid);
                }
            }
            Principal::Credential(_) => {
                if claims.bn.is_none() || profile.is_some() {
                    return Err(AuthError::Invalid);
                }
            }
        }
        Ok(Self {
            principal,
            profile,
            business: claims.bn,
            session_family,
            token_id: claims.jti,
            key_id: String::new(),
            expires_at: DateTime::from_timestamp(claims.exp, 0).ok_or(AuthError::Invalid)?,
        })
    }
}

/// Returns the verified caller of a request, or UNAUTHENTICATED.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("missing access token"))
}
