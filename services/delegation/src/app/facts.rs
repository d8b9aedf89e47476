//! The internal RelationshipFacts (one indexed query per call, states as of
//! the clock: never active at or after the expiry instant) and the audit list.

use std::collections::BTreeMap;

use ccp_platform::auth::Principal;
use ccp_platform::error::{Error, Result};
use ccp_platform::paging::page_size;
use ccp_platform::store::{AuditScope, from_timestamp, list_audit};
use ccp_proto::delegation::v1 as pb;
use ccp_types::Bn9;

use super::convert::{fact_to_proto, parse_name, parse_parent, request_state_to, role_to};
use super::{Core, pair_scope};
use crate::store;

/// Folds assignment rows (one per direct or group assignment) into one
/// assignment per (provider, client) with the highest role, in that order,
/// and each provider's revision.
fn fold_assignments(
    rows: Vec<crate::domain::AssignmentFact>,
) -> (Vec<pb::ClientAssignment>, BTreeMap<String, i64>) {
    let mut revisions = BTreeMap::new();
    let mut by_client: BTreeMap<(String, String), pb::ClientAssignment> = BTreeMap::new();
    for r in rows {
        revisions.insert(r.provider.clone(), r.revision);
        let Some(client) = r.client else { continue };
        let role = role_to(r.role) as i32;
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
    (by_client.into_values().collect(), revisions)
}

fn principal_of(text: &str) -> Result<Principal> {
    text.parse()
        .map_err(|e: ccp_platform::auth::PrincipalParseError| {
            Error::invalid_field("principal", e.to_string())
        })
}

fn bn(field: &str, text: &str) -> Result<Bn9> {
    ccp_types::BusinessRef::parse(text, field).map_err(|e| Error::invalid(vec![e]))
}

impl Core {
    /// GetPairFacts.
    #[tracing::instrument(skip_all, fields(provider = %req.provider, client = %req.client))]
    pub async fn pair_facts(&self, req: pb::GetPairFactsRequest) -> Result<pb::PairFacts> {
        let provider = bn("provider", &req.provider)?;
        let client = bn("client", &req.client)?;
        let (revision, facts) = store::pair_facts(
            self.db(),
            provider.as_str(),
            client.as_str(),
            &pair_scope(provider.as_str(), client.as_str()),
        )
        .await?;
        let now = self.now();
        Ok(pb::PairFacts {
            provider: provider.to_string(),
            client: client.to_string(),
            relationships: facts.iter().map(|f| fact_to_proto(f, now)).collect(),
            revision,
        })
    }

    /// GetAssignmentFacts: a principal's assignments to one client.
    #[tracing::instrument(skip_all, fields(principal = %req.principal, client = %req.client))]
    pub async fn assignment_facts(
        &self,
        req: pb::GetAssignmentFactsRequest,
    ) -> Result<pb::AssignmentFacts> {
        let principal = principal_of(&req.principal)?;
        let client = bn("client", &req.client)?;
        let rows =
            store::assignment_facts(self.db(), &principal.to_string(), client.as_str()).await?;
        let (assignments, revisions) = fold_assignments(rows);
        Ok(pb::AssignmentFacts {
            principal: principal.to_string(),
            assignments,
            revisions: revisions
                .into_iter()
                .map(|(provider, revision)| pb::ProviderRevision { provider, revision })
                .collect(),
        })
    }

    /// ListAssignedClients: a page of a principal's clients through one
    /// provider, with each pair's relationships (two indexed queries).
    #[tracing::instrument(skip_all, fields(principal = %req.principal, provider = %req.provider))]
    pub async fn list_assigned_clients(
        &self,
        caller: &str,
        req: pb::ListAssignedClientsRequest,
    ) -> Result<pb::ListAssignedClientsResponse> {
        let principal = principal_of(&req.principal)?;
        let provider = bn("provider", &req.provider)?;
        let size = page_size(req.page_size, 500, 5000)?;
        let pages = self.pages(
            "delegation.ListAssignedClients",
            provider.as_str(),
            principal.to_string(),
            caller,
        );
        let after = pages.decode(&req.page_token)?.unwrap_or_default();
        // Both reads are over one provider's rows (skewed: planned with their values),
        // and see one snapshot.
        let txn = ccp_platform::db::begin_planned_with_values(self.db()).await?;
        let rows = store::assigned_clients(
            &txn,
            &principal.to_string(),
            provider.as_str(),
            &after,
            size as u64 + 1,
        )
        .await?;
        let (mut assignments, _) = fold_assignments(rows);
        let next = if assignments.len() > size {
            assignments.truncate(size);
            assignments
                .last()
                .map(|a| pages.encode(&a.client))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let clients: Vec<String> = assignments.iter().map(|a| a.client.clone()).collect();
        let (revision, facts) = store::clients_facts(&txn, provider.as_str(), &clients).await?;
        txn.commit().await?;
        let now = self.now();
        let mut relationships: BTreeMap<&str, Vec<pb::RelationshipFact>> = BTreeMap::new();
        for f in &facts {
            relationships
                .entry(f.client.as_str())
                .or_default()
                .push(fact_to_proto(f, now));
        }
        Ok(pb::ListAssignedClientsResponse {
            clients: assignments
                .into_iter()
                .map(|a| pb::AssignedClient {
                    relationships: relationships.remove(a.client.as_str()).unwrap_or_default(),
                    assignment: Some(a),
                })
                .collect(),
            next_page_token: next,
            revision,
        })
    }

    /// ListClients.
    #[tracing::instrument(skip_all, fields(provider = %req.provider))]
    pub async fn list_clients(
        &self,
        caller: &str,
        req: pb::ListClientsRequest,
    ) -> Result<pb::ListClientsResponse> {
        let provider = bn("provider", &req.provider)?;
        let size = page_size(req.page_size, 500, 5000)?;
        let pages = self.pages(
            "delegation.ListClients",
            provider.as_str(),
            String::new(),
            caller,
        );
        let after = pages.decode(&req.page_token)?.unwrap_or_default();
        // Over one provider's rows (skewed): planned with their values.
        let txn = ccp_platform::db::begin_planned_with_values(self.db()).await?;
        let (revision, facts) =
            store::client_facts(&txn, provider.as_str(), &after, size as u64 + 1).await?;
        txn.commit().await?;
        let now = self.now();
        let mut clients: Vec<pb::ClientSummary> = Vec::new();
        for f in &facts {
            if clients.last().map(|c| c.client.as_str()) != Some(f.client.as_str()) {
                clients.push(pb::ClientSummary {
                    client: f.client.clone(),
                    relationships: Vec::new(),
                });
            }
            if let Some(last) = clients.last_mut() {
                last.relationships.push(fact_to_proto(f, now));
            }
        }
        let next = if clients.len() > size {
            clients.truncate(size);
            clients
                .last()
                .map(|c| pages.encode(&c.client))
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
    #[tracing::instrument(skip_all, fields(name = %req.name))]
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
        let row = store::get_request(self.db(), &id)
            .await?
            .ok_or_else(not_found)?;
        if let Some((bn, sent)) = side {
            let owner = if sent { &row.provider } else { &row.client };
            if owner != bn.as_str() {
                return Err(not_found());
            }
        }
        let state = request_state_to(row.state_at(self.now()));
        Ok(pb::RequestFacts {
            id: row.id.clone(),
            provider: row.provider.clone(),
            client: row.client.clone(),
            program_accounts: row.program_accounts.clone(),
            state: state as i32,
        })
    }

    /// ListAuditEvents: records where the business is either party.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_audit_events(
        &self,
        caller: &str,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse> {
        let bn = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let pages = self.pages(
            "delegation.ListAuditEvents",
            bn.as_str(),
            format!(
                "start_time={:?}",
                req.start_time.as_ref().map(|t| (t.seconds, t.nanos))
            ),
            caller,
        );
        let after = match pages.decode(&req.page_token)? {
            Some(t) => t.parse::<i64>().map_err(|_| {
                Error::invalid_field("page_token", "is not a token this list returned")
            })?,
            None => 0,
        };
        let start = match &req.start_time {
            Some(ts) => Some(
                from_timestamp(ts)
                    .ok_or_else(|| Error::invalid_field("start_time", "is not a valid instant"))?,
            ),
            None => None,
        };
        let rows = list_audit(
            self.db(),
            &AuditScope::Business(bn.to_string()),
            after,
            start,
            size as u64 + 1,
        )
        .await?;
        let more = rows.len() > size;
        let rows: Vec<_> = rows.into_iter().take(size).collect();
        let next = match (more, rows.last()) {
            (true, Some(last)) => pages.encode(&last.seq.to_string()),
            _ => String::new(),
        };
        Ok(pb::ListAuditEventsResponse {
            events: rows
                .iter()
                .map(|r| r.to_proto(&bn.resource_name()))
                .collect(),
            next_page_token: next,
        })
    }
}
