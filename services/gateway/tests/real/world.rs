//! A real world built through the gateway's public API: people sign in with
//! the development issuer and create profiles, register businesses, request
//! and get access, providers send relationship requests that clients approve,
//! providers assign their people to clients (directly and through a client
//! group), a machine credential gets Editor, and so on.

use std::collections::BTreeMap;
use std::time::Duration;

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::{ProgramRole, Role, RoleGrants};
use ccp_proto::delegation::v1 as del;
use ccp_proto::identity::v1 as idn;

use crate::harness::{Replica, Suite};

pub const ABC: &str = "123456782";
pub const ITN: &str = "888316171";
pub const MAPLE: &str = "876543216";
pub const PACIFIQUE: &str = "712345677";
pub const NORTHERN: &str = "102938479";
pub const ENDER: &str = "300000007";

pub fn rm(bn: &str, n: u32) -> String {
    format!("{bn}RM{n:04}")
}

pub fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Who calls: a bearer token (None: anonymous) and the principal it names.
#[derive(Debug, Clone, Default)]
pub struct Who {
    pub token: Option<String>,
    pub principal: String,
    pub session: Option<idn::Session>,
}

/// Wraps `message` with the caller's bearer token.
pub fn req<T>(who: &Who, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(token) = &who.token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    r.set_timeout(Duration::from_secs(10));
    r
}

pub fn grants(bam: bool, roles: &[(&str, Role)]) -> RoleGrants {
    RoleGrants {
        business_manager: bam,
        program_roles: roles
            .iter()
            .map(|(p, r)| ProgramRole {
                program_account: (*p).to_owned(),
                role: *r as i32,
            })
            .collect(),
    }
}

/// Signs `subject` in with the development issuer (no profile yet).
pub async fn sign_in(suite: &Suite, gw: &Replica, subject: &str) -> Who {
    let id_token = suite
        .dev
        .mint(subject, suite.clock.now(), Duration::from_secs(300))
        .unwrap();
    let session = gw
        .identity()
        .sign_in(tonic::Request::new(idn::SignInRequest { id_token }))
        .await
        .unwrap()
        .into_inner();
    Who {
        token: Some(session.access_token.clone()),
        principal: session.principal.clone(),
        session: Some(session),
    }
}

/// Signs `name` in and creates its profile: a person with a profile.
pub async fn person(suite: &Suite, gw: &Replica, name: &str) -> Who {
    let first = sign_in(suite, gw, &format!("{name}-{}", rid())).await;
    let created = gw
        .identity()
        .create_profile(req(
            &first,
            idn::CreateProfileRequest {
                request_id: rid(),
                profile: Some(idn::Profile {
                    legal_name: name.to_owned(),
                    email: format!("{}@example.ca", name.to_lowercase().replace(' ', ".")),
                    preferred_language: idn::Language::En as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let session = created.session.unwrap();
    Who {
        token: Some(session.access_token.clone()),
        principal: session.principal.clone(),
        session: Some(session),
    }
}

/// Registers `bn` (a registry record) with `who` as its first BAM.
pub async fn register(gw: &Replica, who: &Who, bn: &str) {
    let record = crate::harness::registry()
        .into_iter()
        .find(|r| r.bn9 == bn)
        .unwrap();
    register_record(gw, who, &record).await;
}

/// Registers the business of a registry `record` with `who` as its first BAM.
pub async fn register_record(gw: &Replica, who: &Who, record: &acc::RegistryRecord) {
    let bn = record.bn9.as_str();
    gw.accounts()
        .register_business(req(
            who,
            acc::RegisterBusinessRequest {
                request_id: rid(),
                program_account: rm(bn, 1),
                legal_name: record.legal_name.clone(),
                address: record.address.clone(),
                answers: record
                    .known_facts
                    .iter()
                    .map(|f| acc::KnownFactAnswer {
                        question_id: f.question.as_ref().unwrap().id.clone(),
                        answer: f.answer.clone(),
                    })
                    .collect(),
                accepted_terms_version: ccp_accounts::config::DEFAULT_TERMS_VERSION.to_owned(),
            },
        ))
        .await
        .unwrap();
}

/// `employee` requests access to `bn`; `bam` approves with `grants`.
pub async fn hire(gw: &Replica, bam: &Who, employee: &Who, bn: &str, grants: RoleGrants) {
    let request = gw
        .accounts()
        .request_employee_access(req(
            employee,
            acc::RequestEmployeeAccessRequest {
                request_id: rid(),
                parent: format!("businesses/{bn}"),
                note: "I work here".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    gw.accounts()
        .approve_employee_request(req(
            bam,
            acc::ApproveEmployeeRequestRequest {
                request_id: rid(),
                name: request.name,
                grants: Some(grants),
            },
        ))
        .await
        .unwrap();
}

/// A machine credential of `bn` with Editor on its RM0001, and a token of it.
pub struct Machine {
    pub who: Who,
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
}

pub async fn machine(
    gw: &Replica,
    bam: &Who,
    bn: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Machine {
    let created = gw
        .identity()
        .create_machine_credential(req(
            bam,
            idn::CreateMachineCredentialRequest {
                request_id: rid(),
                parent: format!("businesses/{bn}"),
                display_name: "broker system".to_owned(),
                expire_time: Some(ccp_platform::store::timestamp(
                    now + chrono::Duration::days(365),
                )),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let credential = created.credential.unwrap();
    gw.accounts()
        .set_member_roles(req(
            bam,
            acc::SetMemberRolesRequest {
                request_id: rid(),
                name: format!("businesses/{bn}/members/{}", credential.principal),
                grants: Some(grants(false, &[(&rm(bn, 1), Role::Editor)])),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    let token = issue_machine_token(gw, &credential.client_id, &created.client_secret)
        .await
        .unwrap();
    Machine {
        who: Who {
            token: Some(token.access_token),
            principal: credential.principal.clone(),
            session: None,
        },
        client_id: credential.client_id,
        client_secret: created.client_secret,
        name: credential.name,
    }
}

pub async fn issue_machine_token(
    gw: &Replica,
    client_id: &str,
    secret: &str,
) -> Result<idn::MachineToken, tonic::Status> {
    gw.identity()
        .issue_machine_token(tonic::Request::new(idn::IssueMachineTokenRequest {
            client_id: client_id.to_owned(),
            client_secret: secret.to_owned(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

/// Sets `member`'s direct roles in `bn` as `manager` (reading its etag first).
pub async fn set_roles(
    gw: &Replica,
    manager: &Who,
    bn: &str,
    member: &str,
    grants: RoleGrants,
) -> acc::SetMemberRolesResponse {
    let name = format!("businesses/{bn}/members/{member}");
    let etag = gw
        .accounts()
        .get_member(req(manager, acc::GetMemberRequest { name: name.clone() }))
        .await
        .unwrap()
        .into_inner()
        .etag;
    gw.accounts()
        .set_member_roles(req(
            manager,
            acc::SetMemberRolesRequest {
                request_id: rid(),
                name,
                grants: Some(grants),
                etag,
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The provider's BAM sends a request; the client's BAM approves it. Returns
/// the relationship's id.
#[allow(clippy::too_many_arguments)]
pub async fn relate(
    gw: &Replica,
    provider_bam: &Who,
    provider: &str,
    client_bam: &Who,
    client: &str,
    programs: &[String],
    visibility: &[del::Visibility],
    expire: chrono::DateTime<chrono::Utc>,
) -> String {
    let sent = gw
        .delegation()
        .send_relationship_request(req(
            provider_bam,
            del::SendRelationshipRequestRequest {
                request_id: rid(),
                parent: format!("businesses/{provider}"),
                client: client.to_owned(),
                program_accounts: programs.to_vec(),
                note: "please".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    let level = if programs.is_empty() {
        del::RelationshipLevel::Business
    } else {
        del::RelationshipLevel::Program
    };
    let approved = gw
        .delegation()
        .approve_relationship_request(req(
            client_bam,
            del::ApproveRelationshipRequestRequest {
                request_id: rid(),
                name: format!("businesses/{client}/receivedRequests/{}", sent.id),
                level: level as i32,
                program_accounts: programs.to_vec(),
                expire_time: Some(ccp_platform::store::timestamp(expire)),
                visibility: visibility.iter().map(|v| *v as i32).collect(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    approved.relationship.unwrap().id
}

/// The provider's BAM assigns `assignee` to `client` (a BN9) or a client group.
pub async fn assign(
    gw: &Replica,
    provider_bam: &Who,
    provider: &str,
    assignee: &str,
    target: del::assignment::Target,
    role: Role,
) -> del::AssignToClientResponse {
    gw.delegation()
        .assign_to_client(req(
            provider_bam,
            del::AssignToClientRequest {
                request_id: rid(),
                parent: format!("businesses/{provider}"),
                assignment: Some(del::Assignment {
                    assignee: assignee.to_owned(),
                    target: Some(target),
                    role: role as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The provider's BAM makes a client group of `clients`; returns its name.
pub async fn client_group(
    gw: &Replica,
    provider_bam: &Who,
    provider: &str,
    display_name: &str,
    clients: Vec<String>,
) -> String {
    gw.delegation()
        .create_client_group(req(
            provider_bam,
            del::CreateClientGroupRequest {
                request_id: rid(),
                parent: format!("businesses/{provider}"),
                group: Some(del::ClientGroup {
                    display_name: display_name.to_owned(),
                    clients,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap()
        .name
}

/// The kinds of principal the matrices are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Anonymous,
    NoProfile,
    Orphan,
    Bam,
    Pam,
    PamOther,
    Editor,
    Reader,
    Machine,
    OtherBam,
    ProviderBam,
    Assigned,
    GroupAssigned,
    Unassigned,
    Removed,
    ProviderMachine,
    ProgramLevel,
    Expired,
    Ended,
}

impl Kind {
    pub const ALL: [Kind; 19] = [
        Kind::Anonymous,
        Kind::NoProfile,
        Kind::Orphan,
        Kind::Bam,
        Kind::Pam,
        Kind::PamOther,
        Kind::Editor,
        Kind::Reader,
        Kind::Machine,
        Kind::OtherBam,
        Kind::ProviderBam,
        Kind::Assigned,
        Kind::GroupAssigned,
        Kind::Unassigned,
        Kind::Removed,
        Kind::ProviderMachine,
        Kind::ProgramLevel,
        Kind::Expired,
        Kind::Ended,
    ];

    /// A short column heading.
    pub fn short(self) -> &'static str {
        match self {
            Kind::Anonymous => "anon",
            Kind::NoProfile => "no-profile",
            Kind::Orphan => "orphan",
            Kind::Bam => "BAM",
            Kind::Pam => "PAM",
            Kind::PamOther => "PAM-other",
            Kind::Editor => "Editor",
            Kind::Reader => "Reader",
            Kind::Machine => "machine",
            Kind::OtherBam => "other-BAM",
            Kind::ProviderBam => "prov-BAM",
            Kind::Assigned => "prov-assigned",
            Kind::GroupAssigned => "prov-group",
            Kind::Unassigned => "prov-unassigned",
            Kind::Removed => "prov-removed",
            Kind::ProviderMachine => "prov-machine",
            Kind::ProgramLevel => "prov-program",
            Kind::Expired => "prov-expired",
            Kind::Ended => "prov-ended",
        }
    }

    /// What the column is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Anonymous => "no access token",
            Kind::NoProfile => "signed in, no profile yet (R-ID-2)",
            Kind::Orphan => "a profile, member of no business",
            Kind::Bam => "BAM of ABC (123456782)",
            Kind::Pam => "PAM of ABC's RM0001",
            Kind::PamOther => "PAM of ABC's RM0002 (another program)",
            Kind::Editor => "Editor of ABC's RM0001",
            Kind::Reader => "Reader of ABC's RM0001",
            Kind::Machine => "ABC's machine credential, Editor of RM0001",
            Kind::OtherBam => "BAM of another business (876543216)",
            Kind::ProviderBam => {
                "BAM of provider ITN (888316171), business-level relationship with ABC"
            }
            Kind::Assigned => "ITN employee assigned to ABC directly (Editor)",
            Kind::GroupAssigned => "ITN employee assigned through a client group (Reader)",
            Kind::Unassigned => "ITN employee not assigned to ABC",
            Kind::Removed => "ITN employee assigned to ABC, then removed from ITN",
            Kind::ProviderMachine => {
                "ITN's machine credential (Editor of ITN's RM0001), assigned to ABC as Reader"
            }
            Kind::ProgramLevel => {
                "employee of provider 712345677 with a program-level relationship (RM0001), assigned (Editor)"
            }
            Kind::Expired => {
                "employee of provider 102938479 whose relationship expired, still assigned (Editor)"
            }
            Kind::Ended => {
                "employee of provider 300000007 whose relationship was ended early, still assigned (Editor)"
            }
        }
    }

    /// The provider business of a provider-side kind.
    pub fn provider(self) -> Option<&'static str> {
        match self {
            Kind::ProviderBam
            | Kind::Assigned
            | Kind::GroupAssigned
            | Kind::Unassigned
            | Kind::Removed
            | Kind::ProviderMachine => Some(ITN),
            Kind::ProgramLevel => Some(PACIFIQUE),
            Kind::Expired => Some(NORTHERN),
            Kind::Ended => Some(ENDER),
            _ => None,
        }
    }
}

/// The world, with a principal of each kind and the names the requests use.
pub struct World {
    pub who: BTreeMap<Kind, Who>,
    pub machine: Machine,
    pub itn_group: String,
    pub itn_relationship: String,
    /// A pending request from MAPLE to ABC naming ABC's RM0001 (program level).
    pub abc_program_request: String,
    /// An employee group of ABC giving Reader on RM0001 (no members).
    pub abc_rm1_group: String,
    /// An employee group of ABC holding no role (no members).
    pub abc_empty_group: String,
    pub expire_at: chrono::DateTime<chrono::Utc>,
}

/// Builds the world through gateway replica 0. The relationship of
/// NORTHERN expires 10 minutes after `t0`; the caller advances the clock.
pub async fn build(suite: &Suite) -> World {
    let gw = suite.gw();
    let now = suite.clock.now();
    let year = now + chrono::Duration::days(365);
    let mut who = BTreeMap::new();
    who.insert(Kind::Anonymous, Who::default());
    who.insert(
        Kind::NoProfile,
        sign_in(suite, gw, &format!("np-{}", rid())).await,
    );
    who.insert(Kind::Orphan, person(suite, gw, "Olive Orphan").await);

    // The client, ABC, and its people.
    let bam = person(suite, gw, "Alice Bam").await;
    register(gw, &bam, ABC).await;
    let hires = [
        (
            Kind::Pam,
            "Paul Pam",
            grants(false, &[(&rm(ABC, 1), Role::Pam)]),
        ),
        (
            Kind::PamOther,
            "Petra Pam",
            grants(false, &[(&rm(ABC, 2), Role::Pam)]),
        ),
        (
            Kind::Editor,
            "Eddie Editor",
            grants(false, &[(&rm(ABC, 1), Role::Editor)]),
        ),
        (
            Kind::Reader,
            "Rita Reader",
            grants(false, &[(&rm(ABC, 1), Role::Reader)]),
        ),
    ];
    for (kind, name, g) in hires {
        let p = person(suite, gw, name).await;
        hire(gw, &bam, &p, ABC, g).await;
        who.insert(kind, p);
    }
    let abc_machine = machine(gw, &bam, ABC, now).await;
    who.insert(Kind::Machine, abc_machine.who.clone());

    // Another business.
    let other = person(suite, gw, "Mia Maple").await;
    register(gw, &other, MAPLE).await;
    who.insert(Kind::OtherBam, other);

    // ITN, business level, visibility: provider + client.
    let itn = person(suite, gw, "Ivan Itn").await;
    register(gw, &itn, ITN).await;
    let itn_relationship = relate(
        gw,
        &itn,
        ITN,
        &bam,
        ABC,
        &[],
        &[
            del::Visibility::SubmittedByProvider,
            del::Visibility::SubmittedByClient,
        ],
        year,
    )
    .await;
    let employee = grants(false, &[(&rm(ITN, 1), Role::Editor)]);
    let assigned = person(suite, gw, "Ada Assigned").await;
    let grouped = person(suite, gw, "Gus Grouped").await;
    let unassigned = person(suite, gw, "Una Unassigned").await;
    let removed = person(suite, gw, "Rob Removed").await;
    for p in [&assigned, &grouped, &unassigned, &removed] {
        hire(gw, &itn, p, ITN, employee.clone()).await;
    }
    use del::assignment::Target;
    assign(
        gw,
        &itn,
        ITN,
        &assigned.principal,
        Target::Client(ABC.into()),
        Role::Editor,
    )
    .await;
    assign(
        gw,
        &itn,
        ITN,
        &removed.principal,
        Target::Client(ABC.into()),
        Role::Editor,
    )
    .await;
    let group = client_group(gw, &itn, ITN, "Toronto importers", vec![ABC.to_owned()]).await;
    assign(
        gw,
        &itn,
        ITN,
        &grouped.principal,
        Target::ClientGroup(group.clone()),
        Role::Reader,
    )
    .await;
    gw.accounts()
        .remove_member(req(
            &itn,
            acc::RemoveMemberRequest {
                request_id: rid(),
                name: format!("businesses/{ITN}/members/{}", removed.principal),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    let itn_machine = machine(gw, &itn, ITN, now).await;
    assign(
        gw,
        &itn,
        ITN,
        &itn_machine.who.principal,
        Target::Client(ABC.into()),
        Role::Reader,
    )
    .await;
    who.insert(Kind::ProviderMachine, itn_machine.who);
    who.insert(Kind::ProviderBam, itn.clone());
    who.insert(Kind::Assigned, assigned);
    who.insert(Kind::GroupAssigned, grouped);
    who.insert(Kind::Unassigned, unassigned);
    who.insert(Kind::Removed, removed);

    // Pacifique: program level (RM0001), visibility provider + other businesses.
    let expire_at = now + chrono::Duration::minutes(10);
    for (kind, provider, name, programs, visibility, expire) in [
        (
            Kind::ProgramLevel,
            PACIFIQUE,
            "Pia Program",
            vec![rm(ABC, 1)],
            vec![
                del::Visibility::SubmittedByProvider,
                del::Visibility::SubmittedByOtherBusinesses,
            ],
            year,
        ),
        (
            Kind::Expired,
            NORTHERN,
            "Ed Expired",
            vec![],
            vec![
                del::Visibility::SubmittedByProvider,
                del::Visibility::SubmittedByClient,
            ],
            expire_at,
        ),
        (
            Kind::Ended,
            ENDER,
            "Enid Ended",
            vec![],
            vec![
                del::Visibility::SubmittedByProvider,
                del::Visibility::SubmittedByClient,
            ],
            year,
        ),
    ] {
        let provider_bam = person(suite, gw, &format!("{name} Boss")).await;
        register(gw, &provider_bam, provider).await;
        let id = relate(
            gw,
            &provider_bam,
            provider,
            &bam,
            ABC,
            &programs,
            &visibility,
            expire,
        )
        .await;
        let p = person(suite, gw, name).await;
        hire(
            gw,
            &provider_bam,
            &p,
            provider,
            grants(false, &[(&rm(provider, 1), Role::Editor)]),
        )
        .await;
        assign(
            gw,
            &provider_bam,
            provider,
            &p.principal,
            Target::Client(ABC.into()),
            Role::Editor,
        )
        .await;
        if kind == Kind::Ended {
            gw.delegation()
                .end_relationship(req(
                    &bam,
                    del::EndRelationshipRequest {
                        request_id: rid(),
                        name: format!("businesses/{ABC}/relationships/{id}"),
                        note: "we changed brokers".to_owned(),
                    },
                ))
                .await
                .unwrap();
        }
        who.insert(kind, p);
    }
    // MAPLE asks ABC for its RM0001 (left pending: R-DE-2's PAM may reject it).
    let abc_program_request = gw
        .delegation()
        .send_relationship_request(req(
            &who[&Kind::OtherBam],
            del::SendRelationshipRequestRequest {
                request_id: rid(),
                parent: format!("businesses/{MAPLE}"),
                client: ABC.to_owned(),
                program_accounts: vec![rm(ABC, 1)],
                note: "your RM0001, please".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap()
        .id;
    // Two employee groups of ABC, without members (R-AC-6's PAM may change
    // the one covering its program; the one covering none stays the BAM's).
    let mut abc_groups = Vec::new();
    for (display_name, roles) in [
        (
            "RM0001 readers",
            grants(false, &[(&rm(ABC, 1), Role::Reader)]).program_roles,
        ),
        ("No programs", Vec::new()),
    ] {
        let group = gw
            .accounts()
            .create_employee_group(req(
                &bam,
                acc::CreateEmployeeGroupRequest {
                    request_id: rid(),
                    parent: format!("businesses/{ABC}"),
                    group: Some(acc::EmployeeGroup {
                        display_name: display_name.to_owned(),
                        roles,
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .group
            .unwrap();
        abc_groups.push(group.name);
    }
    let [abc_rm1_group, abc_empty_group]: [String; 2] = abc_groups.try_into().unwrap();
    who.insert(Kind::Bam, bam);
    World {
        who,
        machine: abc_machine,
        itn_group: group,
        itn_relationship,
        abc_program_request,
        abc_rm1_group,
        abc_empty_group,
        expire_at,
    }
}
