//! Who receives a notice, and how: the businesses' managers (accounts) and the people's addresses,
//! languages and choices (identity), asked over their internal facts APIs.

use std::collections::BTreeMap;

use ccp_platform::auth::InternalClientInterceptor;
use ccp_platform::balance::BalancedChannel;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_facts_client::IdentityFactsClient;
use tonic::service::interceptor::InterceptedService;

use crate::render::Language;

/// What a notice needs to know of a business.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Business {
    /// Its legal name; empty when it has not registered.
    pub name: String,
    /// The principals of its business account managers (none when not registered).
    pub managers: Vec<String>,
}

/// What a notice needs to know of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// `person:<uuid>`.
    pub principal: String,
    /// Legal name.
    pub name: String,
    /// E-mail address (may be empty: then nothing is sent).
    pub email: String,
    /// The language notices to them are written in.
    pub language: Language,
    /// Whether they opted in to e-mail notifications.
    pub email_notifications: bool,
    /// Their choice per kind of notice; a kind without one follows `email_notifications`.
    pub choices: BTreeMap<String, bool>,
}

impl Person {
    /// Returns whether they want notices of `kind`: their choice for it, else the opt-in.
    pub fn wants(&self, kind: &str) -> bool {
        self.choices
            .get(kind)
            .copied()
            .unwrap_or(self.email_notifications)
    }
}

/// Where recipients are looked up.
#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Returns the business `bn` (a BN9); an unknown one is an empty [`Business`].
    async fn business(&self, bn: &str) -> anyhow::Result<Business>;

    /// Returns the people among `principals` that have a profile.
    async fn people(&self, principals: &[String]) -> anyhow::Result<Vec<Person>>;
}

type Intercepted = InterceptedService<BalancedChannel, InternalClientInterceptor>;

/// The [`Directory`] of a deployment: accounts' and identity's internal facts APIs.
#[derive(Debug, Clone)]
pub struct GrpcDirectory {
    accounts: AccountFactsClient<Intercepted>,
    identity: IdentityFactsClient<Intercepted>,
}

impl GrpcDirectory {
    /// Returns a directory over the two services' internal channels.
    pub fn new(accounts: Intercepted, identity: Intercepted) -> Self {
        Self {
            accounts: AccountFactsClient::new(accounts),
            identity: IdentityFactsClient::new(identity),
        }
    }
}

#[async_trait::async_trait]
impl Directory for GrpcDirectory {
    async fn business(&self, bn: &str) -> anyhow::Result<Business> {
        let facts = self
            .accounts
            .clone()
            .get_business_facts(acc::GetBusinessFactsRequest {
                business: bn.to_owned(),
            })
            .await?
            .into_inner();
        Ok(Business {
            name: facts.legal_name,
            managers: facts.business_managers,
        })
    }

    async fn people(&self, principals: &[String]) -> anyhow::Result<Vec<Person>> {
        let ids = principals
            .iter()
            .filter_map(|p| p.strip_prefix("person:"))
            .map(str::to_owned)
            .collect::<Vec<_>>();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self
            .identity
            .clone()
            .get_profiles(idn::GetProfilesRequest { profile_ids: ids })
            .await?
            .into_inner();
        Ok(found
            .profiles
            .into_iter()
            .map(|p| Person {
                principal: p.principal,
                name: p.legal_name,
                email: p.email,
                language: Language::from_proto(p.preferred_language),
                email_notifications: p.email_notifications,
                choices: p
                    .notification_choices
                    .into_iter()
                    .map(|c| (c.kind, c.enabled))
                    .collect(),
            })
            .collect())
    }
}
