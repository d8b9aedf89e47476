//! The keys of cached facts and their values as cached: the key text (every
//! input, under a format version), the shared-level encoding, the expiry
//! clamp and the revision proof (R-GW-2, R-GW-4).

use std::collections::BTreeSet;
use std::sync::Arc;

use ccp_platform::auth::Principal;
use ccp_platform::revision::Revision;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::delegation::v1 as del;
use ccp_types::{Bn9, Bn15};
use chrono::{DateTime, Utc};
use prost::Message as _;

use super::convert::{assignment_facts_from_proto, pair_facts_from_proto, role_facts_from_proto};
use crate::decide::{AssignmentFacts, PairFacts, RoleFacts};

/// The version of the encoding of cached values; part of every key.
const KEY_VERSION: &str = "gw:f1:";

/// A cache key: which facts of whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FactsKey {
    /// A principal's role facts (accounts).
    Role(Principal),
    /// All of a principal's assignment facts, as one eviction: nothing is
    /// cached under it; evicting it drops every [`FactsKey::Assignment`] of
    /// the principal (in process, those loaded before; in the shared level,
    /// the principal's generation, which their keys carry). Events naming
    /// the principal evict it.
    Assignments(Principal),
    /// A principal's assignments to one client (delegation): a bounded fact
    /// however many clients the principal's groups hold.
    Assignment(Principal, Bn9),
    /// A (provider, client) pair's facts (delegation).
    Pair(Bn9, Bn9),
    /// A business's program accounts (accounts).
    Programs(Bn9),
}

impl FactsKey {
    /// Returns the key's text, the same in both levels.
    pub fn text(&self) -> String {
        match self {
            Self::Role(p) => format!("{KEY_VERSION}role:{p}"),
            Self::Assignments(p) => format!("{KEY_VERSION}asg:{p}"),
            Self::Assignment(p, client) => format!("{KEY_VERSION}asg:{p}:{client}"),
            Self::Pair(provider, client) => format!("{KEY_VERSION}pair:{provider}:{client}"),
            Self::Programs(bn) => format!("{KEY_VERSION}prog:{bn}"),
        }
    }

    /// Returns the text of the key whose eviction covers this one (its floor,
    /// see `FactsCache::evict`): the principal's for an assignment.
    pub(super) fn floor_text(&self) -> String {
        match self {
            Self::Assignment(p, _) => Self::Assignments(*p).text(),
            _ => self.text(),
        }
    }

    /// Returns the key's text in the shared level: the principal's generation
    /// (`generation`, read from the shared level) is part of an assignment's,
    /// so that evicting the principal's generation key drops them all.
    pub(super) fn shared_text(&self, generation: &str) -> String {
        match self {
            Self::Assignment(p, client) => {
                format!("{KEY_VERSION}asg:{p}:{generation}:{client}")
            }
            _ => self.text(),
        }
    }
}

/// Facts as cached: the domain value, the proto it came from, and until when it may be used.
#[derive(Debug, Clone)]
pub enum FactsValue {
    /// Role facts.
    Role(Arc<RoleFacts>),
    /// Assignment facts.
    Assignments(Arc<AssignmentFacts>),
    /// Pair facts.
    Pair(Arc<PairFacts>),
    /// A business's program accounts.
    Programs(Arc<ProgramAccounts>),
}

/// The program accounts of one business, as accounts' business facts list them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramAccounts {
    /// The program accounts (only those of the business itself).
    pub programs: BTreeSet<Bn15>,
    /// The business's revision when they were read.
    pub revision: i64,
}

impl ProgramAccounts {
    /// Returns the program accounts of `facts` (those of its own business).
    pub fn from_proto(facts: &acc::BusinessFacts) -> Self {
        let business = Bn9::try_new(&facts.business);
        Self {
            programs: facts
                .program_accounts
                .iter()
                .filter_map(|p| Bn15::try_new(p))
                .filter(|p| business.as_ref() == Some(p.bn9()))
                .collect(),
            revision: facts.revision,
        }
    }
}

/// Returns the absolute expiry of freshly read facts: `default`, clamped to the
/// earliest end of an active relationship inside.
pub(super) fn clamp_expiry(
    value: &FactsValue,
    now: DateTime<Utc>,
    default: DateTime<Utc>,
) -> DateTime<Utc> {
    match value {
        FactsValue::Pair(pair) => crate::decide::earliest_expiry([pair.as_ref()], now)
            .map_or(default, |end| end.min(default)),
        _ => default,
    }
}

/// Returns true when cached facts provably reflect `revision` (R-GW-4).
/// A revision they cannot be compared with is not proof: the caller refetches.
pub(super) fn fresh_enough(value: &FactsValue, revision: Option<&Revision>) -> bool {
    let Some(rev) = revision else {
        return true;
    };
    match (rev.service.as_str(), value) {
        ("accounts", FactsValue::Role(facts)) => Bn9::try_new(&rev.scope)
            .and_then(|bn| facts.memberships.get(&bn))
            .is_some_and(|m| m.revision >= rev.counter),
        ("delegation", FactsValue::Assignments(facts)) => Bn9::try_new(&rev.scope)
            .and_then(|bn| facts.revisions.get(&bn))
            .is_some_and(|r| *r >= rev.counter),
        ("delegation", FactsValue::Pair(pair)) => pair.revision >= rev.counter,
        ("accounts", FactsValue::Programs(listed)) => listed.revision >= rev.counter,
        // Identity's revisions concern sessions (the revocation set), not facts;
        // accounts' revisions say nothing of delegation's facts and back.
        _ => true,
    }
}

/// Encodes a shared-level value: expiry, when its fetch started, the proto.
pub(super) fn encode(
    expires_at: DateTime<Utc>,
    fetched_at: DateTime<Utc>,
    proto: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + proto.len());
    out.extend_from_slice(&expires_at.timestamp_micros().to_be_bytes());
    out.extend_from_slice(&fetched_at.timestamp_micros().to_be_bytes());
    out.extend_from_slice(proto);
    out
}

/// Decodes a shared-level value: the facts, their expiry, when their fetch started.
pub(super) fn decode(
    key: &FactsKey,
    bytes: &[u8],
) -> Option<(FactsValue, DateTime<Utc>, DateTime<Utc>)> {
    let (head, rest) = bytes.split_at_checked(8)?;
    let (fetched, body) = rest.split_at_checked(8)?;
    let instant = |b: &[u8]| -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(i64::from_be_bytes(b.try_into().ok()?))
    };
    let expires_at = instant(head)?;
    let fetched_at = instant(fetched)?;
    let value = match key {
        FactsKey::Role(_) => FactsValue::Role(Arc::new(role_facts_from_proto(
            &acc::RoleFacts::decode(body).ok()?,
        ))),
        FactsKey::Assignment(..) => FactsValue::Assignments(Arc::new(assignment_facts_from_proto(
            &del::AssignmentFacts::decode(body).ok()?,
        ))),
        FactsKey::Assignments(_) => return None,
        FactsKey::Pair(..) => FactsValue::Pair(Arc::new(pair_facts_from_proto(
            &del::PairFacts::decode(body).ok()?,
        ))),
        FactsKey::Programs(_) => FactsValue::Programs(Arc::new(ProgramAccounts::from_proto(
            &acc::BusinessFacts::decode(body).ok()?,
        ))),
    };
    Some((value, expires_at, fetched_at))
}
