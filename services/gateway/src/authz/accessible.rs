//! ListAccessible (R-GW-3): pages through what a principal may reach, own
//! businesses first, then clients provider by provider, never cut short; its
//! cursor travels in a page token bound to the principal, the action and the
//! caller (R-IN-1).

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::decide::{ClientAssignment, Role};
use crate::facts::role_from_proto;

/// Where a ListAccessible page resumes: after `last` (a resource; resources
/// are emitted in ascending text order within a phase), in the own phase or in
/// the clients of the `provider`-th provider business, whose delegation page
/// `clients_token` holds the resume point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Cursor {
    clients_phase: bool,
    provider: usize,
    clients_token: String,
    last: String,
}

impl Cursor {
    fn encode(&self, pages: &PageScope) -> String {
        pages.encode(&format!(
            // Spaces: a token's text holds no control character (paging).
            "{} {} {} {}",
            if self.clients_phase { "c" } else { "o" },
            self.provider,
            self.clients_token,
            self.last
        ))
    }

    pub(super) fn decode(pages: &PageScope, token: &str) -> Result<Option<Self>, Status> {
        let Some(raw) = pages.decode(token)? else {
            return Ok(None);
        };
        let bad = || {
            Status::from(Error::invalid_field(
                "page_token",
                "is not a token this list returned",
            ))
        };
        let parts: Vec<&str> = raw.splitn(4, ' ').collect();
        let [phase, provider, clients_token, last] = parts.as_slice() else {
            return Err(bad());
        };
        Ok(Some(Self {
            clients_phase: match *phase {
                "o" => false,
                "c" => true,
                _ => return Err(bad()),
            },
            provider: provider.parse().map_err(|_| bad())?,
            clients_token: (*clients_token).to_owned(),
            last: (*last).to_owned(),
        }))
    }
}

struct Page {
    size: usize,
    out: Vec<gw::AccessibleResource>,
    next: Option<Cursor>,
    /// The last resource emitted in the current phase and provider.
    phase_last: String,
}

impl Page {
    /// Adds a resource; returns false once the page is full (the resource
    /// that did not fit proves that more remain, so the token is set).
    fn push(&mut self, resource: gw::AccessibleResource, cursor: &Cursor) -> bool {
        if self.out.len() == self.size {
            self.next = Some(Cursor {
                last: self.phase_last.clone(),
                ..cursor.clone()
            });
            return false;
        }
        self.phase_last.clone_from(&resource.resource);
        self.out.push(resource);
        true
    }
}

fn accessible(
    resource: &Resource,
    decision: &Decision,
    via: Option<&Bn9>,
) -> Option<gw::AccessibleResource> {
    match decision {
        Decision::Allow { reason, role } => Some(gw::AccessibleResource {
            resource: resource.to_string(),
            reason: allow_reason_to_proto(*reason) as i32,
            role: role_to_proto(*role) as i32,
            via_provider: via.map(ToString::to_string).unwrap_or_default(),
        }),
        Decision::Deny(_) => None,
    }
}

pub(super) async fn list_accessible(
    gate: &Gate,
    principal: Principal,
    action: Action,
    size: usize,
    cursor: Option<Cursor>,
    revision: Option<Revision>,
    pages: &PageScope,
) -> Result<gw::ListAccessibleResponse, Status> {
    let now = gate.ctx.clock.now();
    let facts = &gate.facts;
    let mut view = FactsView::open(facts, principal, revision.clone()).await?;
    let roles = view.role_facts().clone();
    let mut page = Page {
        size,
        out: Vec::new(),
        next: None,
        phase_last: String::new(),
    };
    let mut cursor = cursor.unwrap_or_default();

    // Own businesses first: the BN9, then its programs (BAM: every program).
    if !cursor.clients_phase {
        'own: for (bn, m) in roles.memberships.iter().filter(|(_, m)| m.holds_a_role()) {
            let mut resources = vec![Resource::Business(bn.clone())];
            let programs: Vec<Bn15> = if m.business_manager && principal.is_person() {
                // Read into the view: a BAM holds the programs the business has (R-AZ-1).
                view.load_program_accounts(facts, bn)
                    .await?
                    .iter()
                    .cloned()
                    .collect()
            } else {
                m.roles.keys().cloned().collect()
            };
            resources.extend(programs.into_iter().map(Resource::Program));
            resources.sort_by_key(ToString::to_string);
            for resource in resources {
                if resource.to_string() <= cursor.last && !cursor.last.is_empty() {
                    continue;
                }
                let question = Question::new(action, resource);
                let resource = &question.resource;
                let d = decide(&principal, &question, &view, now);
                if let Some(r) = accessible(resource, &d, None)
                    && !page.push(r, &cursor)
                {
                    break 'own;
                }
            }
        }
        if page.next.is_some() {
            return Ok(finish(page, pages));
        }
        cursor = Cursor {
            clients_phase: true,
            ..Cursor::default()
        };
        page.phase_last.clear();
    }

    // Then clients, provider by provider, by BN9.
    let providers: Vec<(Bn9, bool)> = roles
        .memberships
        .iter()
        .filter(|(_, m)| m.holds_a_role())
        .map(|(bn, m)| (bn.clone(), m.business_manager && principal.is_person()))
        .collect();
    // One pair at a time: only what this provider's relationship gives is listed.
    let mut snapshot = Facts {
        roles: (*roles).clone(),
        assignments: Default::default(),
        pairs: Default::default(),
        programs: Default::default(),
    };
    // Clients are read in chunks of about what the rest of the page lists:
    // one call to delegation (the chunk's clients with their relationships,
    // and for an employee its assignments) and one to accounts (their
    // program accounts) per chunk, never one per client nor the principal's
    // whole assignment list (R-GW-2).
    while cursor.provider < providers.len() {
        let (provider, is_bam) = &providers[cursor.provider];
        let mut token = cursor.clients_token.clone();
        loop {
            let chunk = clients_chunk(size.saturating_sub(page.out.len()));
            // A BAM acts for every client; others for their assigned clients.
            let (clients, next_token) = if *is_bam {
                let resp = facts.list_clients(provider, chunk, token.clone()).await?;
                let clients: Vec<Listed> = resp
                    .clients
                    .iter()
                    .filter_map(|c| Listed::new(&c.client, &c.relationships, None))
                    .collect();
                (clients, resp.next_page_token)
            } else {
                let resp = facts
                    .list_assigned_clients(&principal, provider, chunk, token.clone())
                    .await?;
                let clients: Vec<Listed> = resp
                    .clients
                    .iter()
                    .filter_map(|c| {
                        let a = c.assignment.as_ref()?;
                        // A provider's assignment is Editor or Reader at most.
                        let role = role_from_proto(a.role)?.min(Role::Editor);
                        Listed::new(&a.client, &c.relationships, Some(role))
                    })
                    .collect();
                (clients, resp.next_page_token)
            };
            let here = Cursor {
                clients_token: token.clone(),
                ..cursor.clone()
            };
            // The clients this page may still reach: active, not before the cursor.
            let resume_client = &cursor.last[..9.min(cursor.last.len())];
            let reachable: Vec<(Listed, crate::decide::Relationship)> = clients
                .into_iter()
                .filter(|l| l.client.as_str() >= resume_client)
                .filter_map(|l| {
                    let active = l.relationships.iter().find(|r| r.is_active(now))?.clone();
                    Some((l, active))
                })
                .collect();
            let wanted: Vec<Bn9> = reachable.iter().map(|(l, _)| l.client.clone()).collect();
            let programs = facts.program_accounts_many(&wanted).await?;
            for ((listed, active), listed_programs) in reachable.into_iter().zip(programs) {
                let Listed {
                    client,
                    relationships,
                    assigned,
                } = listed;
                let mut resources = vec![Resource::Business(client.clone())];
                // The client's program accounts: a relationship covers only those (R-AZ-2).
                let client_programs = &listed_programs.programs;
                match &active.scope {
                    Scope::Business => {
                        resources.extend(client_programs.iter().cloned().map(Resource::Program));
                    }
                    Scope::Programs(programs) => {
                        resources.extend(programs.iter().cloned().map(Resource::Program));
                    }
                }
                snapshot.programs.clear();
                snapshot
                    .programs
                    .insert(client.clone(), client_programs.clone());
                snapshot.assignments.assignments.clear();
                if let Some(role) = assigned {
                    snapshot.assignments.assignments.push(ClientAssignment {
                        provider: provider.clone(),
                        client: client.clone(),
                        role,
                    });
                }
                resources.sort_by_key(ToString::to_string);
                snapshot.pairs.clear();
                snapshot.pairs.insert(
                    (provider.clone(), client.clone()),
                    crate::decide::PairFacts {
                        relationships,
                        revision: 0,
                    },
                );
                for resource in resources {
                    if !cursor.last.is_empty() && resource.to_string() <= cursor.last {
                        continue;
                    }
                    let question = Question::new(action, resource);
                    let resource = &question.resource;
                    let d = decide(&principal, &question, &snapshot, now);
                    // Only what this provider's relationship gives is listed here.
                    if !matches!(
                        d,
                        Decision::Allow {
                            reason: crate::decide::AllowReason::ProviderRelationship,
                            ..
                        }
                    ) {
                        continue;
                    }
                    if let Some(r) = accessible(resource, &d, Some(provider))
                        && !page.push(r, &here)
                    {
                        return Ok(finish(page, pages));
                    }
                }
            }
            if next_token.is_empty() {
                break;
            }
            token = next_token;
        }
        cursor = Cursor {
            clients_phase: true,
            provider: cursor.provider + 1,
            clients_token: String::new(),
            last: String::new(),
        };
        page.phase_last.clear();
    }
    Ok(finish(page, pages))
}

/// How many clients to read for `slots` more resources on the page: a
/// client lists its business and usually a few program accounts, so a third
/// of the slots (at least 16, so that small pages still take one chunk);
/// a page of clients with fewer takes another chunk. Reading a whole page
/// of clients for a page that lists a third of them read (and, at a cold
/// cache, asked accounts about) three times what the page needs.
fn clients_chunk(slots: usize) -> i32 {
    i32::try_from((slots / 3 + 1).clamp(16, 1000)).unwrap_or(1000)
}

/// One client of a chunk: its relationships with the provider and, for an
/// employee, the role it is assigned with.
struct Listed {
    client: Bn9,
    relationships: Vec<crate::decide::Relationship>,
    assigned: Option<Role>,
}

impl Listed {
    /// None when the client's BN9 cannot be read (not from a facts service).
    fn new(
        client: &str,
        relationships: &[ccp_proto::delegation::v1::RelationshipFact],
        assigned: Option<Role>,
    ) -> Option<Self> {
        Some(Self {
            client: Bn9::try_new(client)?,
            relationships: relationships
                .iter()
                .filter_map(relationship_from_proto)
                .collect(),
            assigned,
        })
    }
}

fn finish(page: Page, pages: &PageScope) -> gw::ListAccessibleResponse {
    gw::ListAccessibleResponse {
        resources: page.out,
        next_page_token: page.next.map(|c| c.encode(pages)).unwrap_or_default(),
    }
}
