//! The gate every call passes: authentication (bearer access token or the
//! internal token), the per-principal rate limit, and authorization of a
//! policy entry's needs ([`crate::policy::needs`]) by [`crate::decide::decide`]
//! over cached facts, read once per request ([`FactsView`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ccp_platform::auth::{Caller, INTERNAL_TOKEN_HEADER, Principal, REVISION_HEADER};
use ccp_platform::context::ServiceContext;
use ccp_platform::error::Error;
use ccp_platform::revision::Revision;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::decide::{Action, Decision, DenyReason, Question, Resource, Role};
use crate::facts::{FactsCache, FactsError, FactsView};
use crate::limit::RateLimiter;
use crate::policy::{Need, Policy, Rule};
use crate::revocations::Revocations;
use crate::tokens::Authenticator;

/// The google.rpc.ErrorInfo reason of a call refused by the per-principal
/// rate limit (RESOURCE_EXHAUSTED, with RetryInfo).
pub const RATE_LIMITED: &str = "RATE_LIMITED";

/// The google.rpc.ErrorInfo reason of a self-service call by a person who
/// has no profile yet (FAILED_PRECONDITION, R-ID-2).
pub const PROFILE_REQUIRED: &str = "PROFILE_REQUIRED";

/// What a person without a profile is told (as `Caller::require_profile` says).
const PROFILE_REQUIRED_MESSAGE: &str = "create your profile first";

/// Who asks the decision API.
#[derive(Debug, Clone)]
pub enum Asker {
    /// An internal caller (valid internal token): may ask about any principal.
    Internal,
    /// A person or machine credential, asking about itself.
    Caller(Arc<Caller>),
}

/// Authentication, rate limit and authorization, shared by the decision API and forwarding.
#[derive(Clone)]
pub struct Gate {
    /// The shared runtime.
    pub ctx: ServiceContext,
    /// Access-token verification and revocation.
    pub tokens: Authenticator,
    /// The revocations in force, in step with identity.
    pub revocations: Revocations,
    /// The facts cache.
    pub facts: FactsCache,
    limiter: RateLimiter,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

/// The service name identity's revision tokens carry.
pub const IDENTITY: &str = "identity";

/// The answer of a denied forwarded call: bare, never saying whether the target exists.
pub fn denied() -> Status {
    Status::permission_denied("permission denied")
}

/// The answer to a person without a profile calling on itself (R-ID-2):
/// FAILED_PRECONDITION, as the services themselves answer (identity.proto,
/// GetMyProfile), with ErrorInfo `PROFILE_REQUIRED`.
pub fn profile_required() -> Status {
    Status::from(Error::failed_precondition(PROFILE_REQUIRED_MESSAGE).with_reason(PROFILE_REQUIRED))
}

impl Gate {
    /// Returns a gate.
    pub fn new(
        ctx: ServiceContext,
        tokens: Authenticator,
        revocations: Revocations,
        facts: FactsCache,
        limiter: RateLimiter,
    ) -> Self {
        Self {
            ctx,
            tokens,
            revocations,
            facts,
            limiter,
        }
    }

    /// Returns true when the call carries a valid internal token.
    pub fn is_internal(&self, metadata: &MetadataMap) -> bool {
        let Some(token) = metadata
            .get(INTERNAL_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        // Verified tokens are cached by `InternalTokens` until their expiry.
        self.ctx.internal.accepts(token)
    }

    /// Returns the caller of a bearer token (UNAUTHENTICATED without a valid
    /// one), after the per-principal rate limit (RESOURCE_EXHAUSTED).
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Arc<Caller>, Status> {
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            })
            .ok_or_else(|| Status::unauthenticated("missing access token"))?;
        let arrived = Instant::now();
        // Until the revocations in force at start are loaded, the token may
        // be a revoked one: wait a little for them, then fail closed (R-GW-4).
        // Past start-up this is one atomic load.
        if !self.revocations.is_loaded() {
            let deadline = arrived + Duration::from_secs(2);
            while !self.revocations.is_loaded() {
                if Instant::now() >= deadline {
                    return Err(Status::unavailable(
                        "the gateway is starting (loading revocations); try again",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // A call carrying an identity revision (a sign-out's, a credential
        // revocation's) is answered only once that write's revocations are
        // applied here.
        // Without one, the revocations must be vouched for by the bus or a
        // recent poll, else confirmed with identity now (UNAVAILABLE when it
        // cannot be asked: a token is never trusted unconfirmed).
        let has_identity_revision = matches!(
            Self::revision(metadata, ""),
            Ok(Some(revision)) if revision.service == IDENTITY
        );
        if has_identity_revision || !self.revocations.can_vouch() {
            self.revocations.catch_up(arrived).await?;
        }
        let caller = self
            .tokens
            .authenticate(token)
            .await
            .map_err(Status::from)?;
        if let Err(wait) = self.limiter.check(&caller.principal).await {
            crate::metrics::get().rate_limited();
            return Err(Status::from(
                Error::resource_exhausted("rate limit exceeded; slow down")
                    .with_reason(RATE_LIMITED)
                    .retry_after(wait),
            ));
        }
        Ok(caller)
    }

    /// Returns the revision a call carries (`x-ccp-revision`, or `field` when set).
    pub fn revision(metadata: &MetadataMap, field: &str) -> Result<Option<Revision>, Status> {
        let text = if field.is_empty() {
            match metadata.get(REVISION_HEADER).and_then(|v| v.to_str().ok()) {
                Some(t) if !t.is_empty() => t,
                _ => return Ok(None),
            }
        } else {
            field
        };
        text.parse().map(Some).map_err(|_| {
            Status::from(Error::invalid_field(
                if field.is_empty() {
                    REVISION_HEADER
                } else {
                    "revision"
                },
                "not a revision token",
            ))
        })
    }

    /// Admits a call of a public RPC by its policy entry; returns its caller
    /// (None for an anonymous RPC) and the facts revisions the decision read
    /// (R-GW-1: a forwarded write carries them). `fresher`, when set, is a
    /// revision the facts must reflect (a write refused because a fact moved
    /// is decided again on facts at least that fresh). UNAUTHENTICATED
    /// without a token, INVALID_ARGUMENT for a request naming no resource,
    /// PERMISSION_DENIED when not allowed, UNAVAILABLE when the facts cannot
    /// be had.
    pub async fn admit<T: Policy>(
        &self,
        request: &tonic::Request<T>,
        fresher: Option<Revision>,
    ) -> Result<Admitted, Status> {
        let admitted = |caller| Admitted {
            caller: Some(caller),
            decided_on: Vec::new(),
        };
        if T::RULE == Rule::Anonymous {
            return Ok(Admitted::default());
        }
        let caller = self.authenticate(request.metadata()).await?;
        let has_profile = caller.principal.is_person() && caller.profile.is_some();
        match T::RULE {
            Rule::Anonymous => Ok(Admitted::default()),
            // R-ID-2: a session without a profile may only create it.
            Rule::ProfileCreation if caller.principal.is_person() => Ok(admitted(caller)),
            Rule::ProfileCreation => Err(denied()),
            Rule::SelfService if has_profile => Ok(admitted(caller)),
            // R-ID-2: a person without a profile is told to create it first;
            // a machine credential has no self to serve.
            Rule::SelfService if caller.principal.is_person() => Err(profile_required()),
            Rule::SelfService => Err(denied()),
            Rule::Checked => {
                let needs = request.get_ref().needs().map_err(Status::from)?;
                if needs.is_empty() {
                    // The request names the caller itself (e.g. `profiles/me`).
                    return match (has_profile, caller.principal.is_person()) {
                        (true, _) => Ok(admitted(caller)),
                        (false, true) => Err(profile_required()),
                        (false, false) => Err(denied()),
                    };
                }
                // A person must have a profile for anything but creating it.
                if caller.principal.is_person() && !has_profile {
                    return Err(denied());
                }
                let revision = match fresher {
                    Some(fresher) => Some(fresher),
                    None => Self::revision(request.metadata(), "")?,
                };
                match self.allows(&caller.principal, &needs, revision).await? {
                    Admission::Allowed(decided_on) => Ok(Admitted {
                        caller: Some(caller),
                        decided_on,
                    }),
                    Admission::Denied => Err(denied()),
                    Admission::NoSuchProgram => Err(Status::not_found("no such program account")),
                }
            }
        }
    }

    /// Returns whether every need is allowed for `principal`; the needs are
    /// checked in order, and the first one not met denies. A need of an
    /// action on a program account the business does not have, asked by a
    /// principal who may VIEW the business, is [`Admission::NoSuchProgram`]
    /// (NOT_FOUND, what the service would answer); anyone else is denied as
    /// for any business it cannot see (R-GW-1). A caller allowed on every
    /// program of the business is forwarded without reading its program
    /// accounts ([`FactsView::forwarding`]): the service answers NOT_FOUND.
    pub async fn allows(
        &self,
        principal: &Principal,
        needs: &[Need],
        revision: Option<Revision>,
    ) -> Result<Admission, FactsError> {
        let now = self.ctx.clock.now();
        let mut view = FactsView::open(&self.facts, *principal, revision)
            .await?
            .forwarding()
            .recording();
        for need in needs {
            if need.is_met(&mut view, &self.facts, now).await? {
                continue;
            }
            if let Need::Act {
                resource: Resource::Program(program),
                ..
            } = need
            {
                let business = program.bn9();
                let absent = !view
                    .load_program_accounts(&self.facts, business)
                    .await?
                    .contains(program);
                let sees = Question::new(Action::View, Resource::Business(business.clone()));
                if absent && view.decide(&self.facts, &sees, now).await?.is_allow() {
                    return Ok(Admission::NoSuchProgram);
                }
            }
            return Ok(Admission::Denied);
        }
        Ok(Admission::Allowed(view.decided_on()))
    }
}

/// A call the gate let through.
#[derive(Debug, Clone, Default)]
pub struct Admitted {
    /// Who calls (None for an anonymous RPC).
    pub caller: Option<Arc<Caller>>,
    /// The facts revisions its decision read (empty unless checked).
    pub decided_on: Vec<Revision>,
}

/// What [`Gate::allows`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Every need is met, decided on facts of these revisions.
    Allowed(Vec<Revision>),
    /// A need is not met.
    Denied,
    /// A need names a program account its business does not have, and the
    /// principal may VIEW that business.
    NoSuchProgram,
}

/// Maps a decision to the proto's reasons, withholding nothing (R-AZ-6: the
/// decision API answers only internal callers and principals asking about themselves).
pub fn decision_to_proto(decision: &Decision) -> ccp_proto::gateway::v1::CheckResponse {
    use ccp_proto::gateway::v1 as gw;
    match decision {
        Decision::Allow { reason, .. } => gw::CheckResponse {
            decision: gw::Decision::Allow as i32,
            allow_reason: allow_reason_to_proto(*reason) as i32,
            deny_reason: gw::DenyReason::Unspecified as i32,
        },
        Decision::Deny(reason) => gw::CheckResponse {
            decision: gw::Decision::Deny as i32,
            allow_reason: gw::AllowReason::Unspecified as i32,
            deny_reason: deny_reason_to_proto(*reason) as i32,
        },
    }
}

/// Maps an allow reason to the proto.
pub fn allow_reason_to_proto(
    reason: crate::decide::AllowReason,
) -> ccp_proto::gateway::v1::AllowReason {
    use crate::decide::AllowReason as A;
    use ccp_proto::gateway::v1::AllowReason as P;
    match reason {
        A::SelfService => P::Self_,
        A::OwnRole => P::OwnRole,
        A::ProviderRelationship => P::ProviderRelationship,
        A::ExpiredUserOwnSubmission => P::ExpiredUserOwnSubmission,
    }
}

/// Maps a deny reason to the proto.
pub fn deny_reason_to_proto(reason: DenyReason) -> ccp_proto::gateway::v1::DenyReason {
    use ccp_proto::gateway::v1::DenyReason as P;
    match reason {
        DenyReason::NotAMember => P::NotAMember,
        DenyReason::NoRelationship => P::NoRelationship,
        DenyReason::RelationshipEnded => P::RelationshipEnded,
        DenyReason::NotAssigned => P::NotAssigned,
        DenyReason::ProgramNotCovered => P::ProgramNotCovered,
        DenyReason::NoRole => P::NoRole,
        DenyReason::RoleTooLow => P::RoleTooLow,
        DenyReason::Visibility => P::Visibility,
        DenyReason::Revoked => P::Revoked,
    }
}

/// Maps a domain role to the proto.
pub fn role_to_proto(role: Role) -> ccp_proto::common::v1::Role {
    use ccp_proto::common::v1::Role as P;
    match role {
        Role::Reader => P::Reader,
        Role::Editor => P::Editor,
        Role::Pam => P::Pam,
        Role::Bam => P::Bam,
    }
}
