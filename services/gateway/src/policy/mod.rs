//! The policy table (R-GW-1): every RPC of the three public services, in one
//! place, mapped to what it needs — anonymous by name, self-service (R-AZ-0),
//! or the requirements read from the request message. Several needs must all
//! be allowed. An RPC missing here is denied (the table is the only source of
//! [`Policy`] impls, and a test walks the descriptor set so that a new RPC
//! cannot be served without an entry).
//!
//! - [`table`]: the rows, one per RPC: its rule and its requirements.
//! - [`require`]: what a requirement reads from a request (the [`Need`]s).
//! - [`needs`]: what each need asks of the facts, the compound ones included
//!   (members, employee groups, relationship requests).
//! - [`words`]: each row's requirements in words; `docs/policy.md` (at the
//!   repository root) is rendered from [`POLICY`] by a test, never by hand.

pub mod needs;
pub mod require;
pub mod table;
pub mod words;

use ccp_platform::error::Error;

pub use needs::Need;
pub use require::Require;
pub use table::POLICY;
pub use words::render_markdown;

/// How an RPC is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No access token needed (the RPCs that establish authentication, and the T&C).
    Anonymous,
    /// A signed-in person acting on itself (R-AZ-0); needs a profile (a person
    /// without one is answered FAILED_PRECONDITION, R-ID-2).
    SelfService,
    /// A signed-in person without a profile yet may call it (CreateProfile only, R-ID-2).
    ProfileCreation,
    /// Every [`Need`] read from the request must be allowed by `decide`.
    Checked,
}

impl Rule {
    /// Returns the rule as the rendered table writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::SelfService => "self (R-AZ-0)",
            Self::ProfileCreation => "self, profile not required (R-ID-2)",
            Self::Checked => "checked",
        }
    }
}

/// What a write's decision depends on (R-GW-1): declared by every write's
/// row (a test walks the descriptors: every RPC whose request has a
/// `request_id` declares one, and only those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Admitted without facts (the caller acts on itself): nothing to depend on.
    NoFacts,
    /// Decided on the writing service's own facts (accounts' role and group
    /// facts of the business for an accounts write): the forwarded write
    /// carries their revisions, and the service refuses it (ABORTED,
    /// `FACTS_CHANGED`) in the transaction that changes the business when
    /// the business moved past them; the gateway then decides again.
    OwnFacts,
    /// Decided on accounts' role facts while identity or delegation writes:
    /// the write carries their revisions, but the writing service cannot
    /// lock another service's rows, so a role change that lands in accounts
    /// after the decision takes effect from the next call (as a revocation
    /// does, R-GW-4).
    AccountsFacts,
}

impl Writes {
    /// Returns the declaration as the rendered table writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoFacts => "no facts",
            Self::OwnFacts => "its own facts, checked in the write",
            Self::AccountsFacts => "accounts' facts",
        }
    }
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy)]
pub struct PolicyEntry {
    /// The fully qualified service, e.g. `ccp.accounts.v1.Accounts`.
    pub service: &'static str,
    /// The RPC's name, e.g. `GetBusiness`.
    pub method: &'static str,
    /// How it is admitted.
    pub rule: Rule,
    /// For a write, what its decision depends on; None for a read.
    pub writes: Option<Writes>,
    /// Returns what it needs, in words (rendered into `docs/policy.md`).
    pub needs: fn() -> String,
    /// The Rust type of its request message.
    pub request_type: fn() -> &'static str,
}

/// A request message whose RPC has a policy entry.
pub trait Policy: Sized + 'static {
    /// The entry's service.
    const SERVICE: &'static str;
    /// The entry's RPC name.
    const METHOD: &'static str;
    /// How it is admitted.
    const RULE: Rule;

    /// Returns the row's requirements, in the order they are read and checked.
    fn requirements() -> &'static [Require<Self>];

    /// Returns what the request needs (Checked rules), or INVALID_ARGUMENT
    /// naming the first field that does not name a resource.
    fn needs(&self) -> Result<Vec<Need>, Error> {
        let mut needs = Vec::new();
        for requirement in Self::requirements() {
            requirement
                .read(self, &mut needs)
                .map_err(|v| Error::invalid(vec![v]))?;
        }
        Ok(needs)
    }
}

/// Returns the entry of `service`/`method`, or None (then the call is denied).
pub fn entry(service: &str, method: &str) -> Option<&'static PolicyEntry> {
    POLICY
        .iter()
        .find(|e| e.service == service && e.method == method)
}

#[cfg(test)]
mod tests;
