//! The provider side (R-DE-5): client groups and assignments; and the audit list.

use ccp_platform::auth::Principal;
use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::paging::{decode_token, encode_token, finish_page, page_size};
use ccp_platform::store::{AuditScope, from_timestamp, list_audit, timestamp};
use ccp_proto::common::v1::{EventType, Role};
use ccp_proto::delegation::v1 as pb;

use super::convert::{group_to_proto, parse_name, parse_parent};
use super::core::{Change, Core, Write, check_request_id};
use crate::domain::{AssignmentRole, Bn9, bounded_text};
use crate::store::{self, AssignmentRow, GroupRow, from_us, us};

fn parse_clients(field: &str, items: &[String], v: &mut Vec<FieldViolation>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in items.iter().enumerate() {
        match Bn9::parse(c) {
            Ok(bn) => out.push(bn.to_string()),
            Err(why) => v.push(FieldViolation::new(format!("{field}[{i}]"), why)),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn role_to(r: &str) -> i32 {
    match AssignmentRole::parse(r) {
        Some(AssignmentRole::Editor) => Role::Editor as i32,
        Some(AssignmentRole::Reader) => Role::Reader as i32,
        None => Role::Unspecified as i32,
    }
}

fn assignment_to_proto(a: &AssignmentRow) -> pb::Assignment {
    let target = match (&a.client, &a.group_id) {
        (Some(c), _) => Some(pb::assignment::Target::Client(c.clone())),
        (None, Some(g)) => Some(pb::assignment::Target::ClientGroup(format!(
            "businesses/{}/clientGroups/{g}",
            a.provider
        ))),
        (None, None) => None,
    };
    pb::Assignment {
        name: format!("businesses/{}/assignments/{}", a.provider, a.id),
        assignee: a.assignee.clone(),
        target,
        role: role_to(&a.role),
        create_time: Some(timestamp(from_us(a.create_us))),
        creator: a.creator.clone(),
    }
}

impl Core {
    async fn load_group(&self, provider: &Bn9, id: &str, live: bool) -> Result<GroupRow> {
        store::get_group(&self.db, id)
            .await?
            .filter(|g| g.provider == provider.as_str() && (!live || g.delete_us.is_none()))
            .ok_or_else(|| Error::not_found("client group not found"))
    }

    /// CreateClientGroup.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn create_group(
        &self,
        principal: String,
        req: pb::CreateClientGroupRequest,
    ) -> Result<pb::CreateClientGroupResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let provider = parse_parent("parent", &req.parent)
            .map_err(|e| v.push(e))
            .ok();
        let group = req.group.clone().unwrap_or_default();
        let display = bounded_text(&group.display_name, 1, 100)
            .map_err(|why| v.push(FieldViolation::new("group.display_name", why)))
            .ok();
        let clients = parse_clients("group.clients", &group.clients, &mut v);
        let (Some(provider), Some(display), true) = (provider, display, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "CreateClientGroup",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        let now = us(self.now());
        let txn = self.begin().await?;
        let revision = self.bump_business(&txn, provider.as_str()).await?;
        let row = GroupRow {
            id: uuid::Uuid::now_v7().to_string(),
            provider: provider.to_string(),
            name_key: display.to_lowercase(),
            display_name: display,
            create_us: now,
            update_us: now,
            delete_us: None,
            version: 1,
        };
        if let Err(err) = store::insert_group(&txn, &row).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::already_exists(
                    "a client group with this name exists (deleted groups included)",
                ));
            }
            return Err(err.into());
        }
        for c in &clients {
            store::add_group_client(&txn, &row.id, c).await?;
        }
        let proto = group_to_proto(&row, clients.clone());
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: provider.to_string(),
                action: "delegation.client_group.create".to_owned(),
                target: proto.name.clone(),
                after_json:
                    serde_json::json!({"display_name": row.display_name, "clients": clients})
                        .to_string(),
                event: EventType::ClientGroupChanged as i32,
                businesses: std::iter::once(provider.to_string())
                    .chain(clients.iter().cloned())
                    .collect(),
                ..Change::default()
            },
        )
        .await?;
        let resp = pb::CreateClientGroupResponse {
            group: Some(proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }

    /// GetClientGroup.
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn get_group(&self, req: pb::GetClientGroupRequest) -> Result<pb::ClientGroup> {
        let (provider, id) =
            parse_name("name", &req.name, "clientGroups").map_err(|e| Error::invalid(vec![e]))?;
        let row = self.load_group(&provider, &id, false).await?;
        let clients = store::group_clients(&self.db, &id).await?;
        Ok(group_to_proto(&row, clients))
    }

    /// ListClientGroups, by name.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn list_groups(
        &self,
        req: pb::ListClientGroupsRequest,
    ) -> Result<pb::ListClientGroupsResponse> {
        let provider = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let after = match decode_token(&req.page_token)? {
            Some(t) => Some(serde_json::from_str::<(String, String)>(&t).map_err(|_| {
                Error::invalid_field("page_token", "is not a token this list returned")
            })?),
            None => None,
        };
        let rows = store::list_groups(
            &self.db,
            provider.as_str(),
            after,
            req.show_deleted,
            size as u64 + 1,
        )
        .await?;
        let (rows, next) = finish_page(rows, size, |g| {
            serde_json::to_string(&(g.name_key.clone(), g.id.clone())).unwrap_or_default()
        });
        let mut groups = Vec::new();
        for g in &rows {
            groups.push(group_to_proto(
                g,
                store::group_clients(&self.db, &g.id).await?,
            ));
        }
        Ok(pb::ListClientGroupsResponse {
            groups,
            next_page_token: next,
        })
    }

    /// The affected principals of a group change: every assignee through it.
    async fn group_assignees<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        id: &str,
    ) -> Result<Vec<String>> {
        Ok(store::group_assignments(txn, id)
            .await?
            .into_iter()
            .map(|a| a.assignee)
            .collect())
    }

    /// UpdateClientGroup (rename).
    #[tracing::instrument(skip_all, err)]
    pub async fn update_group(
        &self,
        principal: String,
        req: pb::UpdateClientGroupRequest,
    ) -> Result<pb::UpdateClientGroupResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let group = req.group.clone().unwrap_or_default();
        let name = parse_name("group.name", &group.name, "clientGroups")
            .map_err(|e| v.push(e))
            .ok();
        let paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        if paths.iter().any(|p| p != "display_name") || paths.is_empty() {
            v.push(FieldViolation::new(
                "update_mask",
                "only `display_name` can be changed",
            ));
        }
        let display = bounded_text(&group.display_name, 1, 100)
            .map_err(|why| v.push(FieldViolation::new("group.display_name", why)))
            .ok();
        let (Some((provider, id)), Some(display), true) = (name, display, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "UpdateClientGroup",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        self.load_group(&provider, &id, true).await?;
        let txn = self.begin().await?;
        let revision = self.bump_business(&txn, provider.as_str()).await?;
        let row = store::get_group(&txn, &id)
            .await?
            .filter(|g| g.delete_us.is_none())
            .ok_or_else(|| Error::not_found("client group not found"))?;
        if !group.etag.is_empty() && group.etag != row.version.to_string() {
            return Err(Error::aborted(
                "the client group changed; read it again (stale etag)",
            ));
        }
        let mut next = row.clone();
        next.name_key = display.to_lowercase();
        next.display_name = display;
        next.update_us = us(self.now());
        next.version += 1;
        if let Err(err) = store::save_group(&txn, &next).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::already_exists(
                    "a client group with this name exists (deleted groups included)",
                ));
            }
            return Err(err.into());
        }
        let clients = store::group_clients(&txn, &id).await?;
        let proto = group_to_proto(&next, clients.clone());
        let principals = self.group_assignees(&txn, &id).await?;
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: provider.to_string(),
                action: "delegation.client_group.rename".to_owned(),
                target: proto.name.clone(),
                before_json: serde_json::json!({"display_name": row.display_name}).to_string(),
                after_json: serde_json::json!({"display_name": next.display_name}).to_string(),
                event: EventType::ClientGroupChanged as i32,
                businesses: std::iter::once(provider.to_string())
                    .chain(clients)
                    .collect(),
                principals,
                ..Change::default()
            },
        )
        .await?;
        let resp = pb::UpdateClientGroupResponse {
            group: Some(proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }

    /// DeleteClientGroup (soft; its assignments end).
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn delete_group(
        &self,
        principal: String,
        req: pb::DeleteClientGroupRequest,
    ) -> Result<pb::DeleteClientGroupResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "clientGroups")
            .map_err(|e| v.push(e))
            .ok();
        let (Some((provider, id)), true) = (name, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "DeleteClientGroup",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        self.load_group(&provider, &id, true).await?;
        let txn = self.begin().await?;
        let revision = self.bump_business(&txn, provider.as_str()).await?;
        let row = store::get_group(&txn, &id)
            .await?
            .filter(|g| g.delete_us.is_none())
            .ok_or_else(|| Error::not_found("client group not found"))?;
        if !req.etag.is_empty() && req.etag != row.version.to_string() {
            return Err(Error::aborted(
                "the client group changed; read it again (stale etag)",
            ));
        }
        let principals = self.group_assignees(&txn, &id).await?;
        let clients = store::group_clients(&txn, &id).await?;
        let mut next = row.clone();
        let now = us(self.now());
        next.delete_us = Some(now);
        next.update_us = now;
        next.version += 1;
        store::save_group(&txn, &next).await?;
        store::delete_group_assignments(&txn, &id).await?;
        self.record(&txn, &w.principal, &w.request_id, &revision, Change {
            acting_for: provider.to_string(),
            action: "delegation.client_group.delete".to_owned(),
            target: format!("businesses/{provider}/clientGroups/{id}"),
            before_json: serde_json::json!({"display_name": row.display_name, "clients": clients, "assignees": principals}).to_string(),
            event: EventType::ClientGroupChanged as i32,
            businesses: std::iter::once(provider.to_string()).chain(clients).collect(),
            principals,
            ..Change::default()
        }).await?;
        self.commit(txn, &w, pb::DeleteClientGroupResponse { revision })
            .await
    }

    /// AddClientGroupClients / RemoveClientGroupClients.
    #[tracing::instrument(skip_all, fields(group = %group_name), err)]
    pub async fn change_group_clients(
        &self,
        principal: String,
        method: &'static str,
        request_id: String,
        group_name: String,
        clients: Vec<String>,
        add: bool,
    ) -> Result<(pb::ClientGroup, String)> {
        let mut v = Vec::new();
        check_request_id(&request_id, &mut v);
        let name = parse_name("group", &group_name, "clientGroups")
            .map_err(|e| v.push(e))
            .ok();
        let clients = parse_clients("clients", &clients, &mut v);
        if clients.is_empty() && v.is_empty() {
            v.push(FieldViolation::new("clients", "name at least one client"));
        }
        let (Some((provider, id)), true) = (name, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method,
            request_id,
        };
        #[derive(Clone, PartialEq, prost::Message)]
        struct Stored {
            #[prost(message, optional, tag = "1")]
            group: Option<pb::ClientGroup>,
            #[prost(string, tag = "2")]
            revision: String,
        }
        if let Some(r) = self.replay::<Stored>(&w).await? {
            return Ok((r.group.unwrap_or_default(), r.revision));
        }
        self.load_group(&provider, &id, true).await?;
        let txn = self.begin().await?;
        let revision = self.bump_business(&txn, provider.as_str()).await?;
        let mut row = store::get_group(&txn, &id)
            .await?
            .filter(|g| g.delete_us.is_none())
            .ok_or_else(|| Error::not_found("client group not found"))?;
        let mut changed = Vec::new();
        for c in &clients {
            let did = if add {
                store::add_group_client(&txn, &id, c).await?
            } else {
                store::remove_group_client(&txn, &id, c).await?
            };
            if did {
                changed.push(c.clone());
            }
        }
        row.update_us = us(self.now());
        row.version += 1;
        store::save_group(&txn, &row).await?;
        let all = store::group_clients(&txn, &id).await?;
        let proto = group_to_proto(&row, all);
        let principals = self.group_assignees(&txn, &id).await?;
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: provider.to_string(),
                action: if add {
                    "delegation.client_group.add_clients"
                } else {
                    "delegation.client_group.remove_clients"
                }
                .to_owned(),
                target: proto.name.clone(),
                after_json: serde_json::json!({ if add { "added" } else { "removed" }: changed })
                    .to_string(),
                event: EventType::ClientGroupChanged as i32,
                businesses: std::iter::once(provider.to_string())
                    .chain(changed.iter().cloned())
                    .collect(),
                principals,
                ..Change::default()
            },
        )
        .await?;
        let stored = self
            .commit(
                txn,
                &w,
                Stored {
                    group: Some(proto),
                    revision,
                },
            )
            .await?;
        Ok((stored.group.unwrap_or_default(), stored.revision))
    }

    /// AssignToClient.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn assign(
        &self,
        principal: String,
        req: pb::AssignToClientRequest,
    ) -> Result<pb::AssignToClientResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let provider = parse_parent("parent", &req.parent)
            .map_err(|e| v.push(e))
            .ok();
        let a = req.assignment.clone().unwrap_or_default();
        let assignee = a
            .assignee
            .parse::<Principal>()
            .map_err(|e| v.push(FieldViolation::new("assignment.assignee", e.to_string())))
            .ok();
        let role = match Role::try_from(a.role) {
            Ok(Role::Editor) => Some(AssignmentRole::Editor),
            Ok(Role::Reader) => Some(AssignmentRole::Reader),
            _ => {
                v.push(FieldViolation::new(
                    "assignment.role",
                    "must be ROLE_EDITOR or ROLE_READER",
                ));
                None
            }
        };
        let target = match &a.target {
            Some(pb::assignment::Target::Client(c)) => match Bn9::parse(c) {
                Ok(bn) if provider.as_ref() == Some(&bn) => {
                    v.push(FieldViolation::new(
                        "assignment.client",
                        "must be a client, not the provider itself",
                    ));
                    None
                }
                Ok(bn) => Some((Some(bn.to_string()), None)),
                Err(why) => {
                    v.push(FieldViolation::new("assignment.client", why));
                    None
                }
            },
            Some(pb::assignment::Target::ClientGroup(g)) => {
                match parse_name("assignment.client_group", g, "clientGroups") {
                    Ok((bn, id)) if provider.as_ref() == Some(&bn) => Some((None, Some(id))),
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
        };
        let (Some(provider), Some(assignee), Some(role), Some((client, group_id)), true) =
            (provider, assignee, role, target, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "AssignToClient",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        if let Some(g) = &group_id {
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
        let txn = self.begin().await?;
        let revision = self.bump_business(&txn, provider.as_str()).await?;
        let target = match (&client, &group_id) {
            (Some(c), _) => format!("client:{c}"),
            (None, Some(g)) => format!("group:{g}"),
            (None, None) => {
                return Err(Error::internal(anyhow::anyhow!(
                    "assignment without target"
                )));
            }
        };
        let row = store::upsert_assignment(
            &txn,
            &AssignmentRow {
                id: uuid::Uuid::now_v7().to_string(),
                provider: provider.to_string(),
                assignee: assignee.to_string(),
                target,
                client: client.clone(),
                group_id: group_id.clone(),
                role: role.as_str().to_owned(),
                create_us: us(self.now()),
                creator: w.principal.clone(),
            },
        )
        .await?;
        let mut businesses = vec![provider.to_string()];
        if let Some(c) = &client {
            businesses.push(c.clone());
        }
        if let Some(g) = &group_id {
            businesses.extend(store::group_clients(&txn, g).await?);
        }
        let proto = assignment_to_proto(&row);
        self.record(&txn, &w.principal, &w.request_id, &revision, Change {
            acting_for: provider.to_string(),
            other_business: client.clone(),
            action: "delegation.assignment.assign".to_owned(),
            target: proto.name.clone(),
            after_json: serde_json::json!({"assignee": row.assignee, "target": row.target, "role": row.role}).to_string(),
            event: EventType::AssignmentChanged as i32,
            businesses,
            principals: vec![row.assignee.clone()],
            ..Change::default()
        }).await?;
        let resp = pb::AssignToClientResponse {
            assignment: Some(proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }

    /// Unassign.
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn unassign(
        &self,
        principal: String,
        req: pb::UnassignRequest,
    ) -> Result<pb::UnassignResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "assignments")
            .map_err(|e| v.push(e))
            .ok();
        let (Some((provider, id)), true) = (name, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "Unassign",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        let txn = self.begin().await?;
        let revision = self.bump_business(&txn, provider.as_str()).await?;
        let row = store::get_assignment(&txn, &id)
            .await?
            .filter(|a| a.provider == provider.as_str())
            .ok_or_else(|| Error::not_found("assignment not found"))?;
        store::delete_assignment(&txn, &id).await?;
        let mut businesses = vec![provider.to_string()];
        if let Some(c) = &row.client {
            businesses.push(c.clone());
        }
        if let Some(g) = &row.group_id {
            businesses.extend(store::group_clients(&txn, g).await?);
        }
        self.record(&txn, &w.principal, &w.request_id, &revision, Change {
            acting_for: provider.to_string(),
            other_business: row.client.clone(),
            action: "delegation.assignment.unassign".to_owned(),
            target: req.name.clone(),
            before_json: serde_json::json!({"assignee": row.assignee, "target": row.target, "role": row.role}).to_string(),
            event: EventType::AssignmentChanged as i32,
            businesses,
            principals: vec![row.assignee.clone()],
            ..Change::default()
        }).await?;
        self.commit(txn, &w, pb::UnassignResponse { revision })
            .await
    }

    /// ListAssignments.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn list_assignments(
        &self,
        req: pb::ListAssignmentsRequest,
    ) -> Result<pb::ListAssignmentsResponse> {
        let provider = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let after = decode_token(&req.page_token)?;
        let assignee = (!req.assignee.is_empty()).then_some(req.assignee.as_str());
        let client = (!req.client.is_empty()).then_some(req.client.as_str());
        let rows = store::list_assignments(
            &self.db,
            provider.as_str(),
            assignee,
            client,
            after,
            size as u64 + 1,
        )
        .await?;
        let (rows, next) = finish_page(rows, size, |a| a.id.clone());
        Ok(pb::ListAssignmentsResponse {
            assignments: rows.iter().map(assignment_to_proto).collect(),
            next_page_token: next,
        })
    }

    /// ListAuditEvents: records where the business is either party.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn list_audit_events(
        &self,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse> {
        let bn = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let after = match decode_token(&req.page_token)? {
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
            &self.db,
            &AuditScope::Business(bn.to_string()),
            after,
            start,
            size as u64 + 1,
        )
        .await?;
        let more = rows.len() > size;
        let rows: Vec<_> = rows.into_iter().take(size).collect();
        let next = match (more, rows.last()) {
            (true, Some(last)) => encode_token(&last.seq.to_string()),
            _ => String::new(),
        };
        Ok(pb::ListAuditEventsResponse {
            events: rows.iter().map(|r| r.to_proto(&req.parent)).collect(),
            next_page_token: next,
        })
    }
}
