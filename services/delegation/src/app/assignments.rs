//! Assignments (R-DE-5): assign a member of the provider to a client or a
//! client group, unassign, list.

use ccp_platform::auth::Principal;
use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::paging::page_size;
use ccp_platform::store::{Begun, Change, WriteBy};
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;
use ccp_types::Bn9;

use super::convert::{assignment_to_proto, parse_name, parse_parent, request_id, role_from};
use super::{Core, stored};
use crate::domain::{Assignment, AssignmentTarget};
use crate::store::{self, AssignmentFilter};

/// Parses an assignment's target, which must be the provider's client or group.
fn parse_target(
    target: Option<&pb::assignment::Target>,
    provider: Option<&Bn9>,
    v: &mut Vec<FieldViolation>,
) -> Option<AssignmentTarget> {
    match target {
        Some(pb::assignment::Target::Client(c)) => {
            match ccp_types::BusinessRef::parse(c, "assignment.client") {
                Ok(bn) if provider == Some(&bn) => {
                    v.push(FieldViolation::new(
                        "assignment.client",
                        "must be a client, not the provider itself",
                    ));
                    None
                }
                Ok(bn) => Some(AssignmentTarget::Client(bn.to_string())),
                Err(e) => {
                    v.push(e);
                    None
                }
            }
        }
        Some(pb::assignment::Target::ClientGroup(g)) => {
            match parse_name("assignment.client_group", g, "clientGroups") {
                Ok((bn, id)) if provider == Some(&bn) => Some(AssignmentTarget::Group(id)),
                Ok(_) => {
                    v.push(FieldViolation::new(
                        "assignment.client_group",
                        "must be a client group of the provider",
                    ));
                    None
                }
                Err(e) => {
                    v.push(e);
                    None
                }
            }
        }
        None => {
            v.push(FieldViolation::new(
                "assignment.target",
                "name a client or a client group",
            ));
            None
        }
    }
}

fn assignment_json(a: &Assignment) -> serde_json::Value {
    serde_json::json!({"assignee": a.assignee, "target": a.target.key(), "role": a.role.as_str()})
}

impl Core {
    /// Returns the businesses an assignment change names: the provider's
    /// client, or every client of the group.
    async fn assignment_businesses<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        target: &AssignmentTarget,
    ) -> Result<Vec<String>> {
        Ok(match target {
            AssignmentTarget::Client(c) => vec![c.clone()],
            AssignmentTarget::Group(g) => store::group_clients(txn, g).await?,
        })
    }

    /// AssignToClient.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn assign(
        &self,
        principal: String,
        req: pb::AssignToClientRequest,
    ) -> Result<pb::AssignToClientResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let provider = parse_parent("parent", &req.parent)
            .map_err(|e| v.push(e))
            .ok();
        let a = req.assignment.clone().unwrap_or_default();
        let assignee = a
            .assignee
            .parse::<Principal>()
            .map_err(|e| v.push(FieldViolation::new("assignment.assignee", e.to_string())))
            .ok();
        let role = role_from(a.role);
        if role.is_none() {
            v.push(FieldViolation::new(
                "assignment.role",
                "must be ROLE_EDITOR or ROLE_READER",
            ));
        }
        let target = parse_target(a.target.as_ref(), provider.as_ref(), &mut v);
        let (Some(request_id), Some(provider), Some(assignee), Some(role), Some(target), true) =
            (request_id, provider, assignee, role, target, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        if let Some(r) = self
            .answered(&principal, "AssignToClient", &request_id)
            .await?
        {
            return Ok(r);
        }
        if let AssignmentTarget::Group(g) = &target {
            self.load_group(&provider, g, true).await?;
        }
        let facts = self.role_facts(&assignee.to_string()).await?;
        let member = facts.memberships.iter().any(|m| {
            m.business == provider.as_str() && (m.business_manager || !m.roles.is_empty())
        });
        if !member {
            return Err(Error::failed_precondition(format!(
                "{assignee} is not a member of {provider}"
            )));
        }
        let mut w = match self
            .writer
            .begin(WriteBy::idempotent(
                &principal,
                "AssignToClient",
                request_id,
            ))
            .await?
        {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let revision = w.bump_revision(provider.as_str()).await?;
        let row = store::upsert_assignment(
            w.txn(),
            &Assignment {
                id: uuid::Uuid::now_v7().to_string(),
                provider: provider.to_string(),
                assignee: assignee.to_string(),
                target,
                role,
                create_time: stored(w.now()),
                creator: principal.clone(),
            },
        )
        .await?;
        let businesses = self.assignment_businesses(w.txn(), &row.target).await?;
        let proto = assignment_to_proto(&row);
        let mut change = Change::new(
            EventType::AssignmentChanged,
            "delegation.assignment.assign",
            &proto.name,
        )
        .acting_for(provider.as_str())
        .after(assignment_json(&row))
        .businesses(businesses)
        .principals([row.assignee.clone()]);
        if let Some(c) = row.target.client() {
            change = change.other_business(c);
        }
        w.record(change).await?;
        let resp = pb::AssignToClientResponse {
            assignment: Some(proto),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
    }

    /// Unassign.
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn unassign(
        &self,
        principal: String,
        req: pb::UnassignRequest,
    ) -> Result<pb::UnassignResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "assignments")
            .map_err(|e| v.push(e))
            .ok();
        let (Some(request_id), Some((provider, id)), true) = (request_id, name, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let by = WriteBy::idempotent(&principal, "Unassign", request_id);
        let mut w = match self.writer.begin(by).await? {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let revision = w.bump_revision(provider.as_str()).await?;
        let row = store::get_assignment(w.txn(), &id)
            .await?
            .filter(|a| a.provider == provider.as_str())
            .ok_or_else(|| Error::not_found("assignment not found"))?;
        store::delete_assignment(w.txn(), &id).await?;
        let businesses = self.assignment_businesses(w.txn(), &row.target).await?;
        let mut change = Change::new(
            EventType::AssignmentChanged,
            "delegation.assignment.unassign",
            &req.name,
        )
        .acting_for(provider.as_str())
        .before(assignment_json(&row))
        .businesses(businesses)
        .principals([row.assignee.clone()]);
        if let Some(c) = row.target.client() {
            change = change.other_business(c);
        }
        w.record(change).await?;
        Ok(w.commit(pb::UnassignResponse { revision })
            .await?
            .into_inner())
    }

    /// ListAssignments.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_assignments(
        &self,
        caller: &str,
        req: pb::ListAssignmentsRequest,
    ) -> Result<pb::ListAssignmentsResponse> {
        let provider = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let size = page_size(req.page_size, 50, 500)?;
        // The client filter names a business in either form.
        let client = match req.client.as_str() {
            "" => None,
            text => Some(
                ccp_types::BusinessRef::parse(text, "client")
                    .map_err(|e| Error::invalid(vec![e]))?,
            ),
        };
        let pages = self.pages(
            "delegation.ListAssignments",
            provider.as_str(),
            format!(
                "assignee={:?} client={:?}",
                req.assignee,
                client.as_ref().map(Bn9::as_str)
            ),
            caller,
        );
        let after = pages.decode(&req.page_token)?;
        let rows = store::list_assignments(
            self.db(),
            &AssignmentFilter {
                provider: provider.as_str(),
                assignee: (!req.assignee.is_empty()).then_some(req.assignee.as_str()),
                client: client.as_ref().map(Bn9::as_str),
                after,
                limit: size as u64 + 1,
            },
        )
        .await?;
        let (rows, next) = pages.finish_page(rows, size, |a| a.id.clone());
        Ok(pb::ListAssignmentsResponse {
            assignments: rows.iter().map(assignment_to_proto).collect(),
            next_page_token: next,
        })
    }
}
