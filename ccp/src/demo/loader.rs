//! The demo loader: the registry through accounts' internal ImportRegistry,
//! then the cast through the gateway as the people themselves, each write
//! with its fixed request id.

use std::time::Duration;

use anyhow::Context as _;
use ccp_platform::auth::{INTERNAL_TOKEN_HEADER, InternalTokens, REVISION_HEADER};
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::account_facts_client::AccountFactsClient;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::{ProgramRole, Role, RoleGrants};
use ccp_proto::delegation::v1 as del;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use tonic::transport::Channel;

use crate::settings::SuiteSettings;

use super::{
    ABC, ALICE, Actor, BOB, CALL_TIMEOUT, ERIN, ERIN_NOTE, FRANK, FRANK_NOTE, IDA, ITN, ITN_NOTE,
    IVAN, PAULA, REGISTRY_JSON, SETTLE,
};

/// What a load produced: who is who, and the requests left pending.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// `(user, principal)` of every cast member, in [`super::CAST`] order.
    pub principals: Vec<(&'static str, String)>,
    /// The pending employee requests of ABC (Erin's, Frank's), by resource name.
    pub pending_employee_requests: Vec<String>,
    /// ITN's relationship request as ABC sees it (`businesses/123456782/receivedRequests/…`).
    pub received_request: String,
    /// How many registry records the import accepted.
    pub registry_records: i32,
}

/// A signed-in person with a profile.
#[derive(Debug, Clone)]
struct Person {
    principal: String,
    token: String,
}

/// Loads the demo into a running suite: the registry through accounts'
/// internal endpoint, the cast through the gateway.
#[derive(Debug)]
pub struct Loader {
    settings: SuiteSettings,
    internal: InternalTokens,
    gateway: Channel,
    accounts: Channel,
    gateway_url: String,
}

/// Returns the URL a client should call for a listen address.
pub fn endpoint_of(listen: &str) -> String {
    let listen = listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "127.0.0.1:");
    format!("http://{listen}")
}

fn grants(bam: bool, roles: &[(String, Role)]) -> RoleGrants {
    RoleGrants {
        business_manager: bam,
        program_roles: roles
            .iter()
            .map(|(p, r)| ProgramRole {
                program_account: p.clone(),
                role: *r as i32,
            })
            .collect(),
    }
}

/// True for the answers worth retrying while the suite settles (a gateway
/// whose facts have not caught up yet, delegation not yet aware of a registration).
fn settling(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::PermissionDenied
            | tonic::Code::FailedPrecondition
            | tonic::Code::NotFound
            | tonic::Code::Unavailable
    )
}

impl Loader {
    /// Returns a loader for the suite at `gateway` (public calls) and
    /// `accounts` (the internal registry import); the internal key and the
    /// development issuer's key come from `settings` (or its data directory,
    /// as `ccp dev-token` and `ccp registry import` find them).
    pub fn new(settings: &SuiteSettings, gateway: &str, accounts: &str) -> anyhow::Result<Self> {
        let internal = settings.internal_tokens()?;
        Ok(Self {
            internal,
            gateway: ccp_platform::context::lazy_channel_with(
                gateway,
                CALL_TIMEOUT,
                &settings.common.upstream,
            )?,
            accounts: ccp_platform::context::lazy_channel_with(
                accounts,
                Duration::from_secs(60),
                &settings.common.upstream,
            )?,
            gateway_url: gateway.to_owned(),
            settings: settings.clone(),
        })
    }

    /// Returns the gateway URL the loader calls.
    pub fn gateway_url(&self) -> &str {
        &self.gateway_url
    }

    /// Wraps `msg` with the caller's bearer token and, when given, the
    /// revision its answer must reflect.
    fn req<T>(
        &self,
        msg: T,
        who: Option<&Person>,
        revision: Option<&str>,
    ) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(msg);
        request.set_timeout(CALL_TIMEOUT);
        if let Some(who) = who {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {}", who.token).parse()?);
        }
        if let Some(revision) = revision.filter(|r| !r.is_empty()) {
            request
                .metadata_mut()
                .insert(REVISION_HEADER, revision.parse()?);
        }
        Ok(request)
    }

    /// Upserts the demo registry through accounts' ImportRegistry (an
    /// idempotent upsert; a fresh request id so a changed file is applied).
    async fn import_registry(&self, records: &[acc::RegistryRecord]) -> anyhow::Result<i32> {
        let mut request = tonic::Request::new(acc::ImportRegistryRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            records: records.to_vec(),
        });
        request.metadata_mut().insert(
            INTERNAL_TOKEN_HEADER,
            self.internal.mint("platform:ccp-demo").parse()?,
        );
        let response = AccountFactsClient::new(self.accounts.clone())
            .import_registry(request)
            .await
            .context("ImportRegistry (accounts' internal endpoint)")?
            .into_inner();
        if let Some(rejected) = response.rejected.first() {
            anyhow::bail!(
                "the demo registry record {} was rejected: {}",
                rejected.bn9,
                rejected.reason
            );
        }
        Ok(response.accepted)
    }

    /// Signs `actor` in with the development issuer and creates its profile
    /// the first time.
    async fn person(&self, actor: &Actor) -> anyhow::Result<Person> {
        let id_token = crate::identity_cmd::dev_token(
            &self.settings,
            Some(&self.settings.data_dir),
            actor.user,
            Duration::from_secs(300),
        )?;
        let mut identity = IdentityClient::new(self.gateway.clone());
        let session = identity
            .sign_in(self.req(idn::SignInRequest { id_token }, None, None)?)
            .await
            .with_context(|| format!("signing {} in", actor.user))?
            .into_inner();
        if !session.profile_required {
            return Ok(Person {
                principal: session.principal,
                token: session.access_token,
            });
        }
        let first = Person {
            principal: session.principal,
            token: session.access_token,
        };
        let created = identity
            .create_profile(self.req(
                idn::CreateProfileRequest {
                    request_id: format!("demo-profile-{}", actor.user),
                    profile: Some(idn::Profile {
                        legal_name: actor.legal_name.to_owned(),
                        email: actor.email.to_owned(),
                        preferred_language: idn::Language::En as i32,
                        email_notifications: true,
                        ..Default::default()
                    }),
                },
                Some(&first),
                None,
            )?)
            .await
            .with_context(|| format!("creating {}'s profile", actor.user))?
            .into_inner();
        let session = created
            .session
            .context("CreateProfile returned no session")?;
        Ok(Person {
            principal: session.principal,
            token: session.access_token,
        })
    }

    /// Registers `bn` (a record of `records`) with `bam` as its first BAM;
    /// returns the revision of the registration. A business the caller
    /// already belongs to counts as registered.
    async fn register(
        &self,
        bam: &Person,
        records: &[acc::RegistryRecord],
        bn: &str,
        terms_version: &str,
    ) -> anyhow::Result<String> {
        let record = records
            .iter()
            .find(|r| r.bn9 == bn)
            .with_context(|| format!("{bn} is not in the demo registry"))?;
        let mut accounts = AccountsClient::new(self.gateway.clone());
        let answer = accounts
            .register_business(
                self.req(
                    acc::RegisterBusinessRequest {
                        request_id: format!("demo-register-{bn}"),
                        program_account: format!("{bn}RM0001"),
                        legal_name: record.legal_name.clone(),
                        address: record.address.clone(),
                        answers: record
                            .known_facts
                            .iter()
                            .filter_map(|f| {
                                f.question.as_ref().map(|q| acc::KnownFactAnswer {
                                    question_id: q.id.clone(),
                                    answer: f.answer.clone(),
                                })
                            })
                            .collect(),
                        accepted_terms_version: terms_version.to_owned(),
                    },
                    Some(bam),
                    None,
                )?,
            )
            .await;
        match answer {
            Ok(response) => Ok(response.into_inner().revision),
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                let mine = accounts
                    .list_my_businesses(self.req(
                        acc::ListMyBusinessesRequest {
                            page_size: 500,
                            page_token: String::new(),
                        },
                        Some(bam),
                        None,
                    )?)
                    .await?
                    .into_inner();
                anyhow::ensure!(
                    mine.businesses
                        .iter()
                        .any(|b| b.business == format!("businesses/{bn}") && b.business_manager),
                    "{bn} is already registered by someone else than the demo's BAM"
                );
                Ok(String::new())
            }
            Err(status) => Err(status).with_context(|| format!("registering {bn}")),
        }
    }

    /// `employee` asks `bn` for access with `note`; returns the request and
    /// the revision of the write.
    async fn ask(
        &self,
        employee: &Person,
        bn: &str,
        note: &str,
        step: &str,
    ) -> anyhow::Result<(acc::EmployeeRequest, String)> {
        let response = AccountsClient::new(self.gateway.clone())
            .request_employee_access(self.req(
                acc::RequestEmployeeAccessRequest {
                    request_id: format!("demo-{step}-request"),
                    parent: format!("businesses/{bn}"),
                    note: note.to_owned(),
                },
                Some(employee),
                None,
            )?)
            .await
            .with_context(|| format!("{step}: requesting access to {bn}"))?
            .into_inner();
        Ok((
            response
                .request
                .context("RequestEmployeeAccess returned no request")?,
            response.revision,
        ))
    }

    /// `manager` approves `request` with `grant`, retried (bounded) while
    /// the gateway's facts catch up with `revision`.
    async fn approve(
        &self,
        manager: &Person,
        request: &str,
        grant: RoleGrants,
        revision: &str,
        step: &str,
    ) -> anyhow::Result<String> {
        // Hand-written on purpose: a bounded wait for facts to settle (a deadline
        // and a fixed pause, FAILED_PRECONDITION retried), not an outage backoff.
        let deadline = tokio::time::Instant::now() + SETTLE;
        let mut accounts = AccountsClient::new(self.gateway.clone());
        for attempt in 0u32.. {
            let answer = accounts
                .approve_employee_request(self.req(
                    acc::ApproveEmployeeRequestRequest {
                        request_id: format!("demo-{step}-approve"),
                        name: request.to_owned(),
                        grants: Some(grant.clone()),
                    },
                    Some(manager),
                    Some(revision),
                )?)
                .await;
            match answer {
                Ok(response) => return Ok(response.into_inner().revision),
                Err(status)
                    if settling(&status)
                        && tokio::time::Instant::now() < deadline
                        && attempt < 200 =>
                {
                    tracing::debug!(%status, step, "approval not yet possible; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => return Err(status).with_context(|| format!("{step}: approving")),
            }
        }
        anyhow::bail!("{step}: approval retries exhausted")
    }

    /// Loads the registry and the cast; waits (bounded) until ABC sees ITN's
    /// request among its received requests.
    pub async fn load(&self) -> anyhow::Result<Loaded> {
        let records = crate::registry_cmd::records_from_json(REGISTRY_JSON)
            .context("the embedded demo registry")?;
        let registry_records = self.import_registry(&records).await?;
        let terms = AccountsClient::new(self.gateway.clone())
            .get_terms_and_conditions(self.req(acc::GetTermsAndConditionsRequest {}, None, None)?)
            .await
            .with_context(|| format!("GetTermsAndConditions at {}", self.gateway_url))?
            .into_inner()
            .version;

        // ITN Logistics registers first, asks ABC (not yet registered) for a
        // relationship, and brings in its broker employee.
        let ivan = self.person(&IVAN).await?;
        let itn_revision = self.register(&ivan, &records, ITN, &terms).await?;
        let sent = self.send_itn_request(&ivan, &itn_revision).await?;
        let ida = self.person(&IDA).await?;
        let (ida_request, revision) = self
            .ask(
                &ida,
                ITN,
                "Hi, I file the customs entries for our clients",
                "itn-ida",
            )
            .await?;
        self.approve(
            &ivan,
            &ida_request.name,
            grants(false, &[(format!("{ITN}RM0001"), Role::Editor)]),
            &revision,
            "itn-ida",
        )
        .await?;

        // ABC Windows & Doors registers, adds a second BAM and a PAM for RM0002.
        let alice = self.person(&ALICE).await?;
        let abc_revision = self.register(&alice, &records, ABC, &terms).await?;
        let bob = self.person(&BOB).await?;
        let (bob_request, revision) = self
            .ask(
                &bob,
                ABC,
                "Hi, I am the second Business Account Manager",
                "abc-bob",
            )
            .await?;
        let revision = if revision.is_empty() {
            abc_revision
        } else {
            revision
        };
        self.approve(
            &alice,
            &bob_request.name,
            grants(true, &[]),
            &revision,
            "abc-bob",
        )
        .await?;
        let paula = self.person(&PAULA).await?;
        let (paula_request, revision) = self
            .ask(
                &paula,
                ABC,
                "Hi, I manage the ABC Doors program account",
                "abc-paula",
            )
            .await?;
        self.approve(
            &alice,
            &paula_request.name,
            grants(false, &[(format!("{ABC}RM0002"), Role::Pam)]),
            &revision,
            "abc-paula",
        )
        .await?;

        // Two employees wait for an answer.
        let erin = self.person(&ERIN).await?;
        let (erin_request, _) = self.ask(&erin, ABC, ERIN_NOTE, "abc-erin").await?;
        let frank = self.person(&FRANK).await?;
        let (frank_request, _) = self.ask(&frank, ABC, FRANK_NOTE, "abc-frank").await?;

        let received_request = self.wait_until_received(&alice, &sent.id).await?;
        Ok(Loaded {
            principals: vec![
                (IVAN.user, ivan.principal),
                (IDA.user, ida.principal),
                (ALICE.user, alice.principal),
                (BOB.user, bob.principal),
                (PAULA.user, paula.principal),
                (ERIN.user, erin.principal),
                (FRANK.user, frank.principal),
            ],
            pending_employee_requests: vec![erin_request.name, frank_request.name],
            received_request,
            registry_records,
        })
    }

    /// ITN's BAM asks ABC for a relationship (any program).
    async fn send_itn_request(
        &self,
        ivan: &Person,
        revision: &str,
    ) -> anyhow::Result<del::RelationshipRequest> {
        // Hand-written on purpose: a bounded wait for facts to settle (a deadline
        // and a fixed pause, FAILED_PRECONDITION retried), not an outage backoff.
        let deadline = tokio::time::Instant::now() + SETTLE;
        let mut delegation = DelegationClient::new(self.gateway.clone());
        for attempt in 0u32.. {
            let answer = delegation
                .send_relationship_request(self.req(
                    del::SendRelationshipRequestRequest {
                        request_id: "demo-itn-asks-abc".to_owned(),
                        parent: format!("businesses/{ITN}"),
                        client: ABC.to_owned(),
                        program_accounts: Vec::new(),
                        note: ITN_NOTE.to_owned(),
                    },
                    Some(ivan),
                    Some(revision),
                )?)
                .await;
            match answer {
                Ok(response) => {
                    return response
                        .into_inner()
                        .request
                        .context("SendRelationshipRequest returned no request");
                }
                Err(status)
                    if settling(&status)
                        && tokio::time::Instant::now() < deadline
                        && attempt < 200 =>
                {
                    tracing::debug!(%status, "relationship request not yet possible; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => {
                    return Err(status).context("ITN's relationship request to ABC");
                }
            }
        }
        anyhow::bail!("relationship request retries exhausted")
    }

    /// Waits (bounded) until ABC's received requests hold request `id`
    /// (delegation learns of ABC's registration from accounts' events).
    async fn wait_until_received(&self, alice: &Person, id: &str) -> anyhow::Result<String> {
        // Hand-written on purpose: a bounded wait for facts to settle (a deadline
        // and a fixed pause, FAILED_PRECONDITION retried), not an outage backoff.
        let deadline = tokio::time::Instant::now() + SETTLE;
        let mut delegation = DelegationClient::new(self.gateway.clone());
        let mut last = String::from("not listed yet");
        for _ in 0..400u32 {
            let answer = delegation
                .list_received_requests(self.req(
                    del::ListReceivedRequestsRequest {
                        parent: format!("businesses/{ABC}"),
                        state: del::RelationshipRequestState::Unspecified as i32,
                        page_size: 500,
                        page_token: String::new(),
                    },
                    Some(alice),
                    None,
                )?)
                .await;
            match answer {
                Ok(list) => {
                    if let Some(found) = list.into_inner().requests.into_iter().find(|r| r.id == id)
                    {
                        return Ok(found.name);
                    }
                }
                Err(status) if settling(&status) => last = status.to_string(),
                Err(status) => return Err(status).context("listing ABC's received requests"),
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "ITN's request did not reach ABC's received requests within {} s ({last})",
            SETTLE.as_secs()
        )
    }
}
