//! tonic handlers of `ccp.identity.v1.Identity` and `IdentityFacts`: each
//! parses its request (see `convert`), calls its use case in `app`, and turns
//! errors into `Status`.

mod convert;
mod limits;

use ccp_types::limits::{ID_TOKEN_MAX_CHARS, NAME_MAX_CHARS, SECRET_MAX_CHARS};

use std::sync::Arc;

use ccp_platform::auth::caller;
use ccp_platform::error::Result;
use ccp_proto::identity::v1 as pb;
use ccp_proto::identity::v1::identity_facts_server::IdentityFacts;
use ccp_proto::identity::v1::identity_server::Identity;
use tonic::{Request, Response, Status};

use crate::app::{Core, audit, credentials, facts, keys, profiles, sessions};

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
    #[tracing::instrument(skip_all)]
    async fn sign_in(&self, request: Request<pb::SignInRequest>) -> Reply<pb::Session> {
        limits::credential(&request.get_ref().id_token, ID_TOKEN_MAX_CHARS)?;
        reply(sessions::sign_in(&self.core, &request.get_ref().id_token).await)
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Reply<pb::Session> {
        limits::credential(&request.get_ref().refresh_token, SECRET_MAX_CHARS)?;
        reply(sessions::refresh(&self.core, &request.get_ref().refresh_token).await)
    }

    #[tracing::instrument(skip_all)]
    async fn sign_out(&self, request: Request<pb::SignOutRequest>) -> Reply<pb::SignOutResponse> {
        limits::check(request.get_ref())?;
        let caller = caller(&request)?.clone();
        let r = async {
            let request_id = convert::sign_out(request.get_ref())?;
            sessions::sign_out(&self.core, &caller, request_id).await
        };
        reply(r.await)
    }

    #[tracing::instrument(skip_all)]
    async fn get_signing_keys(
        &self,
        _request: Request<pb::GetSigningKeysRequest>,
    ) -> Reply<pb::SigningKeys> {
        reply(keys::signing_keys(&self.core).await)
    }

    #[tracing::instrument(skip_all)]
    async fn create_profile(
        &self,
        request: Request<pb::CreateProfileRequest>,
    ) -> Reply<pb::CreateProfileResponse> {
        limits::check(request.get_ref())?;
        let caller = caller(&request)?.clone();
        let r = async {
            let (request_id, fields) = convert::create_profile(request.get_ref())?;
            profiles::create(&self.core, &caller, request_id, fields).await
        };
        reply(r.await)
    }

    #[tracing::instrument(skip_all)]
    async fn get_my_profile(
        &self,
        request: Request<pb::GetMyProfileRequest>,
    ) -> Reply<pb::Profile> {
        let caller = caller(&request)?.clone();
        reply(profiles::get_mine(&self.core, &caller).await)
    }

    #[tracing::instrument(skip_all)]
    async fn update_my_profile(
        &self,
        request: Request<pb::UpdateMyProfileRequest>,
    ) -> Reply<pb::UpdateMyProfileResponse> {
        limits::check(request.get_ref())?;
        let caller = caller(&request)?.clone();
        let r = async {
            let update = convert::update_profile(request.into_inner())?;
            profiles::update_mine(&self.core, &caller, update).await
        };
        reply(r.await)
    }

    #[tracing::instrument(skip_all)]
    async fn create_machine_credential(
        &self,
        request: Request<pb::CreateMachineCredentialRequest>,
    ) -> Reply<pb::CreateMachineCredentialResponse> {
        limits::check(request.get_ref())?;
        let caller = caller(&request)?.clone();
        let r = async {
            let new = convert::create_credential(request.get_ref(), self.core.now())?;
            credentials::create(&self.core, &caller, new).await
        };
        reply(r.await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_machine_credentials(
        &self,
        request: Request<pb::ListMachineCredentialsRequest>,
    ) -> Reply<pb::ListMachineCredentialsResponse> {
        limits::check(request.get_ref())?;
        let caller = caller(&request)?.clone();
        let r = async {
            let page = convert::list_credentials(
                request.get_ref(),
                self.core.page_key(),
                &caller.principal.to_string(),
            )?;
            credentials::list(&self.core, &caller, page).await
        };
        reply(r.await)
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_machine_credential(
        &self,
        request: Request<pb::RevokeMachineCredentialRequest>,
    ) -> Reply<pb::RevokeMachineCredentialResponse> {
        limits::check(request.get_ref())?;
        let caller = caller(&request)?.clone();
        let r = async {
            let (request_id, bn, id, reason) = convert::revoke_credential(request.get_ref())?;
            credentials::revoke(&self.core, &caller, request_id, bn, id, reason).await
        };
        reply(r.await)
    }

    #[tracing::instrument(skip_all)]
    async fn issue_machine_token(
        &self,
        request: Request<pb::IssueMachineTokenRequest>,
    ) -> Reply<pb::MachineToken> {
        limits::credential(&request.get_ref().client_id, NAME_MAX_CHARS)?;
        limits::credential(&request.get_ref().client_secret, SECRET_MAX_CHARS)?;
        let req = request.into_inner();
        reply(credentials::issue_token(&self.core, &req.client_id, req.client_secret).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Reply<pb::ListAuditEventsResponse> {
        limits::check(request.get_ref())?;
        let caller = caller(&request)?.clone();
        let r = async {
            let page = convert::list_audit(
                request.get_ref(),
                self.core.page_key(),
                &caller.principal.to_string(),
            )?;
            audit::list(&self.core, &caller, page).await
        };
        reply(r.await)
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
    #[tracing::instrument(skip_all, fields(count = request.get_ref().profile_ids.len()))]
    async fn get_profiles(
        &self,
        request: Request<pb::GetProfilesRequest>,
    ) -> Reply<pb::GetProfilesResponse> {
        let r = async {
            let ids = convert::profile_ids(request.get_ref())?;
            facts::get_profiles(&self.core, &ids).await
        };
        reply(r.await)
    }

    #[tracing::instrument(skip_all)]
    async fn get_credential(
        &self,
        request: Request<pb::GetCredentialRequest>,
    ) -> Reply<pb::CredentialFacts> {
        let r = async {
            let id = convert::credential_id(request.get_ref())?;
            facts::get_credential(&self.core, id).await
        };
        reply(r.await)
    }

    #[tracing::instrument(skip_all, fields(after = request.get_ref().after))]
    async fn list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Reply<pb::ListRevocationsResponse> {
        let body = request.get_ref();
        reply(facts::list_revocations(&self.core, body.after, body.page_size).await)
    }
}
