//! Uncached reads from the facts services: what the cache loads, what
//! Explain reads bypassing it, and the rare facts a write's need asks for.

use ccp_platform::auth::Principal;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::delegation::v1 as del;
use ccp_types::Bn9;

use super::{FactsCache, FactsError};

impl FactsCache {
    /// Reads role facts from accounts, bypassing the caches (Explain uses it).
    pub async fn fetch_role_facts(&self, p: &Principal) -> Result<acc::RoleFacts, FactsError> {
        let mut client = self.inner.accounts.clone();
        client
            .get_role_facts(acc::GetRoleFactsRequest {
                principal: p.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(upstream("accounts"))
    }

    /// Reads a principal's assignment facts for one client from delegation,
    /// bypassing the caches.
    pub async fn fetch_assignment_facts(
        &self,
        p: &Principal,
        client: &Bn9,
    ) -> Result<del::AssignmentFacts, FactsError> {
        let mut delegation = self.inner.delegation.clone();
        delegation
            .get_assignment_facts(del::GetAssignmentFactsRequest {
                principal: p.to_string(),
                client: client.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(upstream("delegation"))
    }

    /// Reads pair facts from delegation, bypassing the caches.
    pub async fn fetch_pair_facts(
        &self,
        provider: &Bn9,
        client: &Bn9,
    ) -> Result<del::PairFacts, FactsError> {
        let mut c = self.inner.delegation.clone();
        c.get_pair_facts(del::GetPairFactsRequest {
            provider: provider.to_string(),
            client: client.to_string(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(upstream("delegation"))
    }

    /// Reads one page of a provider's clients from delegation (uncached).
    pub async fn list_clients(
        &self,
        provider: &Bn9,
        page_size: i32,
        page_token: String,
    ) -> Result<del::ListClientsResponse, FactsError> {
        let mut c = self.inner.delegation.clone();
        c.list_clients(del::ListClientsRequest {
            provider: provider.to_string(),
            page_size,
            page_token,
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(upstream("delegation"))
    }

    /// Reads one page of the clients `principal` is assigned to through
    /// `provider`, with each pair's relationships, from delegation (uncached).
    pub async fn list_assigned_clients(
        &self,
        principal: &Principal,
        provider: &Bn9,
        page_size: i32,
        page_token: String,
    ) -> Result<del::ListAssignedClientsResponse, FactsError> {
        let mut c = self.inner.delegation.clone();
        c.list_assigned_clients(del::ListAssignedClientsRequest {
            principal: principal.to_string(),
            provider: provider.to_string(),
            page_size,
            page_token,
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(upstream("delegation"))
    }

    /// Reads several businesses' facts from accounts in one call (uncached),
    /// in the order asked.
    pub async fn batch_business_facts(
        &self,
        businesses: &[Bn9],
    ) -> Result<Vec<acc::BusinessFacts>, FactsError> {
        let mut c = self.inner.accounts.clone();
        c.batch_get_business_facts(acc::BatchGetBusinessFactsRequest {
            businesses: businesses.iter().map(ToString::to_string).collect(),
        })
        .await
        .map(|r| r.into_inner().businesses)
        .map_err(upstream("accounts"))
    }

    /// Reads one relationship request's facts from delegation (uncached; a
    /// rare write needs them). None when the request is unknown or its name
    /// malformed: a deny, not an outage.
    pub async fn request_facts(&self, name: &str) -> Result<Option<del::RequestFacts>, FactsError> {
        let mut c = self.inner.delegation.clone();
        let answer = c
            .get_request_facts(del::GetRequestFactsRequest {
                name: name.to_owned(),
            })
            .await;
        absent_as_none(answer, "delegation")
    }

    /// Reads one employee group's facts from accounts (uncached; a rare write
    /// needs them). None when the group is unknown or its name malformed.
    pub async fn employee_group_facts(
        &self,
        name: &str,
    ) -> Result<Option<acc::EmployeeGroupFacts>, FactsError> {
        let mut c = self.inner.accounts.clone();
        let answer = c
            .get_employee_group_facts(acc::GetEmployeeGroupFactsRequest {
                name: name.to_owned(),
            })
            .await;
        absent_as_none(answer, "accounts")
    }

    /// Reads a business's facts from accounts (uncached).
    pub async fn business_facts(&self, bn: &Bn9) -> Result<acc::BusinessFacts, FactsError> {
        let mut c = self.inner.accounts.clone();
        c.get_business_facts(acc::GetBusinessFactsRequest {
            business: bn.to_string(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(upstream("accounts"))
    }
}

/// Returns the facts of a named resource read uncached: None when the service
/// answers NOT_FOUND or INVALID_ARGUMENT (no such resource, or a name that
/// cannot be one — the caller denies), UNAVAILABLE for any other error.
fn absent_as_none<T>(
    answer: Result<tonic::Response<T>, tonic::Status>,
    service: &'static str,
) -> Result<Option<T>, FactsError> {
    match answer {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            Ok(None)
        }
        Err(status) => Err(upstream(service)(status)),
    }
}

fn upstream(service: &'static str) -> impl Fn(tonic::Status) -> FactsError {
    move |status| FactsError::Unavailable(format!("{service}: {}", status.message()))
}
