//! The decision API `ccp.gateway.v1.Authorization` (R-GW-3): Check,
//! BatchCheck (one snapshot of facts), ListAccessible (paged, never cut
//! silently) and Explain (internal callers only; bypasses the caches).
//!
//! Internal callers (a valid internal token) may ask about any principal; a
//! person or broker system (bearer token) asks about itself. Both get deny
//! reasons (R-AZ-6).

use ccp_platform::auth::Principal;
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::paging::PageScope;
use ccp_platform::revision::Revision;
use ccp_proto::gateway::v1 as gw;
use ccp_proto::gateway::v1::authorization_server::Authorization;
use std::time::Instant;

use tonic::{Request, Response, Status};

use ccp_types::{Bn9, Bn15};

use crate::decide::{Action, Decision, DenyReason, Facts, Question, Resource, Scope, decide};
use crate::facts::{
    FactsView, assignment_facts_from_proto, pair_facts_from_proto, relationship_from_proto,
    role_facts_from_proto,
};
use crate::gate::{Asker, Gate, IDENTITY, allow_reason_to_proto, decision_to_proto, role_to_proto};

mod accessible;

use accessible::{Cursor, list_accessible};

/// Most questions in one BatchCheck.
pub const MAX_BATCH: usize = 100;

/// The decision API.
#[derive(Debug, Clone)]
pub struct AuthorizationApi {
    gate: Gate,
}

impl AuthorizationApi {
    /// Returns the decision API.
    pub fn new(gate: Gate) -> Self {
        Self { gate }
    }

    /// Returns who asks: an internal caller, or a bearer-token caller.
    async fn asker<T>(&self, request: &Request<T>) -> Result<Asker, Status> {
        if self.gate.is_internal(request.metadata()) {
            return Ok(Asker::Internal);
        }
        Ok(Asker::Caller(
            self.gate.authenticate(request.metadata()).await?,
        ))
    }

    /// Returns whether `principal` is a revoked credential, once the
    /// revocations are known to be as fresh as the question requires
    /// (R-GW-4): a question carrying an identity revision waits until that
    /// write's revocations are applied (and the asker's own token is checked
    /// again); a question about a credential needs revocations identity or
    /// the bus vouches for. UNAVAILABLE when that cannot be had.
    async fn revoked(
        &self,
        asker: &Asker,
        principal: &Principal,
        revision: Option<&Revision>,
        arrived: Instant,
    ) -> Result<bool, Status> {
        let revocations = &self.gate.revocations;
        if revision.is_some_and(|r| r.service == IDENTITY) {
            revocations.catch_up(arrived).await?;
            if let Asker::Caller(caller) = asker
                && self.gate.tokens.is_revoked(caller)
            {
                return Err(Status::unauthenticated("invalid access token"));
            }
        } else if matches!(principal, Principal::Credential(_)) && !revocations.can_vouch() {
            revocations.catch_up(arrived).await?;
        }
        Ok(revocations.is_revoked(principal))
    }

    /// Returns the principal asked about: any for an internal caller (required
    /// then), the caller itself otherwise.
    fn subject(asker: &Asker, principal: &str) -> Result<Principal, Status> {
        match asker {
            Asker::Internal => principal.parse().map_err(|_| {
                Status::from(Error::invalid_field(
                    "principal",
                    "must be person:<uuid> or credential:<uuid>",
                ))
            }),
            Asker::Caller(caller) => {
                if principal.is_empty() || principal == caller.principal.to_string() {
                    Ok(caller.principal)
                } else {
                    Err(Status::permission_denied(
                        "a principal may only ask about itself",
                    ))
                }
            }
        }
    }
}

fn action_from_proto(value: i32, field: &str) -> Result<Action, FieldViolation> {
    use ccp_proto::common::v1::Action as P;
    match P::try_from(value) {
        Ok(P::View) => Ok(Action::View),
        Ok(P::Edit) => Ok(Action::Edit),
        Ok(P::Manage) => Ok(Action::Manage),
        _ => Err(FieldViolation::new(field, "must be VIEW, EDIT or MANAGE")),
    }
}

/// Returns the business or program account `text` names, bare (`123456782`,
/// `123456782RM0001`) or as a resource name (`businesses/123456782`,
/// `businesses/123456782/programAccounts/RM0001`).
fn resource_ref(text: &str) -> Option<Resource> {
    if text.contains("/programAccounts/") {
        ccp_types::ProgramAccountRef::parse(text, "")
            .ok()
            .map(Resource::Program)
    } else if text.starts_with("businesses/") {
        ccp_types::BusinessRef::parse(text, "")
            .ok()
            .map(Resource::Business)
    } else {
        Resource::parse(text)
    }
}

fn question(item: Option<&gw::CheckItem>, field: &str) -> Result<Question, Vec<FieldViolation>> {
    let Some(item) = item else {
        return Err(vec![FieldViolation::new(field, "is required")]);
    };
    let mut violations = Vec::new();
    let action = action_from_proto(item.action, &format!("{field}.action"))
        .map_err(|v| violations.push(v))
        .ok();
    let resource = resource_ref(&item.resource);
    if resource.is_none() {
        violations.push(FieldViolation::new(
            format!("{field}.resource"),
            "must be a BN9 or a BN15, bare or as its resource name",
        ));
    }
    let submitted_by = if item.submitted_by.is_empty() {
        None
    } else {
        ccp_types::BusinessRef::parse(&item.submitted_by, &format!("{field}.submitted_by"))
            .map_err(|v| violations.push(v))
            .ok()
    };
    match (action, resource, violations.is_empty()) {
        (Some(action), Some(resource), true) => Ok(Question {
            action,
            resource,
            submitted_by,
        }),
        _ => Err(violations),
    }
}

fn invalid(violations: Vec<FieldViolation>) -> Status {
    Status::from(Error::invalid(violations))
}

#[tonic::async_trait]
impl Authorization for AuthorizationApi {
    #[tracing::instrument(level = "debug", skip_all, name = "check", err(level = "info"))]
    async fn check(
        &self,
        request: Request<gw::CheckRequest>,
    ) -> Result<Response<gw::CheckResponse>, Status> {
        let arrived = Instant::now();
        let asker = self.asker(&request).await?;
        let body = request.get_ref();
        let principal = Self::subject(&asker, &body.principal)?;
        let q = question(body.item.as_ref(), "item").map_err(invalid)?;
        let revision = Gate::revision(request.metadata(), &body.revision)?;
        if self
            .revoked(&asker, &principal, revision.as_ref(), arrived)
            .await?
        {
            crate::metrics::get().denied(DenyReason::Revoked, 1);
            return Ok(Response::new(decision_to_proto(&Decision::Deny(
                DenyReason::Revoked,
            ))));
        }
        let gate = &self.gate;
        let mut view = FactsView::open(&gate.facts, principal, revision).await?;
        let decision = view.decide(&gate.facts, &q, gate.ctx.clock.now()).await?;
        crate::metrics::get().decision(&decision);
        Ok(Response::new(decision_to_proto(&decision)))
    }

    #[tracing::instrument(level = "debug", skip_all, name = "batch_check", err(level = "info"))]
    async fn batch_check(
        &self,
        request: Request<gw::BatchCheckRequest>,
    ) -> Result<Response<gw::BatchCheckResponse>, Status> {
        let arrived = Instant::now();
        let asker = self.asker(&request).await?;
        let body = request.get_ref();
        let principal = Self::subject(&asker, &body.principal)?;
        if body.items.is_empty() || body.items.len() > MAX_BATCH {
            return Err(invalid(vec![FieldViolation::new(
                "items",
                format!("must hold 1–{MAX_BATCH} questions"),
            )]));
        }
        let mut questions = Vec::with_capacity(body.items.len());
        let mut violations = Vec::new();
        for (i, item) in body.items.iter().enumerate() {
            match question(Some(item), &format!("items[{i}]")) {
                Ok(q) => questions.push(q),
                Err(v) => violations.extend(v),
            }
        }
        if !violations.is_empty() {
            return Err(invalid(violations));
        }
        let revision = Gate::revision(request.metadata(), &body.revision)?;
        if self
            .revoked(&asker, &principal, revision.as_ref(), arrived)
            .await?
        {
            crate::metrics::get().denied(
                DenyReason::Revoked,
                u64::try_from(questions.len()).unwrap_or(u64::MAX),
            );
            let denied = decision_to_proto(&Decision::Deny(DenyReason::Revoked));
            return Ok(Response::new(gw::BatchCheckResponse {
                results: vec![denied; questions.len()],
            }));
        }
        let gate = &self.gate;
        // One snapshot: every fact is read once, before any decision, and every
        // decision uses the same instant.
        let mut view = FactsView::open(&gate.facts, principal, revision).await?;
        let mut clients: Vec<Bn9> = questions.iter().map(|q| q.resource.bn9().clone()).collect();
        clients.sort();
        clients.dedup();
        for client in &clients {
            view.load_relationships(&gate.facts, client).await?;
        }
        // The program accounts of each business a question names a program of.
        let mut businesses: Vec<Bn9> = questions
            .iter()
            .filter(|q| matches!(q.resource, Resource::Program(_)))
            .map(|q| q.resource.bn9().clone())
            .collect();
        businesses.sort();
        businesses.dedup();
        for business in &businesses {
            view.load_program_accounts(&gate.facts, business).await?;
        }
        let now = gate.ctx.clock.now();
        let metrics = crate::metrics::get();
        let results = questions
            .iter()
            .map(|q| {
                let decision = decide(&principal, q, &view, now);
                metrics.decision(&decision);
                decision_to_proto(&decision)
            })
            .collect();
        Ok(Response::new(gw::BatchCheckResponse { results }))
    }

    #[tracing::instrument(skip_all, name = "list_accessible", err(level = "info"))]
    async fn list_accessible(
        &self,
        request: Request<gw::ListAccessibleRequest>,
    ) -> Result<Response<gw::ListAccessibleResponse>, Status> {
        let arrived = Instant::now();
        let asker = self.asker(&request).await?;
        let body = request.get_ref();
        let principal = Self::subject(&asker, &body.principal)?;
        let action = action_from_proto(body.action, "action").map_err(|v| invalid(vec![v]))?;
        let size = ccp_platform::paging::page_size(body.page_size, 100, 1000)?;
        let pages = PageScope {
            key: self.gate.ctx.internal.page_key().clone(),
            rpc: "gateway.ListAccessible",
            parent: principal.to_string(),
            filter: format!("action={}", action.as_str()),
            caller: match &asker {
                Asker::Internal => "internal".to_owned(),
                Asker::Caller(caller) => caller.principal.to_string(),
            },
        };
        let cursor = Cursor::decode(&pages, &body.page_token)?;
        let revision = Gate::revision(request.metadata(), &body.revision)?;
        if self
            .revoked(&asker, &principal, revision.as_ref(), arrived)
            .await?
        {
            // A revoked credential may touch nothing.
            return Ok(Response::new(gw::ListAccessibleResponse::default()));
        }
        let page = list_accessible(
            &self.gate, principal, action, size, cursor, revision, &pages,
        )
        .await?;
        Ok(Response::new(page))
    }

    #[tracing::instrument(skip_all, name = "explain", err(level = "info"))]
    async fn explain(
        &self,
        request: Request<gw::ExplainRequest>,
    ) -> Result<Response<gw::ExplainResponse>, Status> {
        if !self.gate.is_internal(request.metadata()) {
            return Err(Status::permission_denied(
                "Explain is for internal callers only",
            ));
        }
        let body = request.get_ref();
        let principal = Self::subject(&Asker::Internal, &body.principal)?;
        let q = question(body.item.as_ref(), "item").map_err(invalid)?;
        let facts_cache = &self.gate.facts;
        // Bypasses the caches: every fact read now from its owner.
        let target = q.resource.bn9().clone();
        let role_proto = facts_cache.fetch_role_facts(&principal).await?;
        let assignment_proto = facts_cache
            .fetch_assignment_facts(&principal, &target)
            .await?;
        let roles = role_facts_from_proto(&role_proto);
        let mut facts = Facts {
            roles,
            assignments: assignment_facts_from_proto(&assignment_proto),
            pairs: Default::default(),
            programs: Default::default(),
        };
        let mut pair_protos = Vec::new();
        let providers: Vec<Bn9> = facts
            .roles
            .memberships
            .iter()
            .filter(|(bn, m)| **bn != target && m.holds_a_role())
            .map(|(bn, _)| bn.clone())
            .collect();
        for provider in providers {
            let proto = facts_cache.fetch_pair_facts(&provider, &target).await?;
            facts
                .pairs
                .insert((provider, target.clone()), pair_facts_from_proto(&proto));
            pair_protos.push(proto);
        }
        if let Resource::Program(_) = &q.resource {
            let listed = facts_cache
                .business_facts(&target)
                .await?
                .program_accounts
                .iter()
                .filter_map(|p| Bn15::try_new(p))
                .filter(|p| p.bn9() == &target)
                .collect();
            facts.programs.insert(target.clone(), listed);
        }
        let now = self.gate.ctx.clock.now();
        let decision = decide(&principal, &q, &facts, now);
        Ok(Response::new(gw::ExplainResponse {
            decision: Some(decision_to_proto(&decision)),
            role_facts: Some(role_proto),
            assignment_facts: Some(assignment_proto),
            pair_facts: pair_protos,
            explanation: explain(&decision, &principal, &q, now),
        }))
    }
}

fn explain(
    decision: &Decision,
    principal: &Principal,
    q: &Question,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    use crate::decide::{AllowReason as A, DenyReason as D};
    let what = format!(
        "{principal} {} {}{} at {}",
        q.action.as_str(),
        q.resource,
        q.submitted_by
            .as_ref()
            .map(|s| format!(" (submitted by {s})"))
            .unwrap_or_default(),
        now.to_rfc3339()
    );
    let rule = match decision {
        Decision::Allow {
            reason: A::SelfService,
            ..
        } => "R-AZ-0: allowed, the principal acts on itself".to_owned(),
        Decision::Allow {
            reason: A::OwnRole,
            role,
        } => {
            format!("R-AZ-1: allowed by the principal's own role ({role:?}) in the business")
        }
        Decision::Allow {
            reason: A::ProviderRelationship,
            role,
        } => format!(
            "R-AZ-2/R-AZ-3: allowed through an active relationship of the principal's provider business and its assignment ({role:?})"
        ),
        Decision::Allow {
            reason: A::ExpiredUserOwnSubmission,
            ..
        } => "R-AZ-4: allowed, an expired user viewing its provider's own submission".to_owned(),
        Decision::Deny(D::NotAMember) => {
            "R-AZ-0/R-AZ-6: denied, the principal is a member of no business".to_owned()
        }
        Decision::Deny(D::NoRole) => "R-AZ-1: denied, no role on the program account (or no such program account)".to_owned(),
        Decision::Deny(D::RoleTooLow) => {
            "R-AZ-1/R-AZ-2: denied, the role does not allow the action".to_owned()
        }
        Decision::Deny(D::NoRelationship) => {
            "R-AZ-2: denied, no relationship with the resource's business".to_owned()
        }
        Decision::Deny(D::RelationshipEnded) => {
            "R-AZ-2/R-AZ-4: denied, the relationship has ended or expired".to_owned()
        }
        Decision::Deny(D::ProgramNotCovered) => {
            "R-AZ-2: denied, the relationship does not cover the program (or no such program account)"
                .to_owned()
        }
        Decision::Deny(D::NotAssigned) => {
            "R-AZ-2: denied, the principal is not assigned to the client".to_owned()
        }
        Decision::Deny(D::Visibility) => {
            "R-AZ-3: denied, the visibility rules exclude the submitter".to_owned()
        }
        Decision::Deny(D::Revoked) => "R-GW-4: denied, the credential is revoked".to_owned(),
    };
    format!("{rule}: {what}")
}
