//! The facts one request decides from ([`FactsView`]): the principal's role
//! facts read once, the relationship facts only when a decision needs them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ccp_platform::auth::Principal;
use ccp_platform::revision::Revision;
use ccp_types::{Bn9, Bn15};
use chrono::{DateTime, Utc};

use super::{FactsCache, FactsError, ProgramAccounts};
use crate::decide::{
    AllowReason, AssignmentFacts, Decision, FactSet, PairFacts, Question, RoleFacts, decide,
};

/// The facts one request decides from: read once, lazily, and then shared by
/// every decision of the request (BatchCheck's single snapshot).
#[derive(Debug)]
pub struct FactsView {
    principal: Principal,
    revision: Option<Revision>,
    roles: Arc<RoleFacts>,
    /// The principal's assignments to each client in `assigned_for`: the
    /// cached facts themselves for the first client, merged from the second on.
    assignments: Arc<AssignmentFacts>,
    /// The clients whose assignment facts were read (one for a Check).
    assigned_for: Vec<Bn9>,
    pairs: BTreeMap<(Bn9, Bn9), Arc<PairFacts>>,
    programs: BTreeMap<Bn9, Arc<ProgramAccounts>>,
    /// Forwarding: a program account whose business's list is unread counts as existing.
    unread_programs_exist: bool,
    /// Forwarding a write: the oldest revision of each scope whose facts a
    /// decision read, by (service, scope) (R-GW-1); None when not recorded.
    decided: Option<BTreeMap<(&'static str, String), i64>>,
}

impl FactSet for FactsView {
    fn roles(&self) -> &RoleFacts {
        &self.roles
    }

    fn assignments(&self) -> &AssignmentFacts {
        &self.assignments
    }

    fn pair(&self, provider: &Bn9, client: &Bn9) -> Option<&PairFacts> {
        self.pairs
            .get(&(provider.clone(), client.clone()))
            .map(Arc::as_ref)
    }

    fn has_program_account(&self, program: &Bn15) -> bool {
        match self.programs.get(program.bn9()) {
            Some(listed) => listed.programs.contains(program),
            None => self.unread_programs_exist,
        }
    }
}

impl FactsView {
    /// Reads the principal's role facts (the rest is read when a decision needs it).
    pub async fn open(
        facts: &FactsCache,
        principal: Principal,
        revision: Option<Revision>,
    ) -> Result<Self, FactsError> {
        let roles = facts.role_facts(&principal, revision.as_ref()).await?;
        Ok(Self {
            principal,
            revision,
            roles,
            assignments: Arc::default(),
            assigned_for: Vec::new(),
            pairs: BTreeMap::new(),
            programs: BTreeMap::new(),
            unread_programs_exist: false,
            decided: None,
        })
    }

    /// Returns the view for admitting a forwarded call: a program account
    /// of a business whose list is unread counts as existing, so a call
    /// allowed on every program of a business (its BAM, a business-level
    /// provider) costs no read of the list. Such a caller may VIEW the
    /// business, and the service answers NOT_FOUND for a program account it
    /// does not have (R-AZ-6); the Expired-user rule, which gives no VIEW of
    /// the business, still reads the list.
    pub fn forwarding(mut self) -> Self {
        self.unread_programs_exist = true;
        self
    }

    /// Returns the view recording the revision of every fact a decision
    /// reads ([`FactsView::decided_on`]), for a forwarded write (R-GW-1).
    pub fn recording(mut self) -> Self {
        self.decided = Some(BTreeMap::new());
        self
    }

    /// Returns the oldest revision of each scope whose facts the decisions
    /// so far read: the write is refused when one of them moved before it
    /// landed. Empty when not recording.
    pub fn decided_on(&self) -> Vec<Revision> {
        self.decided
            .iter()
            .flatten()
            .map(|((service, scope), counter)| Revision::new(*service, scope.clone(), *counter))
            .collect()
    }

    /// Records that a decision read facts of `scope` at `counter`.
    fn saw(&mut self, service: &'static str, scope: &str, counter: i64) {
        if let Some(decided) = &mut self.decided {
            decided
                .entry((service, scope.to_owned()))
                .and_modify(|c| *c = (*c).min(counter))
                .or_insert(counter);
        }
    }

    /// Records that a decision read `roles`' membership of `business` (the
    /// caller's own, or a member's being changed); nothing when it has none.
    pub fn saw_membership(&mut self, roles: &RoleFacts, business: &Bn9) {
        if let Some(m) = roles.memberships.get(business) {
            self.saw("accounts", business.as_str(), m.revision);
        }
    }

    /// Returns the principal the facts are about.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Returns the revision the facts must reflect, if the call carried one.
    pub fn revision(&self) -> Option<&Revision> {
        self.revision.as_ref()
    }

    /// Returns the role facts.
    pub fn role_facts(&self) -> &Arc<RoleFacts> {
        &self.roles
    }

    /// Decides one question. Role facts alone decide most calls: an allow
    /// from them is the principal's own role, which no further fact takes
    /// away, so it is final; otherwise the relationship facts and, for a
    /// program account, the business's program accounts (unless forwarding,
    /// see [`FactsView::forwarding`]) are read and the question decided again.
    pub async fn decide(
        &mut self,
        facts: &FactsCache,
        question: &Question,
        now: DateTime<Utc>,
    ) -> Result<Decision, FactsError> {
        if self.decided.is_some() {
            let roles = Arc::clone(&self.roles);
            self.saw_membership(&roles, question.resource.bn9());
        }
        let first = decide(&self.principal, question, self, now);
        if first.is_allow() {
            return Ok(first);
        }
        let business = question.resource.bn9();
        let is_program = matches!(question.resource, crate::decide::Resource::Program(_));
        if is_program && !self.unread_programs_exist {
            // Neither read depends on the other: one wait for both.
            let (relationships, programs) = futures::future::join(
                self.fetch_relationships(facts, business),
                self.fetch_program_accounts(facts, business),
            )
            .await;
            self.keep_relationships(business, relationships?);
            self.keep_program_accounts(business, programs?);
        } else {
            self.load_relationships(facts, business).await?;
        }
        let decision = decide(&self.principal, question, self, now);
        if is_program
            && matches!(
                decision,
                Decision::Allow {
                    reason: AllowReason::ExpiredUserOwnSubmission,
                    ..
                }
            )
            && !self.programs.contains_key(business)
        {
            self.load_program_accounts(facts, business).await?;
            return Ok(decide(&self.principal, question, self, now));
        }
        Ok(decision)
    }

    /// Reads the program accounts of `business` (once per request; cached
    /// until accounts names the business in an event, and read again when the
    /// call carries a newer revision of it).
    pub async fn load_program_accounts(
        &mut self,
        facts: &FactsCache,
        business: &Bn9,
    ) -> Result<&BTreeSet<Bn15>, FactsError> {
        let listed = self.fetch_program_accounts(facts, business).await?;
        self.keep_program_accounts(business, listed);
        Ok(&self.programs.entry(business.clone()).or_default().programs)
    }

    /// Reads the program accounts of `business` unless this request has them.
    async fn fetch_program_accounts(
        &self,
        facts: &FactsCache,
        business: &Bn9,
    ) -> Result<Option<Arc<ProgramAccounts>>, FactsError> {
        if self.programs.contains_key(business) {
            return Ok(None);
        }
        Ok(Some(
            facts
                .program_accounts(business, self.revision.as_ref())
                .await?,
        ))
    }

    /// Keeps what [`Self::fetch_program_accounts`] read.
    fn keep_program_accounts(&mut self, business: &Bn9, listed: Option<Arc<ProgramAccounts>>) {
        if let Some(listed) = listed {
            if self.decided.is_some() {
                self.saw("accounts", business.as_str(), listed.revision);
            }
            self.programs.insert(business.clone(), listed);
        }
    }

    /// Reads the principal's assignment facts for `client` and the pair facts
    /// of each of the principal's businesses with `client`.
    pub async fn load_relationships(
        &mut self,
        facts: &FactsCache,
        client: &Bn9,
    ) -> Result<(), FactsError> {
        let fetched = self.fetch_relationships(facts, client).await?;
        self.keep_relationships(client, fetched);
        Ok(())
    }

    /// Reads what [`Self::load_relationships`] needs and this request does
    /// not have yet, all at once: the assignment facts and each pair's facts
    /// are independent reads, so a cold decision waits for one round trip,
    /// not one per fact.
    async fn fetch_relationships(
        &self,
        facts: &FactsCache,
        client: &Bn9,
    ) -> Result<Relationships, FactsError> {
        let providers: Vec<Bn9> = self
            .roles
            .memberships
            .iter()
            .filter(|(bn, m)| *bn != client && m.holds_a_role())
            .map(|(bn, _)| bn.clone())
            .collect();
        if providers.is_empty() {
            return Ok(Relationships::default());
        }
        let revision = self.revision.as_ref();
        let assignments = async {
            if self.assigned_for.contains(client) {
                return Ok(None);
            }
            facts
                .assignment_facts(&self.principal, client, revision)
                .await
                .map(Some)
        };
        let pairs = futures::future::try_join_all(
            providers
                .iter()
                .filter(|provider| {
                    !self
                        .pairs
                        .contains_key(&((*provider).clone(), client.clone()))
                })
                .map(|provider| async move {
                    let pair = facts.pair_facts(provider, client, revision).await?;
                    Ok::<_, FactsError>(((provider.clone(), client.clone()), pair))
                }),
        );
        let (assignments, pairs) = futures::future::try_join(assignments, pairs).await?;
        Ok(Relationships {
            providers,
            assignments,
            pairs,
        })
    }

    /// Keeps what [`Self::fetch_relationships`] read, and records the
    /// revisions a decision reads from them.
    fn keep_relationships(&mut self, client: &Bn9, fetched: Relationships) {
        let Relationships {
            providers,
            assignments,
            pairs,
        } = fetched;
        if let Some(assignments) = assignments
            && !self.assigned_for.contains(client)
        {
            if self.assigned_for.is_empty() {
                self.assignments = assignments;
            } else {
                // Only this client's assignments: the merged list stays as small as
                // the clients this request asked about.
                let merged = Arc::make_mut(&mut self.assignments);
                merged
                    .assignments
                    .extend(assignments.assignments.iter().cloned());
                for (provider, revision) in &assignments.revisions {
                    merged
                        .revisions
                        .entry(provider.clone())
                        .and_modify(|r| *r = (*r).min(*revision))
                        .or_insert(*revision);
                }
            }
            self.assigned_for.push(client.clone());
        }
        self.pairs.extend(pairs);
        if self.decided.is_none() {
            return;
        }
        let roles = Arc::clone(&self.roles);
        for provider in &providers {
            self.saw_membership(&roles, provider);
        }
        for provider in providers {
            let key = (provider, client.clone());
            let assigned = self.assignments.revisions.get(&key.0).copied();
            if let Some(counter) = assigned {
                self.saw("delegation", key.0.as_str(), counter);
            }
            if let Some(pair) = self.pairs.get(&key).map(|p| p.revision) {
                let scope = ccp_platform::revision::pair_scope(key.0.as_str(), key.1.as_str());
                self.saw("delegation", &scope, pair);
            }
        }
    }
}

/// The relationship facts one decision about a client read (see
/// [`FactsView::fetch_relationships`]): none when the principal has no
/// business that could act for it.
#[derive(Debug, Default)]
struct Relationships {
    providers: Vec<Bn9>,
    /// The principal's assignments to the client, unless this request has them.
    assignments: Option<Arc<AssignmentFacts>>,
    pairs: Vec<((Bn9, Bn9), Arc<PairFacts>)>,
}
