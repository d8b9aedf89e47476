//! The facts one request decides from ([`FactsView`]): the principal's role
//! facts read once, the relationship facts only when a decision needs them.

use std::collections::BTreeMap;
use std::sync::Arc;

use ccp_platform::auth::Principal;
use ccp_platform::revision::Revision;
use ccp_types::Bn9;
use chrono::{DateTime, Utc};

use super::{FactsCache, FactsError};
use crate::decide::{AssignmentFacts, Decision, FactSet, PairFacts, Question, RoleFacts, decide};

/// The facts one request decides from: read once, lazily, and then shared by
/// every decision of the request (BatchCheck's single snapshot).
#[derive(Debug)]
pub struct FactsView {
    principal: Principal,
    revision: Option<Revision>,
    roles: Arc<RoleFacts>,
    assignments: Option<Arc<AssignmentFacts>>,
    pairs: BTreeMap<(Bn9, Bn9), Arc<PairFacts>>,
}

static NO_ASSIGNMENTS: std::sync::LazyLock<AssignmentFacts> =
    std::sync::LazyLock::new(AssignmentFacts::default);

impl FactSet for FactsView {
    fn roles(&self) -> &RoleFacts {
        &self.roles
    }

    fn assignments(&self) -> &AssignmentFacts {
        self.assignments.as_deref().unwrap_or(&NO_ASSIGNMENTS)
    }

    fn pair(&self, provider: &Bn9, client: &Bn9) -> Option<&PairFacts> {
        self.pairs
            .get(&(provider.clone(), client.clone()))
            .map(Arc::as_ref)
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
            assignments: None,
            pairs: BTreeMap::new(),
        })
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

    /// Decides one question. Role facts alone decide most calls; since more
    /// facts never turn an allow into a deny, an allow from them is final,
    /// and the relationship facts are read only when it is not.
    pub async fn decide(
        &mut self,
        facts: &FactsCache,
        question: &Question,
        now: DateTime<Utc>,
    ) -> Result<Decision, FactsError> {
        let first = decide(&self.principal, question, self, now);
        if first.is_allow() {
            return Ok(first);
        }
        self.load_relationships(facts, question.resource.bn9())
            .await?;
        Ok(decide(&self.principal, question, self, now))
    }

    /// Reads the assignment facts and the pair facts of each of the
    /// principal's businesses with `client`.
    pub async fn load_relationships(
        &mut self,
        facts: &FactsCache,
        client: &Bn9,
    ) -> Result<(), FactsError> {
        let providers: Vec<Bn9> = self
            .roles
            .memberships
            .iter()
            .filter(|(bn, m)| *bn != client && m.holds_a_role())
            .map(|(bn, _)| bn.clone())
            .collect();
        if providers.is_empty() {
            return Ok(());
        }
        if self.assignments.is_none() {
            self.assignments = Some(
                facts
                    .assignment_facts(&self.principal, self.revision.as_ref())
                    .await?,
            );
        }
        for provider in providers {
            let key = (provider, client.clone());
            if !self.pairs.contains_key(&key) {
                let pair = facts
                    .pair_facts(&key.0, &key.1, self.revision.as_ref())
                    .await?;
                self.pairs.insert(key, pair);
            }
        }
        Ok(())
    }
}
