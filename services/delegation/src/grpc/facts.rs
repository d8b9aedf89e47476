//! The internal RelationshipFacts: one indexed query per call, states as of
//! the clock (never active at or after the expiry instant).

use std::collections::BTreeMap;

use ccp_platform::auth::Principal;
use ccp_platform::error::{Error, Result};
use ccp_platform::paging::{decode_token, encode_token, page_size};
use ccp_proto::common::v1::Role;
use ccp_proto::delegation::v1 as pb;

use super::convert::{fact_to_proto, parse_name, request_state, request_state_to};
use super::core::{Core, pair_scope};
use crate::domain::{AssignmentRole, Bn9};
use crate::store::{self, FactRow, decode_list};

fn bn(field: &str, text: &str) -> Result<Bn9> {
    Bn9::parse(text).map_err(|why| Error::invalid_field(field, why))
}

fn fact(row: FactRow, now: chrono::DateTime<chrono::Utc>) -> Option<pb::RelationshipFact> {
    fact_to_proto(&row, now)
}

impl Core {
    /// GetPairFacts.
    #[tracing::instrument(skip_all, fields(provider = %req.provider, client = %req.client), err)]
    pub async fn pair_facts(&self, req: pb::GetPairFactsRequest) -> Result<pb::PairFacts> {
        let provider = bn("provider", &req.provider)?;
        let client = bn("client", &req.client)?;
        let rows = store::pair_facts(
            &self.db,
            provider.as_str(),
            client.as_str(),
            &pair_scope(provider.as_str(), client.as_str()),
        )
        .await?;
        let now = self.now();
        let revision = rows.first().and_then(|r| r.rev).unwrap_or(0);
        Ok(pb::PairFacts {
            provider: provider.to_string(),
            client: client.to_string(),
            relationships: rows.into_iter().filter_map(|r| fact(r, now)).collect(),
            revision,
        })
    }

    /// GetAssignmentFacts.
    #[tracing::instrument(skip_all, fields(principal = %req.principal), err)]
    pub async fn assignment_facts(
        &self,
        req: pb::GetAssignmentFactsRequest,
    ) -> Result<pb::AssignmentFacts> {
        let principal: Principal =
            req.principal
                .parse()
                .map_err(|e: ccp_platform::auth::PrincipalParseError| {
                    Error::invalid_field("principal", e.to_string())
                })?;
        let rows = store::assignment_facts(&self.db, &principal.to_string()).await?;
        let mut revisions = BTreeMap::new();
        let mut by_client: BTreeMap<(String, String), pb::ClientAssignment> = BTreeMap::new();
        for r in rows {
            revisions.insert(r.provider.clone(), r.rev.unwrap_or(0));
            let Some(client) = r.client else { continue };
            let role = AssignmentRole::parse(&r.role).unwrap_or(AssignmentRole::Reader);
            let role = match role {
                AssignmentRole::Editor => Role::Editor,
                AssignmentRole::Reader => Role::Reader,
            } as i32;
            let entry = by_client
                .entry((r.provider.clone(), client.clone()))
                .or_insert_with(|| pb::ClientAssignment {
                    provider: r.provider.clone(),
                    client,
                    role,
                    direct: false,
                    client_groups: Vec::new(),
                });
            entry.role = entry.role.max(role);
            match r.group_id {
                Some(g) => entry
                    .client_groups
                    .push(format!("businesses/{}/clientGroups/{g}", r.provider)),
                None => entry.direct = true,
            }
        }
        Ok(pb::AssignmentFacts {
            principal: principal.to_string(),
            assignments: by_client.into_values().collect(),
            revisions: revisions
                .into_iter()
                .map(|(provider, revision)| pb::ProviderRevision { provider, revision })
                .collect(),
        })
    }

    /// ListClients.
    #[tracing::instrument(skip_all, fields(provider = %req.provider), err)]
    pub async fn list_clients(
        &self,
        req: pb::ListClientsRequest,
    ) -> Result<pb::ListClientsResponse> {
        let provider = bn("provider", &req.provider)?;
        let size = page_size(req.page_size, 500, 5000)?;
        let after = decode_token(&req.page_token)?.unwrap_or_default();
        let rows =
            store::client_facts(&self.db, provider.as_str(), &after, size as u64 + 1).await?;
        let now = self.now();
        let revision = rows.first().and_then(|r| r.rev).unwrap_or(0);
        let mut clients: Vec<pb::ClientSummary> = Vec::new();
        for r in rows {
            let Some(client) = r.client.clone() else {
                continue;
            };
            if clients.last().map(|c| c.client.as_str()) != Some(client.as_str()) {
                clients.push(pb::ClientSummary {
                    client,
                    relationships: Vec::new(),
                });
            }
            if let (Some(f), Some(last)) = (fact(r, now), clients.last_mut()) {
                last.relationships.push(f);
            }
        }
        let next = if clients.len() > size {
            clients.truncate(size);
            clients
                .last()
                .map(|c| encode_token(&c.client))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListClientsResponse {
            clients,
            next_page_token: next,
            revision,
        })
    }

    /// GetRequestFacts: one query by primary key; NOT_FOUND when unknown or
    /// when the name's business is neither side of the request.
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn request_facts(&self, req: pb::GetRequestFactsRequest) -> Result<pb::RequestFacts> {
        let (side, id) = if req.name.starts_with("businesses/") {
            let sent = req.name.contains("/sentRequests/");
            let collection = if sent {
                "sentRequests"
            } else {
                "receivedRequests"
            };
            let (bn, id) =
                parse_name("name", &req.name, collection).map_err(|v| Error::invalid(vec![v]))?;
            (Some((bn, sent)), id)
        } else {
            let id = uuid::Uuid::parse_str(&req.name).map_err(|_| {
                Error::invalid_field(
                    "name",
                    "must be businesses/{bn9}/receivedRequests/{id}, businesses/{bn9}/sentRequests/{id} or a request uuid",
                )
            })?;
            (None, id.to_string())
        };
        let not_found = || Error::not_found("relationship request not found");
        let row = store::get_request(&self.db, &id)
            .await?
            .ok_or_else(not_found)?;
        if let Some((bn, sent)) = side {
            let owner = if sent { &row.provider } else { &row.client };
            if owner != bn.as_str() {
                return Err(not_found());
            }
        }
        let state = request_state_to(request_state(&row, self.now()));
        Ok(pb::RequestFacts {
            id: row.id.clone(),
            provider: row.provider.clone(),
            client: row.client.clone(),
            program_accounts: decode_list(&row.program_accounts),
            state: state as i32,
        })
    }
}
