//! What the suite does to a deployment, all through the gateway: the cast
//! (a business, its BAM, and the people and credentials to revoke), the
//! writes (each with a request id, retried with the same id while the answer
//! is a transient failure), the checks, the revocations and the probes that
//! keep presenting what was revoked, and reading every acknowledged write
//! back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{Action, Address, ProgramRole, Role, RoleGrants};
use ccp_proto::delegation::v1 as del;
use ccp_proto::gateway::v1 as gw;
use ccp_proto::identity::v1 as idn;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::client::{Auth, Caller, Purpose};

/// Upper bound of every wait for the deployment to settle during setup.
pub const SETTLE: Duration = Duration::from_secs(60);

/// A revoked token is refused, and a revoked grant denied, within this
/// long of the revoking write's acknowledgement (R-GW-4).
pub const REVOCATION_WINDOW: Duration = Duration::from_millis(250);

/// Upper bound of one probe loop.
pub const PROBE_LIMIT: Duration = Duration::from_secs(600);

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Returns true for the codes a client retries a write on, with the same request id.
pub fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Internal
            | Code::Cancelled
    )
}

/// Repeats `attempt` while it fails with a transient code, at most until
/// `deadline`; returns the last answer.
pub async fn retrying<R, F, Fut>(deadline: Instant, mut attempt: F) -> Result<R, Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<R, Status>>,
{
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(status) if transient(status.code()) && Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            answer => return answer,
        }
    }
}

/// A signed-in person with a profile.
#[derive(Debug, Clone)]
pub struct Person {
    /// `person:<uuid>`.
    pub principal: String,
    /// Its access token.
    pub token: String,
}

/// A machine credential and a token it issued.
#[derive(Debug, Clone)]
pub struct Credential {
    /// `businesses/{bn9}/machineCredentials/{uuid}`.
    pub name: String,
    /// An access token it issued.
    pub token: String,
}

/// What one set of revocations revokes.
#[derive(Debug, Clone)]
pub struct Victims {
    /// A member who signs out (SignOut): its token must be refused.
    pub signing_out: Person,
    /// A member whose membership is removed (RemoveMember): its checks must deny.
    pub removed: Person,
    /// A credential that is revoked (RevokeMachineCredential): its token must be refused.
    pub credential: Credential,
}

/// The people and things of a scenario.
#[derive(Debug, Clone)]
pub struct Cast {
    /// The business's BN9.
    pub bn9: String,
    /// Its BAM, who writes and checks.
    pub bam: Person,
    /// The victims of each revocation set.
    pub victims: Vec<Victims>,
}

/// Signs in, creates profiles, registers the business, brings in members
/// and creates credentials, through the gateway; `accounts` is called with
/// an internal token for the registry import.
pub struct Setup<'a> {
    /// The gateway.
    pub gateway: &'a Caller,
    /// The accounts service (internal token).
    pub accounts: &'a Caller,
    /// Suite settings holding the development issuer's key.
    pub settings: &'a ccp::settings::SuiteSettings,
    /// A label unique to the scenario.
    pub label: &'a str,
}

impl Setup<'_> {
    fn deadline() -> Instant {
        Instant::now() + SETTLE
    }

    async fn person(&self, user: &str) -> anyhow::Result<Person> {
        let user = format!("{}-{user}", self.label);
        let id_token =
            ccp::identity_cmd::dev_token(self.settings, None, &user, Duration::from_secs(600))?;
        let g = self.gateway;
        let session = retrying(Self::deadline(), || {
            g.call(
                Purpose::Setup,
                idn::SignInRequest {
                    id_token: id_token.clone(),
                },
                Auth::none(),
                |ch, req| async move {
                    idn::identity_client::IdentityClient::new(ch)
                        .sign_in(req)
                        .await
                },
            )
        })
        .await
        .with_context(|| format!("SignIn {user}"))?;
        let request_id = rid();
        let created = retrying(Self::deadline(), || {
            g.call(
                Purpose::Setup,
                idn::CreateProfileRequest {
                    request_id: request_id.clone(),
                    profile: Some(idn::Profile {
                        legal_name: format!("Reliability {user}"),
                        email: format!("{user}@reliability.example"),
                        preferred_language: idn::Language::En as i32,
                        ..Default::default()
                    }),
                },
                Auth::bearer(&session.access_token),
                |ch, req| async move {
                    idn::identity_client::IdentityClient::new(ch)
                        .create_profile(req)
                        .await
                },
            )
        })
        .await
        .with_context(|| format!("CreateProfile {user}"))?
        .session
        .context("CreateProfile returned no session")?;
        Ok(Person {
            principal: created.principal,
            token: created.access_token,
        })
    }

    async fn register(&self, bn9: &str, bam: &Person) -> anyhow::Result<()> {
        let address = Address {
            line1: "100 Queen Street West".to_owned(),
            line2: String::new(),
            city: "Toronto".to_owned(),
            province: "ON".to_owned(),
            postal_code: "M5H 2N2".to_owned(),
            country: "CA".to_owned(),
        };
        let legal_name = format!("Reliability {} Inc.", self.label);
        let record = acc::RegistryRecord {
            bn9: bn9.to_owned(),
            legal_name: legal_name.clone(),
            address: Some(address.clone()),
            program_accounts: ["RM0001", "RM0002"]
                .iter()
                .map(|r| acc::RegistryProgramAccount {
                    reference: (*r).to_owned(),
                    display_name: format!("{} {r}", self.label),
                })
                .collect(),
            known_facts: vec![acc::KnownFact {
                question: Some(acc::KnownFactQuestion {
                    id: "daily_notice_total".to_owned(),
                    text_en: "What is the total of your latest Daily Notice?".to_owned(),
                    text_fr: "Quel est le total de votre dernier avis quotidien ?".to_owned(),
                    format: acc::AnswerFormat::Amount as i32,
                }),
                answer: "1234.56".to_owned(),
            }],
        };
        let request_id = rid();
        let a = self.accounts;
        retrying(Self::deadline(), || {
            a.call(
                Purpose::Setup,
                acc::ImportRegistryRequest {
                    request_id: request_id.clone(),
                    records: vec![record.clone()],
                },
                Auth::none(),
                |ch, req| async move {
                    acc::account_facts_client::AccountFactsClient::new(ch)
                        .import_registry(req)
                        .await
                },
            )
        })
        .await
        .context("ImportRegistry")?;
        let request_id = rid();
        let g = self.gateway;
        retrying(Self::deadline(), || {
            g.call(
                Purpose::Setup,
                acc::RegisterBusinessRequest {
                    request_id: request_id.clone(),
                    program_account: format!("{bn9}RM0001"),
                    legal_name: legal_name.clone(),
                    address: Some(address.clone()),
                    answers: vec![acc::KnownFactAnswer {
                        question_id: "daily_notice_total".to_owned(),
                        answer: "1234.56".to_owned(),
                    }],
                    accepted_terms_version: ccp_accounts::config::DEFAULT_TERMS_VERSION.to_owned(),
                },
                Auth::bearer(&bam.token),
                |ch, req| async move {
                    acc::accounts_client::AccountsClient::new(ch)
                        .register_business(req)
                        .await
                },
            )
        })
        .await
        .with_context(|| format!("RegisterBusiness {bn9}"))?;
        Ok(())
    }

    async fn join(&self, bn9: &str, bam: &Person, person: &Person) -> anyhow::Result<()> {
        let g = self.gateway;
        let request_id = rid();
        let request = retrying(Self::deadline(), || {
            g.call(
                Purpose::Setup,
                acc::RequestEmployeeAccessRequest {
                    request_id: request_id.clone(),
                    parent: format!("businesses/{bn9}"),
                    note: "Reliability member".to_owned(),
                },
                Auth::bearer(&person.token),
                |ch, req| async move {
                    acc::accounts_client::AccountsClient::new(ch)
                        .request_employee_access(req)
                        .await
                },
            )
        })
        .await
        .context("RequestEmployeeAccess")?
        .request
        .context("no employee request")?;
        let request_id = rid();
        retrying(Self::deadline(), || {
            g.call(
                Purpose::Setup,
                acc::ApproveEmployeeRequestRequest {
                    request_id: request_id.clone(),
                    name: request.name.clone(),
                    grants: Some(RoleGrants {
                        business_manager: false,
                        program_roles: vec![ProgramRole {
                            program_account: format!("{bn9}RM0001"),
                            role: Role::Reader as i32,
                        }],
                    }),
                },
                Auth::bearer(&bam.token),
                |ch, req| async move {
                    acc::accounts_client::AccountsClient::new(ch)
                        .approve_employee_request(req)
                        .await
                },
            )
        })
        .await
        .context("ApproveEmployeeRequest")?;
        Ok(())
    }

    async fn credential(&self, bn9: &str, bam: &Person, label: &str) -> anyhow::Result<Credential> {
        let g = self.gateway;
        let created =
            create_credential(g, Purpose::Setup, bn9, bam, label, &rid(), Self::deadline())
                .await
                .context("CreateMachineCredential")?;
        let credential = created.credential.context("no credential")?;
        let token = retrying(Self::deadline(), || {
            g.call(
                Purpose::Setup,
                idn::IssueMachineTokenRequest {
                    client_id: credential.client_id.clone(),
                    client_secret: created.client_secret.clone(),
                },
                Auth::none(),
                |ch, req| async move {
                    idn::identity_client::IdentityClient::new(ch)
                        .issue_machine_token(req)
                        .await
                },
            )
        })
        .await
        .context("IssueMachineToken")?;
        Ok(Credential {
            name: credential.name,
            token: token.access_token,
        })
    }

    /// Waits until `token`'s check of `resource` answers `allow` (the
    /// deployment has seen the cast's writes).
    async fn until_allowed(&self, token: &str, resource: &str) -> anyhow::Result<()> {
        let deadline = Self::deadline();
        loop {
            let answer = check(self.gateway, Purpose::Setup, Auth::bearer(token), resource).await;
            if matches!(answer, Ok(true)) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{resource} was never allowed during setup (last answer {answer:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Builds the cast: a business and `sets` sets of victims.
    pub async fn cast(&self, bn9: &str, sets: usize) -> anyhow::Result<Cast> {
        let bam = self.person("bam").await?;
        self.register(bn9, &bam).await?;
        let program = format!("{bn9}RM0001");
        let mut victims = Vec::with_capacity(sets);
        for set in 0..sets {
            let signing_out = self.person(&format!("signing-out-{set}")).await?;
            self.join(bn9, &bam, &signing_out).await?;
            let removed = self.person(&format!("removed-{set}")).await?;
            self.join(bn9, &bam, &removed).await?;
            let credential = self
                .credential(bn9, &bam, &format!("revoked-{set}"))
                .await?;
            self.until_allowed(&signing_out.token, &program).await?;
            self.until_allowed(&removed.token, &program).await?;
            victims.push(Victims {
                signing_out,
                removed,
                credential,
            });
        }
        self.until_allowed(&bam.token, bn9).await?;
        Ok(Cast {
            bn9: bn9.to_owned(),
            bam,
            victims,
        })
    }
}

/// Creates a machine credential of `bn9` as `bam` (retried with `request_id`).
pub async fn create_credential(
    g: &Caller,
    purpose: Purpose,
    bn9: &str,
    bam: &Person,
    label: &str,
    request_id: &str,
    deadline: Instant,
) -> Result<idn::CreateMachineCredentialResponse, Status> {
    let expire = chrono::Utc::now() + chrono::Duration::days(1);
    retrying(deadline, || {
        g.call(
            purpose,
            idn::CreateMachineCredentialRequest {
                request_id: request_id.to_owned(),
                parent: format!("businesses/{bn9}"),
                display_name: label.to_owned(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: expire.timestamp(),
                    nanos: 0,
                }),
            },
            Auth::bearer(&bam.token),
            |ch, req| async move {
                idn::identity_client::IdentityClient::new(ch)
                    .create_machine_credential(req)
                    .await
            },
        )
    })
    .await
}

/// Asks the gateway whether the token's holder may VIEW `resource`; true for ALLOW.
pub async fn check(
    g: &Caller,
    purpose: Purpose,
    auth: Auth<'_>,
    resource: &str,
) -> Result<bool, Status> {
    let answer = g
        .call(
            purpose,
            gw::CheckRequest {
                principal: String::new(),
                item: Some(gw::CheckItem {
                    action: Action::View as i32,
                    resource: resource.to_owned(),
                    submitted_by: String::new(),
                }),
                revision: String::new(),
            },
            auth,
            |ch, req| async move {
                gw::authorization_client::AuthorizationClient::new(ch)
                    .check(req)
                    .await
            },
        )
        .await?;
    Ok(answer.decision == gw::Decision::Allow as i32)
}

/// The kinds of write of the load, one per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// accounts: CreateEmployeeGroup.
    EmployeeGroup,
    /// delegation: CreateClientGroup.
    ClientGroup,
    /// identity: CreateMachineCredential.
    MachineCredential,
}

impl WriteKind {
    /// The kind of the `i`-th write.
    pub fn of(i: usize) -> Self {
        match i % 3 {
            0 => Self::EmployeeGroup,
            1 => Self::ClientGroup,
            _ => Self::MachineCredential,
        }
    }
}

/// An acknowledged write: what to read back.
#[derive(Debug, Clone)]
pub struct Acked {
    /// Its kind.
    pub kind: WriteKind,
    /// The resource name it answered.
    pub name: String,
}

/// Sends the `i`-th write of the load until it is acknowledged, refused, or
/// `deadline` passes (every attempt with the same request id).
pub async fn write(
    g: &Caller,
    cast: &Cast,
    label: &str,
    i: usize,
    deadline: Instant,
) -> Result<Acked, Status> {
    let request_id = rid();
    let display_name = format!("{label} write {i}");
    let parent = format!("businesses/{}", cast.bn9);
    let token = cast.bam.token.as_str();
    let kind = WriteKind::of(i);
    let name = match kind {
        WriteKind::EmployeeGroup => retrying(deadline, || {
            g.call(
                Purpose::Write,
                acc::CreateEmployeeGroupRequest {
                    request_id: request_id.clone(),
                    parent: parent.clone(),
                    group: Some(acc::EmployeeGroup {
                        display_name: display_name.clone(),
                        roles: vec![ProgramRole {
                            program_account: format!("{}RM0002", cast.bn9),
                            role: Role::Reader as i32,
                        }],
                        ..Default::default()
                    }),
                },
                Auth::bearer(token),
                |ch, req| async move {
                    acc::accounts_client::AccountsClient::new(ch)
                        .create_employee_group(req)
                        .await
                },
            )
        })
        .await?
        .group
        .map(|group| group.name),
        WriteKind::ClientGroup => retrying(deadline, || {
            g.call(
                Purpose::Write,
                del::CreateClientGroupRequest {
                    request_id: request_id.clone(),
                    parent: parent.clone(),
                    group: Some(del::ClientGroup {
                        display_name: display_name.clone(),
                        ..Default::default()
                    }),
                },
                Auth::bearer(token),
                |ch, req| async move {
                    del::delegation_client::DelegationClient::new(ch)
                        .create_client_group(req)
                        .await
                },
            )
        })
        .await?
        .group
        .map(|group| group.name),
        WriteKind::MachineCredential => create_credential(
            g,
            Purpose::Write,
            &cast.bn9,
            &cast.bam,
            &display_name,
            &request_id,
            deadline,
        )
        .await?
        .credential
        .map(|credential| credential.name),
    };
    let name = name.ok_or_else(|| Status::data_loss("an acknowledged write named nothing"))?;
    Ok(Acked { kind, name })
}

/// What reading the acknowledged writes back found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Readback {
    /// Found.
    pub found: u64,
    /// NOT_FOUND: acknowledged, then lost.
    pub lost: u64,
    /// Could not be read (another error after retries): neither found nor lost.
    pub unverified: u64,
}

/// Reads every acknowledged write back through the gateway.
pub async fn read_back(g: &Caller, cast: &Cast, acked: &[Acked]) -> anyhow::Result<Readback> {
    let token = cast.bam.token.as_str();
    let mut out = Readback::default();
    let deadline = Instant::now() + SETTLE;
    // The credentials, listed (inactive ones too).
    let mut credentials = std::collections::BTreeSet::new();
    let mut page_token = String::new();
    for _ in 0..1_000 {
        let page = retrying(deadline, || {
            g.call(
                Purpose::Readback,
                idn::ListMachineCredentialsRequest {
                    parent: format!("businesses/{}", cast.bn9),
                    page_size: 500,
                    page_token: page_token.clone(),
                    show_inactive: true,
                },
                Auth::bearer(token),
                |ch, req| async move {
                    idn::identity_client::IdentityClient::new(ch)
                        .list_machine_credentials(req)
                        .await
                },
            )
        })
        .await
        .context("ListMachineCredentials")?;
        credentials.extend(page.credentials.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    for write in acked {
        let answer: Result<(), Status> = match write.kind {
            WriteKind::MachineCredential => {
                if credentials.contains(&write.name) {
                    Ok(())
                } else {
                    Err(Status::not_found("not listed"))
                }
            }
            WriteKind::EmployeeGroup => retrying(deadline, || {
                g.call(
                    Purpose::Readback,
                    acc::GetEmployeeGroupRequest {
                        name: write.name.clone(),
                    },
                    Auth::bearer(token),
                    |ch, req| async move {
                        acc::accounts_client::AccountsClient::new(ch)
                            .get_employee_group(req)
                            .await
                    },
                )
            })
            .await
            .map(|_| ()),
            WriteKind::ClientGroup => retrying(deadline, || {
                g.call(
                    Purpose::Readback,
                    del::GetClientGroupRequest {
                        name: write.name.clone(),
                    },
                    Auth::bearer(token),
                    |ch, req| async move {
                        del::delegation_client::DelegationClient::new(ch)
                            .get_client_group(req)
                            .await
                    },
                )
            })
            .await
            .map(|_| ()),
        };
        match answer {
            Ok(()) => out.found += 1,
            Err(status) if status.code() == Code::NotFound => out.lost += 1,
            Err(_) => out.unverified += 1,
        }
    }
    Ok(out)
}

/// The three revocations of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationKind {
    /// SignOut: the token must be refused.
    SignOut,
    /// RevokeMachineCredential: the token must be refused.
    CredentialRevoked,
    /// RemoveMember: the member's checks must deny.
    MemberRemoved,
}

/// An acknowledged revocation.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// What was revoked.
    pub kind: RevocationKind,
    /// When its acknowledgement arrived (for a sign-out whose answer was lost
    /// in a fault: when a retry found the session already gone).
    pub acked: Instant,
    /// The revision token it returned (None when its answer was lost).
    pub revision: Option<String>,
    /// The token probes present.
    pub token: String,
}

/// Revokes one set of victims; each write retried with its request id.
pub async fn revoke(
    g: &Caller,
    cast: &Cast,
    victims: &Victims,
    deadline: Instant,
) -> Vec<Result<Revocation, Status>> {
    let bam = cast.bam.token.as_str();
    let sign_out = async {
        let request_id = rid();
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let answer = retrying(deadline, || {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            g.call(
                Purpose::Revoke,
                idn::SignOutRequest {
                    request_id: request_id.clone(),
                },
                Auth::bearer(&victims.signing_out.token),
                |ch, req| async move {
                    idn::identity_client::IdentityClient::new(ch)
                        .sign_out(req)
                        .await
                },
            )
        })
        .await;
        let revision = match answer {
            Ok(response) => Some(response.revision),
            // A retry after an attempt whose answer was lost: the session is
            // already gone. Acknowledged now (later than it really was).
            Err(status)
                if status.code() == Code::Unauthenticated
                    && attempts.load(std::sync::atomic::Ordering::Relaxed) > 1 =>
            {
                None
            }
            Err(status) => return Err(status),
        };
        Ok(Revocation {
            kind: RevocationKind::SignOut,
            acked: Instant::now(),
            revision,
            token: victims.signing_out.token.clone(),
        })
    };
    let credential = async {
        let request_id = rid();
        let response = retrying(deadline, || {
            g.call(
                Purpose::Revoke,
                idn::RevokeMachineCredentialRequest {
                    request_id: request_id.clone(),
                    name: victims.credential.name.clone(),
                    reason: "reliability suite".to_owned(),
                },
                Auth::bearer(bam),
                |ch, req| async move {
                    idn::identity_client::IdentityClient::new(ch)
                        .revoke_machine_credential(req)
                        .await
                },
            )
        })
        .await?;
        Ok(Revocation {
            kind: RevocationKind::CredentialRevoked,
            acked: Instant::now(),
            revision: Some(response.revision),
            token: victims.credential.token.clone(),
        })
    };
    let member = async {
        let request_id = rid();
        let response = retrying(deadline, || {
            g.call(
                Purpose::Revoke,
                acc::RemoveMemberRequest {
                    request_id: request_id.clone(),
                    name: format!(
                        "businesses/{}/members/{}",
                        cast.bn9, victims.removed.principal
                    ),
                    etag: String::new(),
                },
                Auth::bearer(bam),
                |ch, req| async move {
                    acc::accounts_client::AccountsClient::new(ch)
                        .remove_member(req)
                        .await
                },
            )
        })
        .await?;
        Ok(Revocation {
            kind: RevocationKind::MemberRemoved,
            acked: Instant::now(),
            revision: Some(response.revision),
            token: victims.removed.token.clone(),
        })
    };
    let (a, b, c) = tokio::join!(sign_out, credential, member);
    vec![a, b, c]
}

/// One probe of a revocation.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// What was revoked.
    pub kind: RevocationKind,
    /// Whether it carried the revocation's revision.
    pub with_revision: bool,
    /// How long after the acknowledgement it was sent.
    pub after_ack: Duration,
    /// Its code.
    pub code: Code,
    /// Whether it was answered ALLOW.
    pub allowed: bool,
}

impl Probe {
    /// Returns true when the probe must have been refused or denied: it
    /// carried the revision, or was sent more than [`REVOCATION_WINDOW`]
    /// after the acknowledgement.
    pub fn bound(&self) -> bool {
        self.with_revision || self.after_ack > REVOCATION_WINDOW
    }

    /// Returns true when a revoked token was accepted (answered OK) when it
    /// must have been refused.
    pub fn revoked_token_accepted(&self) -> bool {
        self.bound() && self.kind != RevocationKind::MemberRemoved && self.code == Code::Ok
    }

    /// Returns true when the probe was allowed when it must have been denied.
    pub fn stale_allow(&self) -> bool {
        self.bound() && self.allowed
    }
}

/// Presents a revocation's token every `every` until `stop` is set (at
/// most [`PROBE_LIMIT`]), alternately plain and with its revision (when
/// known), checking VIEW of `resource`.
pub async fn probe(
    g: &Caller,
    revocation: &Revocation,
    resource: &str,
    every: Duration,
    stop: &AtomicBool,
    out: &Mutex<Vec<Probe>>,
) {
    let limit = Instant::now() + PROBE_LIMIT;
    let mut with_revision = false;
    while !stop.load(Ordering::Acquire) && Instant::now() < limit {
        let revision = revocation.revision.as_deref().filter(|_| with_revision);
        let auth = Auth {
            token: Some(&revocation.token),
            revision,
        };
        let sent = Instant::now();
        let answer = check(g, Purpose::Probe, auth, resource).await;
        out.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Probe {
                kind: revocation.kind,
                with_revision: revision.is_some(),
                after_ack: sent.saturating_duration_since(revocation.acked),
                code: answer.as_ref().map_or_else(Status::code, |_| Code::Ok),
                allowed: matches!(answer, Ok(true)),
            });
        with_revision = !with_revision;
        tokio::time::sleep(every).await;
    }
}

/// Shared state of a running load.
#[derive(Debug, Default)]
pub struct LoadResults {
    /// Acknowledged writes.
    pub acked: Mutex<Vec<Acked>>,
    /// Writes given up (their last code).
    pub unacked: Mutex<Vec<Code>>,
    /// Probes of revocations.
    pub probes: Mutex<Vec<Probe>>,
    /// Revocations acknowledged.
    pub revocations: Mutex<Vec<Revocation>>,
    /// Revocations never acknowledged (their last code).
    pub revocations_failed: Mutex<Vec<Code>>,
}

impl LoadResults {
    /// Returns the probes so far.
    pub fn probes(&self) -> Vec<Probe> {
        self.probes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Revokes a set and probes what it revoked until `stop` is set.
pub async fn revoke_and_probe(
    g: Caller,
    cast: Arc<Cast>,
    set: usize,
    write_deadline: Instant,
    stop: Arc<AtomicBool>,
    results: Arc<LoadResults>,
) {
    let Some(victims) = cast.victims.get(set) else {
        return;
    };
    let program = format!("{}RM0001", cast.bn9);
    let mut probes = Vec::new();
    for answer in revoke(&g, &cast, victims, write_deadline).await {
        match answer {
            Ok(revocation) => {
                results
                    .revocations
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(revocation.clone());
                let (g, results, program, stop) =
                    (g.clone(), results.clone(), program.clone(), stop.clone());
                probes.push(tokio::spawn(async move {
                    let every = Duration::from_millis(20);
                    probe(&g, &revocation, &program, every, &stop, &results.probes).await;
                }));
            }
            Err(status) => results
                .revocations_failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(status.code()),
        }
    }
    for p in probes {
        let _ = p.await;
    }
}
