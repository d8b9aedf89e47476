//! tonic handlers of `ccp.identity.v1.Identity` and `IdentityFacts`:
//! proto <-> domain conversion and errors to `Status`.

mod convert;

use std::sync::Arc;

use ccp_platform::auth::{
    ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, AccessClaims, Caller, Principal, caller,
};
use ccp_platform::context::ServiceContext;
use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::revision::Revision;
use ccp_platform::store::{
    AuditRecord, AuditScope, OutboxRelay, append_audit, bump_revision, enqueue_event,
    idempotent_response, list_audit, store_idempotent_response, timestamp,
};
use ccp_proto::common::v1::{DomainEvent, EventType};
use ccp_proto::identity::v1 as pb;
use ccp_proto::identity::v1::identity_facts_server::IdentityFacts;
use ccp_proto::identity::v1::identity_server::Identity;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::config::IdentitySettings;
use crate::domain::credential::{self, CredentialState, Throttle};
use crate::domain::{Bn9, parse_request_id};
use crate::oidc::TrustedIssuers;
use crate::secrets::{self, SecretHasher};
use crate::store::keys::{KeyRing, jwks_of};
use crate::store::{from_us, repo, us};

const SERVICE: &str = "identity";

/// What both APIs share: the database, runtime, key ring, trusted issuers and settings.
pub struct Core {
    db: DatabaseConnection,
    ctx: ServiceContext,
    relay: OutboxRelay,
    issuers: TrustedIssuers,
    keys: Arc<KeyRing>,
    hasher: SecretHasher,
    /// A hash verified when a client id is unknown, so timing does not tell.
    dummy_hash: String,
    settings: IdentitySettings,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    /// Returns the shared core.
    pub fn new(
        db: DatabaseConnection,
        ctx: ServiceContext,
        relay: OutboxRelay,
        issuers: TrustedIssuers,
        keys: Arc<KeyRing>,
        settings: IdentitySettings,
    ) -> anyhow::Result<Self> {
        let m = &settings.machine_credentials;
        let hasher = SecretHasher::new(m.argon2_memory_kib, m.argon2_iterations)?;
        let dummy_hash = hasher.hash(&secrets::new_client_secret())?;
        Ok(Self {
            db,
            ctx,
            relay,
            issuers,
            keys,
            hasher,
            dummy_hash,
            settings,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    fn access_ttl(&self) -> Duration {
        Duration::seconds(i64::try_from(self.settings.access_token_ttl_secs).unwrap_or(900))
    }

    fn refresh_ttl(&self) -> Duration {
        Duration::seconds(i64::try_from(self.settings.refresh_token_ttl_secs).unwrap_or(43_200))
    }

    fn revision(scope: &str, counter: i64) -> String {
        Revision::new(SERVICE, scope, counter).encode()
    }

    fn event(
        &self,
        kind: EventType,
        actor: &str,
        subject: String,
        now: DateTime<Utc>,
    ) -> DomainEvent {
        DomainEvent {
            id: Uuid::new_v4().to_string(),
            r#type: kind as i32,
            service: SERVICE.to_owned(),
            occurred_at: Some(timestamp(now)),
            actor: actor.to_owned(),
            subject,
            ..DomainEvent::default()
        }
    }

    async fn mint(
        &self,
        principal: Principal,
        family: Option<&str>,
        profile: Option<Uuid>,
        business: Option<&str>,
        now: DateTime<Utc>,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<(String, DateTime<Utc>)> {
        let signer = self.keys.signer().await.map_err(Error::internal)?;
        let exp = not_after.map_or(now + self.access_ttl(), |n| n.min(now + self.access_ttl()));
        let claims = AccessClaims {
            iss: ACCESS_TOKEN_ISSUER.to_owned(),
            aud: ACCESS_TOKEN_AUDIENCE.to_owned(),
            sub: principal.to_string(),
            exp: exp.timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: Uuid::new_v4().to_string(),
            sid: family.map(str::to_owned),
            pid: profile.map(|p| p.to_string()),
            bn: business.map(str::to_owned),
        };
        let token = signer.sign(&claims).map_err(Error::internal)?;
        Ok((
            token,
            DateTime::from_timestamp(exp.timestamp(), 0).unwrap_or(exp),
        ))
    }

    /// Starts a session family for `person` in `txn` and returns its refresh
    /// token (to be minted into a session after commit).
    async fn start_family(
        &self,
        txn: &DatabaseTransaction,
        person: Uuid,
        issuer: &str,
        now: DateTime<Utc>,
    ) -> Result<NewFamily> {
        let family = Uuid::new_v4().to_string();
        let expire = now + self.refresh_ttl();
        repo::insert_family(txn, &family, &person.to_string(), issuer, now, expire).await?;
        let refresh = secrets::new_refresh_token();
        repo::insert_refresh(
            txn,
            &secrets::refresh_token_hash(&refresh),
            &family,
            now,
            expire,
        )
        .await?;
        Ok(NewFamily {
            family,
            refresh,
            expire,
        })
    }

    async fn session(
        &self,
        person: Uuid,
        family: &NewFamily,
        profile: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<pb::Session> {
        let principal = Principal::Person(person);
        let (access, exp) = self
            .mint(principal, Some(&family.family), profile, None, now, None)
            .await?;
        Ok(pb::Session {
            access_token: access,
            access_token_expire_time: Some(timestamp(exp)),
            refresh_token: family.refresh.clone(),
            refresh_token_expire_time: Some(timestamp(family.expire)),
            principal: principal.to_string(),
            profile: profile.map(|p| format!("profiles/{p}")).unwrap_or_default(),
            profile_required: profile.is_none(),
        })
    }

    /// Returns the calling person, refusing tokens of a revoked or unknown
    /// session family (defence in depth: the gateway refuses them too).
    async fn person(&self, caller: &Caller) -> Result<Uuid> {
        self.person_session(caller).await.map(|(id, _)| id)
    }

    /// Refuses a caller whose session ended or whose credential is revoked,
    /// expired or unknown (defence in depth: the gateway refuses them too).
    async fn check_caller(&self, caller: &Caller) -> Result<()> {
        match caller.principal {
            Principal::Person(_) => self.person(caller).await.map(|_| ()),
            Principal::Credential(id) => {
                let row = repo::get_credential(&self.db, &id.to_string()).await?;
                let active = row.is_some_and(|r| {
                    Some(r.business.as_str()) == caller.business.as_deref()
                        && CredentialState::at(
                            from_us(r.expire_us),
                            r.revoke_us.map(from_us),
                            self.now(),
                        ) == CredentialState::Active
                });
                if active {
                    Ok(())
                } else {
                    Err(Error::unauthenticated("the credential is no longer valid"))
                }
            }
        }
    }

    /// Like [`Core::person`], also returning the session's issuer.
    async fn person_session(&self, caller: &Caller) -> Result<(Uuid, String)> {
        let Principal::Person(id) = caller.principal else {
            return Err(Error::permission_denied(
                "a machine credential has no personal session",
            ));
        };
        let family = caller
            .session_family
            .ok_or_else(|| Error::unauthenticated("the access token names no session"))?;
        match repo::get_family(&self.db, &family.to_string()).await? {
            Some(f) if f.revoke_us.is_none() && f.person_id == id.to_string() => Ok((id, f.issuer)),
            _ => Err(Error::unauthenticated("the session has ended")),
        }
    }

    async fn replay<M: prost::Message + Default>(
        &self,
        principal: &str,
        method: &str,
        request_id: &str,
    ) -> Result<Option<M>> {
        match idempotent_response(&self.db, principal, method, request_id).await? {
            Some(bytes) => Ok(Some(M::decode(bytes.as_slice()).map_err(Error::internal)?)),
            None => Ok(None),
        }
    }

    /// Commits `txn`; a unique violation on the idempotency row (a concurrent
    /// duplicate) is answered with the stored response.
    async fn commit_write<M: prost::Message + Default>(
        &self,
        txn: DatabaseTransaction,
        key: (&str, &str, &str),
        response: &M,
        now: DateTime<Utc>,
    ) -> Result<Option<M>> {
        let (principal, method, request_id) = key;
        if let Err(err) = store_idempotent_response(
            &txn,
            principal,
            method,
            request_id,
            &response.encode_to_vec(),
            now,
        )
        .await
        {
            drop(txn);
            if ccp_platform::db::is_unique_violation(&err) {
                return self.replay(principal, method, request_id).await;
            }
            return Err(err.into());
        }
        txn.commit().await?;
        self.relay.notify();
        Ok(None)
    }

    async fn revoke_family_for_reuse(&self, family: &repo::FamilyRow) -> Result<()> {
        let now = self.now();
        let principal = format!("person:{}", family.person_id);
        let txn = self.db.begin().await?;
        let counter = bump_revision(&txn, &principal).await?;
        if repo::revoke_family(&txn, &family.id, "refresh token reused", now).await? {
            append_audit(
                &txn,
                &AuditRecord {
                    actor: principal.clone(),
                    action: "identity.session.revoke_family".to_owned(),
                    target: format!("sessions/{}", family.id),
                    after_json: serde_json::json!({
                        "family": family.id,
                        "reason": "a rotated refresh token was presented again",
                    })
                    .to_string(),
                    request_id: Uuid::new_v4().to_string(),
                    ..AuditRecord::default()
                },
                now,
            )
            .await?;
            let mut event = self.event(
                EventType::SessionFamilyRevoked,
                &principal,
                format!("sessions/{}", family.id),
                now,
            );
            event.principals = vec![principal.clone()];
            event.token_families = vec![family.id.clone()];
            event.revision = Self::revision(&principal, counter);
            enqueue_event(&txn, crate::EVENT_STREAM, &event, now).await?;
            txn.commit().await?;
            self.relay.notify();
            tracing::warn!(principal = %principal, family = %family.id, "refresh token reuse: session family revoked");
        }
        Ok(())
    }
}

struct NewFamily {
    family: String,
    refresh: String,
    expire: DateTime<Utc>,
}

fn violations(v: Vec<FieldViolation>) -> Result<()> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(v))
    }
}

fn credential_name(bn: &str, id: &str) -> String {
    format!("businesses/{bn}/machineCredentials/{id}")
}

fn credential_json(c: &repo::CredentialRow) -> String {
    // Never the secret or its hash.
    serde_json::json!({
        "name": credential_name(&c.business, &c.id),
        "display_name": c.display_name,
        "business": c.business,
        "creator": c.creator,
        "create_time": from_us(c.create_us).to_rfc3339(),
        "expire_time": from_us(c.expire_us).to_rfc3339(),
        "revoke_time": c.revoke_us.map(|v| from_us(v).to_rfc3339()),
        "revoke_reason": c.revoke_reason,
    })
    .to_string()
}

/// The public `Identity` service.
#[derive(Debug, Clone)]
pub struct IdentityApi {
    core: Arc<Core>,
}

impl IdentityApi {
    /// Returns the service over the shared core.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

fn reply<T>(r: Result<T>) -> Reply<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl Identity for IdentityApi {
    #[tracing::instrument(skip_all, err)]
    async fn sign_in(&self, request: Request<pb::SignInRequest>) -> Reply<pb::Session> {
        reply(self.sign_in_inner(request.into_inner()).await)
    }

    #[tracing::instrument(skip_all, err)]
    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Reply<pb::Session> {
        reply(self.refresh_inner(request.into_inner()).await)
    }

    #[tracing::instrument(skip_all, err)]
    async fn sign_out(&self, request: Request<pb::SignOutRequest>) -> Reply<pb::SignOutResponse> {
        let caller = caller(&request)?.clone();
        reply(self.sign_out_inner(&caller, request.into_inner()).await)
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_signing_keys(
        &self,
        _request: Request<pb::GetSigningKeysRequest>,
    ) -> Reply<pb::SigningKeys> {
        reply(self.signing_keys_inner().await)
    }

    #[tracing::instrument(skip_all, err)]
    async fn create_profile(
        &self,
        request: Request<pb::CreateProfileRequest>,
    ) -> Reply<pb::CreateProfileResponse> {
        let caller = caller(&request)?.clone();
        reply(
            self.create_profile_inner(&caller, request.into_inner())
                .await,
        )
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_my_profile(
        &self,
        request: Request<pb::GetMyProfileRequest>,
    ) -> Reply<pb::Profile> {
        let caller = caller(&request)?.clone();
        reply(self.get_my_profile_inner(&caller).await)
    }

    #[tracing::instrument(skip_all, err)]
    async fn update_my_profile(
        &self,
        request: Request<pb::UpdateMyProfileRequest>,
    ) -> Reply<pb::UpdateMyProfileResponse> {
        let caller = caller(&request)?.clone();
        reply(
            self.update_profile_inner(&caller, request.into_inner())
                .await,
        )
    }

    #[tracing::instrument(skip_all, err)]
    async fn create_machine_credential(
        &self,
        request: Request<pb::CreateMachineCredentialRequest>,
    ) -> Reply<pb::CreateMachineCredentialResponse> {
        let caller = caller(&request)?.clone();
        reply(
            self.create_credential_inner(&caller, request.into_inner())
                .await,
        )
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_machine_credentials(
        &self,
        request: Request<pb::ListMachineCredentialsRequest>,
    ) -> Reply<pb::ListMachineCredentialsResponse> {
        let caller = caller(&request)?.clone();
        reply(
            self.list_credentials_inner(&caller, request.into_inner())
                .await,
        )
    }

    #[tracing::instrument(skip_all, err)]
    async fn revoke_machine_credential(
        &self,
        request: Request<pb::RevokeMachineCredentialRequest>,
    ) -> Reply<pb::RevokeMachineCredentialResponse> {
        let caller = caller(&request)?.clone();
        reply(
            self.revoke_credential_inner(&caller, request.into_inner())
                .await,
        )
    }

    #[tracing::instrument(skip_all, err)]
    async fn issue_machine_token(
        &self,
        request: Request<pb::IssueMachineTokenRequest>,
    ) -> Reply<pb::MachineToken> {
        reply(self.issue_token_inner(request.into_inner()).await)
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Reply<pb::ListAuditEventsResponse> {
        let caller = caller(&request)?.clone();
        reply(self.list_audit_inner(&caller, request.into_inner()).await)
    }
}

impl IdentityApi {
    async fn sign_in_inner(&self, req: pb::SignInRequest) -> Result<pb::Session> {
        let core = &self.core;
        if req.id_token.is_empty() || req.id_token.len() > 16 * 1024 {
            return Err(Error::unauthenticated("an id token is required"));
        }
        let identity = core.issuers.verify(&req.id_token).await.map_err(|e| {
            tracing::info!(reason = %e, "id token refused");
            Error::unauthenticated("the id token was refused")
        })?;
        let now = core.now();
        // The person mapping, the session and the audit record commit together;
        // a concurrent first sign-in of the same subject loses on the primary
        // key and retries, finding the winner's person.
        let mut attempt = 0;
        let (txn, person, first, family, profile) = loop {
            attempt += 1;
            // Read first outside the transaction, so that the transaction
            // starts with a write (SQLite takes its write lock at once).
            let known = repo::find_person(&core.db, &identity.issuer, &identity.subject).await?;
            let txn = core.db.begin().await?;
            let (person, first) = match known {
                Some(p) => (p, false),
                None => {
                    let fresh = Uuid::new_v4().to_string();
                    match repo::insert_identity(
                        &txn,
                        &identity.issuer,
                        &identity.subject,
                        &fresh,
                        now,
                    )
                    .await
                    {
                        Ok(()) => (fresh, true),
                        Err(err) if attempt < 3 && ccp_platform::db::is_unique_violation(&err) => {
                            drop(txn);
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            };
            let person = Uuid::parse_str(&person).map_err(Error::internal)?;
            let profile = repo::get_profile(&txn, &person.to_string())
                .await?
                .map(|_| person);
            let family = core
                .start_family(&txn, person, &identity.issuer, now)
                .await?;
            break (txn, person, first, family, profile);
        };
        let principal = Principal::Person(person).to_string();
        append_audit(
            &txn,
            &AuditRecord {
                actor: principal.clone(),
                action: "identity.session.sign_in".to_owned(),
                target: format!("sessions/{}", family.family),
                after_json: serde_json::json!({
                    "issuer": identity.issuer_name,
                    "first_sign_in": first,
                    "profile_required": profile.is_none(),
                })
                .to_string(),
                request_id: Uuid::new_v4().to_string(),
                ..AuditRecord::default()
            },
            now,
        )
        .await?;
        txn.commit().await?;
        tracing::info!(principal = %principal, issuer = %identity.issuer_name, first, "signed in");
        core.session(person, &family, profile, now).await
    }

    async fn refresh_inner(&self, req: pb::RefreshSessionRequest) -> Result<pb::Session> {
        let core = &self.core;
        let refused = || Error::unauthenticated("the refresh token was refused");
        if req.refresh_token.is_empty() || req.refresh_token.len() > 512 {
            return Err(refused());
        }
        let hash = secrets::refresh_token_hash(&req.refresh_token);
        let token = repo::get_refresh(&core.db, &hash)
            .await?
            .ok_or_else(refused)?;
        let family = repo::get_family(&core.db, &token.family_id)
            .await?
            .ok_or_else(refused)?;
        let now = core.now();
        if family.revoke_us.is_some() {
            return Err(refused());
        }
        if token.used_us.is_some() {
            core.revoke_family_for_reuse(&family).await?;
            return Err(refused());
        }
        if token.expire_us <= us(now) || family.expire_us <= us(now) {
            return Err(refused());
        }
        let txn = core.db.begin().await?;
        if !repo::use_refresh(&txn, &hash, now).await? {
            // Used concurrently: presented twice.
            drop(txn);
            core.revoke_family_for_reuse(&family).await?;
            return Err(refused());
        }
        let refresh = secrets::new_refresh_token();
        let expire = from_us(family.expire_us);
        repo::insert_refresh(
            &txn,
            &secrets::refresh_token_hash(&refresh),
            &family.id,
            now,
            expire,
        )
        .await?;
        let principal = format!("person:{}", family.person_id);
        append_audit(
            &txn,
            &AuditRecord {
                actor: principal,
                action: "identity.session.refresh".to_owned(),
                target: format!("sessions/{}", family.id),
                request_id: Uuid::new_v4().to_string(),
                ..AuditRecord::default()
            },
            now,
        )
        .await?;
        txn.commit().await?;
        let person = Uuid::parse_str(&family.person_id).map_err(Error::internal)?;
        let profile = repo::get_profile(&core.db, &family.person_id)
            .await?
            .map(|_| person);
        let new = NewFamily {
            family: family.id,
            refresh,
            expire,
        };
        core.session(person, &new, profile, now).await
    }

    async fn sign_out_inner(
        &self,
        caller: &Caller,
        req: pb::SignOutRequest,
    ) -> Result<pb::SignOutResponse> {
        let core = &self.core;
        let request_id = parse_request_id(&req.request_id).map_err(|v| Error::invalid(vec![v]))?;
        let Principal::Person(_) = caller.principal else {
            return Err(Error::failed_precondition(
                "a machine credential has no session to sign out of",
            ));
        };
        let family = caller
            .session_family
            .ok_or_else(|| Error::unauthenticated("the access token names no session"))?
            .to_string();
        let principal = caller.principal.to_string();
        const METHOD: &str = "SignOut";
        if let Some(r) = core.replay(&principal, METHOD, &request_id).await? {
            return Ok(r);
        }
        let now = core.now();
        let txn = core.db.begin().await?;
        let counter = bump_revision(&txn, &principal).await?;
        let revoked = repo::revoke_family(&txn, &family, "signed out", now).await?;
        append_audit(
            &txn,
            &AuditRecord {
                actor: principal.clone(),
                action: "identity.session.sign_out".to_owned(),
                target: format!("sessions/{family}"),
                after_json: serde_json::json!({ "family": family, "revoked": revoked }).to_string(),
                request_id: request_id.clone(),
                ..AuditRecord::default()
            },
            now,
        )
        .await?;
        let revision = Core::revision(&principal, counter);
        let mut event = core.event(
            EventType::SessionSignedOut,
            &principal,
            format!("sessions/{family}"),
            now,
        );
        event.principals = vec![principal.clone()];
        event.token_families = vec![family.clone()];
        event.revision = revision.clone();
        enqueue_event(&txn, crate::EVENT_STREAM, &event, now).await?;
        let response = pb::SignOutResponse { revision };
        if let Some(r) = core
            .commit_write(txn, (&principal, METHOD, &request_id), &response, now)
            .await?
        {
            return Ok(r);
        }
        tracing::info!(principal = %principal, family = %family, "signed out");
        Ok(response)
    }

    async fn signing_keys_inner(&self) -> Result<pb::SigningKeys> {
        let keys = self.core.keys.published().await.map_err(Error::internal)?;
        Ok(pb::SigningKeys {
            jwks_json: jwks_of(&keys),
            keys: keys.iter().map(convert::signing_key).collect(),
        })
    }

    async fn create_profile_inner(
        &self,
        caller: &Caller,
        req: pb::CreateProfileRequest,
    ) -> Result<pb::CreateProfileResponse> {
        let core = &self.core;
        let mut v = Vec::new();
        let request_id = parse_request_id(&req.request_id)
            .map_err(|e| v.push(e))
            .ok();
        let fields = match &req.profile {
            None => {
                v.push(FieldViolation::new("profile", "is required"));
                None
            }
            Some(p) => convert::raw_fields(p)
                .parse("profile.")
                .map_err(|e| v.extend(e))
                .ok(),
        };
        violations(v)?;
        let (Some(request_id), Some(fields)) = (request_id, fields) else {
            return Err(Error::invalid(vec![]));
        };
        let (person, issuer) = core.person_session(caller).await?;
        let principal = caller.principal.to_string();
        const METHOD: &str = "CreateProfile";
        let now = core.now();
        if let Some(mut stored) = core
            .replay::<pb::CreateProfileResponse>(&principal, METHOD, &request_id)
            .await?
        {
            // The stored response holds no session (refresh tokens are kept
            // only as hashes): a replay gets a fresh one.
            let txn = core.db.begin().await?;
            let family = core.start_family(&txn, person, &issuer, now).await?;
            txn.commit().await?;
            stored.session = Some(core.session(person, &family, Some(person), now).await?);
            return Ok(stored);
        }
        if repo::get_profile(&core.db, &person.to_string())
            .await?
            .is_some()
        {
            return Err(Error::already_exists("you already have a profile"));
        }
        let txn = core.db.begin().await?;
        let counter = bump_revision(&txn, &principal).await?;
        if let Err(err) = repo::insert_profile(&txn, &person.to_string(), &fields, now).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::already_exists("you already have a profile"));
            }
            return Err(err.into());
        }
        let row = repo::ProfileRow {
            id: person.to_string(),
            legal_name: fields.legal_name.clone(),
            email: fields.email.clone(),
            phone: fields.phone.clone(),
            preferred_language: fields.preferred_language.code().to_owned(),
            email_notifications: fields.email_notifications,
            create_us: us(now),
            update_us: us(now),
            version: 1,
        };
        let name = format!("profiles/{person}");
        append_audit(
            &txn,
            &AuditRecord {
                actor: principal.clone(),
                action: "identity.profile.create".to_owned(),
                target: name.clone(),
                after_json: serde_json::to_string(&fields).map_err(Error::internal)?,
                request_id: request_id.clone(),
                ..AuditRecord::default()
            },
            now,
        )
        .await?;
        let revision = Core::revision(&principal, counter);
        let mut event = core.event(EventType::ProfileCreated, &principal, name, now);
        event.principals = vec![principal.clone()];
        event.revision = revision.clone();
        enqueue_event(&txn, crate::EVENT_STREAM, &event, now).await?;
        let family = core.start_family(&txn, person, &issuer, now).await?;
        let stored = pb::CreateProfileResponse {
            profile: Some(convert::profile(&row)),
            session: None,
            revision,
        };
        if let Some(mut r) = core
            .commit_write(txn, (&principal, METHOD, &request_id), &stored, now)
            .await?
        {
            let txn = core.db.begin().await?;
            let family = core.start_family(&txn, person, &issuer, now).await?;
            txn.commit().await?;
            r.session = Some(core.session(person, &family, Some(person), now).await?);
            return Ok(r);
        }
        tracing::info!(principal = %principal, "profile created");
        let mut response = stored;
        response.session = Some(core.session(person, &family, Some(person), now).await?);
        Ok(response)
    }

    async fn get_my_profile_inner(&self, caller: &Caller) -> Result<pb::Profile> {
        let core = &self.core;
        let profile = caller.require_profile()?;
        core.person(caller).await?;
        let row = repo::get_profile(&core.db, &profile.to_string())
            .await?
            .ok_or_else(|| Error::failed_precondition("create your profile first"))?;
        Ok(convert::profile(&row))
    }

    async fn update_profile_inner(
        &self,
        caller: &Caller,
        req: pb::UpdateMyProfileRequest,
    ) -> Result<pb::UpdateMyProfileResponse> {
        const FIELDS: [&str; 5] = [
            "legal_name",
            "email",
            "phone",
            "preferred_language",
            "email_notifications",
        ];
        let core = &self.core;
        let mut v = Vec::new();
        let request_id = parse_request_id(&req.request_id)
            .map_err(|e| v.push(e))
            .ok();
        let paths: Vec<String> = match &req.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths.clone(),
            _ => FIELDS.iter().map(|f| (*f).to_owned()).collect(),
        };
        for (i, p) in paths.iter().enumerate() {
            if !FIELDS.contains(&p.as_str()) {
                v.push(FieldViolation::new(
                    format!("update_mask.paths[{i}]"),
                    format!("`{p}` cannot be updated"),
                ));
            }
        }
        let Some(patch) = req.profile else {
            v.push(FieldViolation::new("profile", "is required"));
            return Err(Error::invalid(v));
        };
        if patch.etag.is_empty() {
            v.push(FieldViolation::new("profile.etag", "is required"));
        }
        let profile = caller.require_profile()?;
        core.person(caller).await?;
        let current = repo::get_profile(&core.db, &profile.to_string())
            .await?
            .ok_or_else(|| Error::failed_precondition("create your profile first"))?;
        let mut raw = convert::raw_from_row(&current);
        let incoming = convert::raw_fields(&patch);
        for p in &paths {
            match p.as_str() {
                "legal_name" => raw.legal_name = incoming.legal_name.clone(),
                "email" => raw.email = incoming.email.clone(),
                "phone" => raw.phone = incoming.phone.clone(),
                "preferred_language" => raw.preferred_language = incoming.preferred_language,
                "email_notifications" => raw.email_notifications = incoming.email_notifications,
                _ => {}
            }
        }
        let fields = raw.parse("profile.").map_err(|e| v.extend(e)).ok();
        violations(v)?;
        let (Some(request_id), Some(fields)) = (request_id, fields) else {
            return Err(Error::invalid(vec![]));
        };
        let principal = caller.principal.to_string();
        const METHOD: &str = "UpdateMyProfile";
        if let Some(r) = core.replay(&principal, METHOD, &request_id).await? {
            return Ok(r);
        }
        if patch.etag != current.version.to_string() {
            return Err(Error::aborted(
                "the profile changed since it was read (stale etag)",
            ));
        }
        let now = core.now();
        let txn = core.db.begin().await?;
        let counter = bump_revision(&txn, &principal).await?;
        if !repo::update_profile(&txn, &current.id, &fields, current.version, now).await? {
            return Err(Error::aborted(
                "the profile changed since it was read (stale etag)",
            ));
        }
        let name = format!("profiles/{}", current.id);
        append_audit(
            &txn,
            &AuditRecord {
                actor: principal.clone(),
                action: "identity.profile.update".to_owned(),
                target: name.clone(),
                before_json: serde_json::to_string(&current.fields()).map_err(Error::internal)?,
                after_json: serde_json::to_string(&fields).map_err(Error::internal)?,
                request_id: request_id.clone(),
                ..AuditRecord::default()
            },
            now,
        )
        .await?;
        let revision = Core::revision(&principal, counter);
        let mut event = core.event(EventType::ProfileUpdated, &principal, name, now);
        event.principals = vec![principal.clone()];
        event.revision = revision.clone();
        enqueue_event(&txn, crate::EVENT_STREAM, &event, now).await?;
        let row = repo::ProfileRow {
            legal_name: fields.legal_name.clone(),
            email: fields.email.clone(),
            phone: fields.phone.clone(),
            preferred_language: fields.preferred_language.code().to_owned(),
            email_notifications: fields.email_notifications,
            update_us: us(now),
            version: current.version + 1,
            ..current
        };
        let response = pb::UpdateMyProfileResponse {
            profile: Some(convert::profile(&row)),
            revision,
        };
        if let Some(r) = core
            .commit_write(txn, (&principal, METHOD, &request_id), &response, now)
            .await?
        {
            return Ok(r);
        }
        Ok(response)
    }

    async fn create_credential_inner(
        &self,
        caller: &Caller,
        req: pb::CreateMachineCredentialRequest,
    ) -> Result<pb::CreateMachineCredentialResponse> {
        let core = &self.core;
        let now = core.now();
        let mut v = Vec::new();
        let request_id = parse_request_id(&req.request_id)
            .map_err(|e| v.push(e))
            .ok();
        let bn = Bn9::parse_parent(&req.parent, "parent")
            .map_err(|e| v.push(e))
            .ok();
        let display_name = credential::parse_display_name(&req.display_name)
            .map_err(|e| v.push(FieldViolation::new("display_name", e)))
            .ok();
        let expire = match req
            .expire_time
            .as_ref()
            .map(ccp_platform::store::from_timestamp)
        {
            None => {
                v.push(FieldViolation::new("expire_time", "is required"));
                None
            }
            Some(None) => {
                v.push(FieldViolation::new("expire_time", "is out of range"));
                None
            }
            Some(Some(t)) => credential::check_expiry(t, now)
                .map_err(|e| v.push(FieldViolation::new("expire_time", e)))
                .ok()
                .map(|()| t),
        };
        violations(v)?;
        let (Some(request_id), Some(bn), Some(display_name), Some(expire)) =
            (request_id, bn, display_name, expire)
        else {
            return Err(Error::invalid(vec![]));
        };
        caller.require_profile()?;
        core.person(caller).await?;
        let principal = caller.principal.to_string();
        const METHOD: &str = "CreateMachineCredential";
        if let Some(r) = core.replay(&principal, METHOD, &request_id).await? {
            return Ok(r);
        }
        let secret = secrets::new_client_secret();
        let hasher = core.hasher.clone();
        let to_hash = secret.clone();
        let secret_hash = tokio::task::spawn_blocking(move || hasher.hash(&to_hash))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)?;
        let id = Uuid::now_v7().to_string();
        let row = repo::CredentialRow {
            id: id.clone(),
            business: bn.to_string(),
            display_name,
            secret_hash,
            creator: principal.clone(),
            create_us: us(now),
            expire_us: us(expire),
            revoke_us: None,
            revoke_reason: None,
            version: 1,
        };
        let txn = core.db.begin().await?;
        let counter = bump_revision(&txn, bn.as_str()).await?;
        repo::insert_credential(&txn, &row).await?;
        let name = credential_name(bn.as_str(), &id);
        append_audit(
            &txn,
            &AuditRecord {
                actor: principal.clone(),
                acting_for: Some(bn.to_string()),
                action: "identity.credential.create".to_owned(),
                target: name.clone(),
                after_json: credential_json(&row),
                request_id: request_id.clone(),
                ..AuditRecord::default()
            },
            now,
        )
        .await?;
        let revision = Core::revision(bn.as_str(), counter);
        let mut event = core.event(EventType::CredentialCreated, &principal, name, now);
        event.businesses = vec![bn.to_string()];
        event.principals = vec![format!("credential:{id}")];
        event.revision = revision.clone();
        enqueue_event(&txn, crate::EVENT_STREAM, &event, now).await?;
        let stored = pb::CreateMachineCredentialResponse {
            credential: Some(convert::credential(&row, now)),
            client_secret: String::new(),
            revision,
        };
        if let Some(r) = core
            .commit_write(txn, (&principal, METHOD, &request_id), &stored, now)
            .await?
        {
            return Ok(r);
        }
        tracing::info!(credential = %id, business = %bn, "machine credential created");
        Ok(pb::CreateMachineCredentialResponse {
            client_secret: secret,
            ..stored
        })
    }

    async fn list_credentials_inner(
        &self,
        caller: &Caller,
        req: pb::ListMachineCredentialsRequest,
    ) -> Result<pb::ListMachineCredentialsResponse> {
        let core = &self.core;
        let mut v = Vec::new();
        let bn = Bn9::parse_parent(&req.parent, "parent")
            .map_err(|e| v.push(e))
            .ok();
        let size = ccp_platform::paging::page_size(req.page_size, 50, 500)
            .map_err(|e| v.extend(e.violations().to_vec()))
            .ok();
        let after = ccp_platform::paging::decode_token(&req.page_token)
            .map_err(|e| v.extend(e.violations().to_vec()))
            .ok()
            .flatten();
        violations(v)?;
        let (Some(bn), Some(size)) = (bn, size) else {
            return Err(Error::invalid(vec![]));
        };
        core.check_caller(caller).await?;
        let now = core.now();
        let rows = repo::list_credentials(
            &core.db,
            bn.as_str(),
            after.as_deref(),
            (!req.show_inactive).then_some(now),
            size as u64 + 1,
        )
        .await?;
        let (rows, next) = ccp_platform::paging::finish_page(rows, size, |r| r.id.clone());
        Ok(pb::ListMachineCredentialsResponse {
            credentials: rows.iter().map(|r| convert::credential(r, now)).collect(),
            next_page_token: next,
        })
    }

    async fn revoke_credential_inner(
        &self,
        caller: &Caller,
        req: pb::RevokeMachineCredentialRequest,
    ) -> Result<pb::RevokeMachineCredentialResponse> {
        let core = &self.core;
        let mut v = Vec::new();
        let request_id = parse_request_id(&req.request_id)
            .map_err(|e| v.push(e))
            .ok();
        let name = convert::parse_credential_name(&req.name)
            .map_err(|e| v.push(e))
            .ok();
        let reason = credential::parse_reason(&req.reason)
            .map_err(|e| v.push(FieldViolation::new("reason", e)))
            .ok();
        violations(v)?;
        let (Some(request_id), Some((bn, id)), Some(reason)) = (request_id, name, reason) else {
            return Err(Error::invalid(vec![]));
        };
        caller.require_profile()?;
        core.person(caller).await?;
        let principal = caller.principal.to_string();
        const METHOD: &str = "RevokeMachineCredential";
        if let Some(r) = core.replay(&principal, METHOD, &request_id).await? {
            return Ok(r);
        }
        let current = repo::get_credential(&core.db, &id.to_string())
            .await?
            .filter(|c| c.business == bn.as_str())
            .ok_or_else(|| Error::not_found("no such machine credential under this business"))?;
        if current.revoke_us.is_some() {
            return Err(Error::failed_precondition(
                "the credential is already revoked",
            ));
        }
        let now = core.now();
        let txn = core.db.begin().await?;
        let counter = bump_revision(&txn, bn.as_str()).await?;
        if !repo::revoke_credential(&txn, &current.id, &reason, now).await? {
            return Err(Error::failed_precondition(
                "the credential is already revoked",
            ));
        }
        let after = repo::CredentialRow {
            revoke_us: Some(us(now)),
            revoke_reason: Some(reason.clone()),
            version: current.version + 1,
            ..current.clone()
        };
        let name = credential_name(bn.as_str(), &current.id);
        append_audit(
            &txn,
            &AuditRecord {
                actor: principal.clone(),
                acting_for: Some(bn.to_string()),
                action: "identity.credential.revoke".to_owned(),
                target: name.clone(),
                before_json: credential_json(&current),
                after_json: credential_json(&after),
                request_id: request_id.clone(),
                ..AuditRecord::default()
            },
            now,
        )
        .await?;
        let revision = Core::revision(bn.as_str(), counter);
        let mut event = core.event(EventType::CredentialRevoked, &principal, name, now);
        event.businesses = vec![bn.to_string()];
        event.principals = vec![format!("credential:{}", current.id)];
        event.revision = revision.clone();
        enqueue_event(&txn, crate::EVENT_STREAM, &event, now).await?;
        let response = pb::RevokeMachineCredentialResponse {
            credential: Some(convert::credential(&after, now)),
            revision,
        };
        if let Some(r) = core
            .commit_write(txn, (&principal, METHOD, &request_id), &response, now)
            .await?
        {
            return Ok(r);
        }
        tracing::info!(credential = %current.id, business = %bn, "machine credential revoked");
        Ok(response)
    }

    async fn issue_token_inner(
        &self,
        req: pb::IssueMachineTokenRequest,
    ) -> Result<pb::MachineToken> {
        let core = &self.core;
        let refused = || Error::unauthenticated("the client id or secret was refused");
        let client_id = Uuid::parse_str(&req.client_id)
            .ok()
            .filter(|u| u.hyphenated().to_string() == req.client_id)
            .ok_or_else(refused)?;
        if req.client_secret.is_empty() || req.client_secret.len() > 256 {
            return Err(refused());
        }
        let client = client_id.to_string();
        let m = &core.settings.machine_credentials;
        let now = core.now();
        // Count the attempt before checking the secret, atomically, so that
        // concurrent guesses are all counted and cannot outrun the lockout.
        let window = i64::try_from(m.failure_window_secs).unwrap_or(900) * 1_000_000;
        let attempt = repo::count_attempt(&core.db, &client, now, window).await?;
        if attempt.locked_until_us.is_some_and(|until| until > us(now)) {
            return Err(Error::resource_exhausted(
                "too many bad secrets for this client id; try again later",
            ));
        }
        let n = u32::try_from(attempt.failures).unwrap_or(u32::MAX);
        let throttle = credential::throttle(n, m.slowdown_after, m.slowdown_ms, m.lockout_after);
        let row = repo::get_credential(&core.db, &client).await?;
        if throttle == Throttle::Lock {
            let until = now + Duration::seconds(i64::try_from(m.lockout_secs).unwrap_or(900));
            let txn = core.db.begin().await?;
            repo::lock_client(&txn, &client, until, now).await?;
            append_audit(
                &txn,
                &AuditRecord {
                    actor: "system".to_owned(),
                    acting_for: row.as_ref().map(|r| r.business.clone()),
                    action: "identity.credential.lock".to_owned(),
                    target: row
                        .as_ref()
                        .map(|r| credential_name(&r.business, &r.id))
                        .unwrap_or_else(|| format!("clients/{client}")),
                    after_json: serde_json::json!({
                        "locked_until": until.to_rfc3339(),
                        "reason": "repeated bad secrets",
                    })
                    .to_string(),
                    request_id: Uuid::new_v4().to_string(),
                    ..AuditRecord::default()
                },
                now,
            )
            .await?;
            txn.commit().await?;
            tracing::warn!(client_id = %client, "client id locked after repeated bad secrets");
            return Err(Error::resource_exhausted(
                "too many bad secrets for this client id; try again later",
            ));
        }
        let hash = row
            .as_ref()
            .map_or_else(|| core.dummy_hash.clone(), |r| r.secret_hash.clone());
        let hasher = core.hasher.clone();
        let secret = req.client_secret;
        let good = tokio::task::spawn_blocking(move || hasher.verify(&secret, &hash))
            .await
            .map_err(Error::internal)?;
        let Some(row) = row.filter(|_| good) else {
            if let Throttle::SlowDown(delay) = throttle {
                tokio::time::sleep(delay).await;
            }
            tracing::info!(client_id = %client, attempt = n, "bad client secret");
            return Err(refused());
        };
        repo::forgive_attempt(&core.db, &client).await?;
        let state = CredentialState::at(
            from_us(row.expire_us),
            row.revoke_us.map(from_us),
            core.now(),
        );
        if state != CredentialState::Active {
            return Err(refused());
        }
        let now = core.now();
        let principal = Principal::Credential(client_id);
        let (token, exp) = core
            .mint(
                principal,
                None,
                None,
                Some(&row.business),
                now,
                // Never past the credential's own expiry.
                Some(from_us(row.expire_us)),
            )
            .await?;
        Ok(pb::MachineToken {
            access_token: token,
            expire_time: Some(timestamp(exp)),
            principal: principal.to_string(),
            business: row.business,
        })
    }

    async fn list_audit_inner(
        &self,
        caller: &Caller,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse> {
        let core = &self.core;
        let mut v = Vec::new();
        let scope = if req.parent == "profiles/me" {
            Some(AuditScope::Actor(caller.principal.to_string()))
        } else {
            Bn9::parse_parent(&req.parent, "parent")
                .map_err(|_| {
                    v.push(FieldViolation::new(
                        "parent",
                        "must be businesses/{bn9} or profiles/me",
                    ));
                })
                .ok()
                .map(|bn| AuditScope::Business(bn.to_string()))
        };
        let size = ccp_platform::paging::page_size(req.page_size, 50, 500)
            .map_err(|e| v.extend(e.violations().to_vec()))
            .ok();
        let after = ccp_platform::paging::decode_token(&req.page_token)
            .map_err(|e| v.extend(e.violations().to_vec()))
            .ok()
            .flatten();
        let after = match after.map(|a| a.parse::<i64>()) {
            None => Some(0),
            Some(Ok(seq)) => Some(seq),
            Some(Err(_)) => {
                v.push(FieldViolation::new(
                    "page_token",
                    "is not a token this list returned",
                ));
                None
            }
        };
        let start = match req
            .start_time
            .as_ref()
            .map(ccp_platform::store::from_timestamp)
        {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => {
                v.push(FieldViolation::new("start_time", "is out of range"));
                None
            }
        };
        violations(v)?;
        let (Some(scope), Some(size), Some(after)) = (scope, size, after) else {
            return Err(Error::invalid(vec![]));
        };
        core.check_caller(caller).await?;
        if matches!(scope, AuditScope::Business(_)) {
            caller.require_profile()?;
        }
        let rows = list_audit(&core.db, &scope, after, start, size as u64 + 1).await?;
        let (rows, next) = ccp_platform::paging::finish_page(rows, size, |r| r.seq.to_string());
        Ok(pb::ListAuditEventsResponse {
            events: rows.iter().map(|r| r.to_proto(&req.parent)).collect(),
            next_page_token: next,
        })
    }
}

/// The internal `IdentityFacts` service.
#[derive(Debug, Clone)]
pub struct IdentityFactsApi {
    core: Arc<Core>,
}

impl IdentityFactsApi {
    /// Returns the service over the shared core.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl IdentityFacts for IdentityFactsApi {
    #[tracing::instrument(skip_all, fields(count = request.get_ref().profile_ids.len()), err)]
    async fn get_profiles(
        &self,
        request: Request<pb::GetProfilesRequest>,
    ) -> Reply<pb::GetProfilesResponse> {
        reply(self.get_profiles_inner(request.into_inner()).await)
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_credential(
        &self,
        request: Request<pb::GetCredentialRequest>,
    ) -> Reply<pb::CredentialFacts> {
        reply(self.get_credential_inner(request.into_inner()).await)
    }
}

impl IdentityFactsApi {
    async fn get_profiles_inner(
        &self,
        req: pb::GetProfilesRequest,
    ) -> Result<pb::GetProfilesResponse> {
        if req.profile_ids.len() > 1000 {
            return Err(Error::invalid_field(
                "profile_ids",
                "at most 1000 ids per call",
            ));
        }
        let mut v = Vec::new();
        let mut ids: Vec<String> = Vec::with_capacity(req.profile_ids.len());
        for (i, id) in req.profile_ids.iter().enumerate() {
            match Uuid::parse_str(id) {
                Ok(u) => {
                    let canonical = u.to_string();
                    if !ids.contains(&canonical) {
                        ids.push(canonical);
                    }
                }
                Err(_) => v.push(FieldViolation::new(
                    format!("profile_ids[{i}]"),
                    "must be a uuid",
                )),
            }
        }
        violations(v)?;
        let rows = repo::get_profiles(&self.core.db, &ids).await?;
        let found: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let missing = ids
            .iter()
            .filter(|id| !found.contains(id.as_str()))
            .cloned()
            .collect();
        Ok(pb::GetProfilesResponse {
            profiles: rows.iter().map(convert::summary).collect(),
            missing,
        })
    }

    async fn get_credential_inner(
        &self,
        req: pb::GetCredentialRequest,
    ) -> Result<pb::CredentialFacts> {
        let id = Uuid::parse_str(&req.credential_id)
            .map_err(|_| Error::invalid_field("credential_id", "must be a uuid"))?;
        let Some(row) = repo::get_credential(&self.core.db, &id.to_string()).await? else {
            return Ok(pb::CredentialFacts::default());
        };
        Ok(pb::CredentialFacts {
            exists: true,
            principal: format!("credential:{}", row.id),
            business: row.business.clone(),
            expire_time: Some(timestamp(from_us(row.expire_us))),
            revoked: row.revoke_us.is_some(),
            revoke_time: row.revoke_us.map(|v| timestamp(from_us(v))),
            display_name: row.display_name,
        })
    }
}
