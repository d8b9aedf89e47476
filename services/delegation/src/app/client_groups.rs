//! Client groups (R-DE-5): create, get, list, rename, delete, add and
//! remove clients.

use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::paging::page_size;
use ccp_platform::store::{Begun, Change, UnitOfWork, WriteBy};
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;
use ccp_types::Bn9;
use prost::Message;
use sea_orm::ConnectionTrait;

use super::convert::{group_to_proto, parse_clients, parse_name, parse_parent, request_id};
use super::{Core, stored};
use crate::domain::{ClientGroup, bounded_text};
use crate::store;

/// The answer AddClientGroupClients and RemoveClientGroupClients store
/// under their request id.
#[derive(Clone, PartialEq, prost::Message)]
struct GroupClientsAnswer {
    #[prost(message, optional, tag = "1")]
    group: Option<pb::ClientGroup>,
    #[prost(string, tag = "2")]
    revision: String,
}

/// Whether a group-clients change adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupClientsChange {
    /// AddClientGroupClients.
    Add,
    /// RemoveClientGroupClients.
    Remove,
}

fn name_taken() -> Error {
    Error::already_exists("a client group with this name exists (deleted groups included)")
}

/// Returns the principals a group change concerns: every assignee through it.
async fn group_assignees<C: ConnectionTrait>(txn: &C, id: &str) -> Result<Vec<String>> {
    Ok(store::group_assignments(txn, id)
        .await?
        .into_iter()
        .map(|a| a.assignee)
        .collect())
}

/// Re-reads a live group inside the unit of work.
async fn live_group<C: ConnectionTrait>(txn: &C, id: &str) -> Result<ClientGroup> {
    store::get_group(txn, id)
        .await?
        .filter(|g| g.delete_time.is_none())
        .ok_or_else(|| Error::not_found("client group not found"))
}

impl Core {
    /// Returns the provider's group (live only when `live`); NOT_FOUND otherwise.
    pub(crate) async fn load_group(
        &self,
        provider: &Bn9,
        id: &str,
        live: bool,
    ) -> Result<ClientGroup> {
        store::get_group(self.db(), id)
            .await?
            .filter(|g| g.provider == provider.as_str() && (!live || g.delete_time.is_none()))
            .ok_or_else(|| Error::not_found("client group not found"))
    }

    /// Checks the group is the provider's and live, bumps (and locks) the
    /// provider's revision in the unit of work and re-reads the group; an
    /// `etag` given must be its version. Returns it with the revision.
    async fn lock_group<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        provider: &Bn9,
        id: &str,
        etag: &str,
    ) -> Result<(ClientGroup, String)> {
        self.load_group(provider, id, true).await?;
        let revision = w.bump_revision(provider.as_str()).await?;
        let row = live_group(w.txn(), id).await?;
        if !etag.is_empty() && etag != row.version.to_string() {
            return Err(Error::aborted(
                "the client group changed; read it again (stale etag)",
            ));
        }
        Ok((row, revision))
    }

    /// CreateClientGroup.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn create_group(
        &self,
        principal: String,
        req: pb::CreateClientGroupRequest,
    ) -> Result<pb::CreateClientGroupResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let provider = parse_parent("parent", &req.parent)
            .map_err(|e| v.push(e))
            .ok();
        let group = req.group.clone().unwrap_or_default();
        let display = bounded_text(&group.display_name, 1, 100)
            .map_err(|why| v.push(why.at("group.display_name")))
            .ok();
        let clients = parse_clients("group.clients", &group.clients, &mut v);
        let (Some(request_id), Some(provider), Some(display), true) =
            (request_id, provider, display, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let by = WriteBy::idempotent(&principal, "CreateClientGroup", request_id);
        let mut w = match self.writer.begin(by).await? {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let now = stored(w.now());
        let revision = w.bump_revision(provider.as_str()).await?;
        let row = ClientGroup {
            id: uuid::Uuid::now_v7().to_string(),
            provider: provider.to_string(),
            name_key: display.to_lowercase(),
            display_name: display,
            create_time: now,
            update_time: now,
            delete_time: None,
            version: 1,
        };
        if let Err(err) = store::insert_group(w.txn(), &row).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(name_taken());
            }
            return Err(err.into());
        }
        for c in &clients {
            store::add_group_client(w.txn(), &row.id, c).await?;
        }
        let proto = group_to_proto(&row, clients.clone());
        w.record(
            Change::new(
                EventType::ClientGroupChanged,
                "delegation.client_group.create",
                &proto.name,
            )
            .acting_for(provider.as_str())
            .after(serde_json::json!({"display_name": row.display_name, "clients": clients}))
            .businesses(clients.iter().cloned()),
        )
        .await?;
        let resp = pb::CreateClientGroupResponse {
            group: Some(proto),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
    }

    /// GetClientGroup.
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn get_group(&self, req: pb::GetClientGroupRequest) -> Result<pb::ClientGroup> {
        let (provider, id) =
            parse_name("name", &req.name, "clientGroups").map_err(|e| Error::invalid(vec![e]))?;
        let row = self.load_group(&provider, &id, false).await?;
        let clients = store::group_clients(self.db(), &id).await?;
        Ok(group_to_proto(&row, clients))
    }

    /// ListClientGroups, by name.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_groups(
        &self,
        caller: &str,
        req: pb::ListClientGroupsRequest,
    ) -> Result<pb::ListClientGroupsResponse> {
        let provider = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let pages = self.pages(
            "delegation.ListClientGroups",
            provider.as_str(),
            format!("show_deleted={}", req.show_deleted),
            caller,
        );
        let after = match pages.decode(&req.page_token)? {
            Some(t) => Some(serde_json::from_str::<(String, String)>(&t).map_err(|_| {
                Error::invalid_field("page_token", "is not a token this list returned")
            })?),
            None => None,
        };
        let rows = store::list_groups(
            self.db(),
            provider.as_str(),
            after,
            req.show_deleted,
            size as u64 + 1,
        )
        .await?;
        let (rows, next) = pages.finish_page(rows, size, |g| {
            serde_json::to_string(&(g.name_key.clone(), g.id.clone())).unwrap_or_default()
        });
        let mut groups = Vec::new();
        for g in &rows {
            groups.push(group_to_proto(
                g,
                store::group_clients(self.db(), &g.id).await?,
            ));
        }
        Ok(pb::ListClientGroupsResponse {
            groups,
            next_page_token: next,
        })
    }

    /// UpdateClientGroup (rename).
    #[tracing::instrument(skip_all)]
    pub async fn update_group(
        &self,
        principal: String,
        req: pb::UpdateClientGroupRequest,
    ) -> Result<pb::UpdateClientGroupResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
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
            .map_err(|why| v.push(why.at("group.display_name")))
            .ok();
        let (Some(request_id), Some((provider, id)), Some(display), true) =
            (request_id, name, display, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let by = WriteBy::idempotent(&principal, "UpdateClientGroup", request_id);
        let mut w = match self.writer.begin(by).await? {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let (row, revision) = self.lock_group(&mut w, &provider, &id, &group.etag).await?;
        let mut next = row.clone();
        next.name_key = display.to_lowercase();
        next.display_name = display;
        next.update_time = stored(w.now());
        next.version += 1;
        if let Err(err) = store::save_group(w.txn(), &next).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(name_taken());
            }
            return Err(err.into());
        }
        let clients = store::group_clients(w.txn(), &id).await?;
        let proto = group_to_proto(&next, clients.clone());
        let principals = group_assignees(w.txn(), &id).await?;
        w.record(
            Change::new(
                EventType::ClientGroupChanged,
                "delegation.client_group.rename",
                &proto.name,
            )
            .acting_for(provider.as_str())
            .before(serde_json::json!({"display_name": row.display_name}))
            .after(serde_json::json!({"display_name": next.display_name}))
            .businesses(clients)
            .principals(principals),
        )
        .await?;
        let resp = pb::UpdateClientGroupResponse {
            group: Some(proto),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
    }

    /// DeleteClientGroup (soft; its assignments end).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn delete_group(
        &self,
        principal: String,
        req: pb::DeleteClientGroupRequest,
    ) -> Result<pb::DeleteClientGroupResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "clientGroups")
            .map_err(|e| v.push(e))
            .ok();
        let (Some(request_id), Some((provider, id)), true) = (request_id, name, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let by = WriteBy::idempotent(&principal, "DeleteClientGroup", request_id);
        let mut w = match self.writer.begin(by).await? {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let (row, revision) = self.lock_group(&mut w, &provider, &id, &req.etag).await?;
        let principals = group_assignees(w.txn(), &id).await?;
        let clients = store::group_clients(w.txn(), &id).await?;
        let mut next = row.clone();
        let now = stored(w.now());
        next.delete_time = Some(now);
        next.update_time = now;
        next.version += 1;
        store::save_group(w.txn(), &next).await?;
        store::delete_group_assignments(w.txn(), &id).await?;
        w.record(
            Change::new(
                EventType::ClientGroupChanged,
                "delegation.client_group.delete",
                format!("businesses/{provider}/clientGroups/{id}"),
            )
            .acting_for(provider.as_str())
            .before(serde_json::json!({
                "display_name": row.display_name,
                "clients": clients,
                "assignees": principals,
            }))
            .businesses(clients)
            .principals(principals),
        )
        .await?;
        Ok(w.commit(pb::DeleteClientGroupResponse { revision })
            .await?
            .into_inner())
    }

    /// AddClientGroupClients / RemoveClientGroupClients: returns the group
    /// and the revision.
    #[tracing::instrument(skip_all, fields(group = %group_name))]
    pub async fn change_group_clients(
        &self,
        principal: String,
        change: GroupClientsChange,
        request_id_text: &str,
        group_name: String,
        clients: Vec<String>,
    ) -> Result<(pb::ClientGroup, String)> {
        let mut v = Vec::new();
        let request_id = request_id(request_id_text, &mut v);
        let name = parse_name("group", &group_name, "clientGroups")
            .map_err(|e| v.push(e))
            .ok();
        let clients = parse_clients("clients", &clients, &mut v);
        if clients.is_empty() && v.is_empty() {
            v.push(FieldViolation::new("clients", "name at least one client"));
        }
        let (Some(request_id), Some((provider, id)), true) = (request_id, name, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let add = change == GroupClientsChange::Add;
        let method = if add {
            "AddClientGroupClients"
        } else {
            "RemoveClientGroupClients"
        };
        let by = WriteBy::idempotent(&principal, method, request_id);
        let mut w = match self.writer.begin::<GroupClientsAnswer>(by).await? {
            Begun::Replayed(r) => return Ok((r.group.unwrap_or_default(), r.revision)),
            Begun::Fresh(w) => *w,
        };
        let (mut row, revision) = self.lock_group(&mut w, &provider, &id, "").await?;
        let mut changed = Vec::new();
        for c in &clients {
            let did = if add {
                store::add_group_client(w.txn(), &id, c).await?
            } else {
                store::remove_group_client(w.txn(), &id, c).await?
            };
            if did {
                changed.push(c.clone());
            }
        }
        row.update_time = stored(w.now());
        row.version += 1;
        store::save_group(w.txn(), &row).await?;
        let all = store::group_clients(w.txn(), &id).await?;
        let proto = group_to_proto(&row, all);
        let principals = group_assignees(w.txn(), &id).await?;
        let (action, key) = if add {
            ("delegation.client_group.add_clients", "added")
        } else {
            ("delegation.client_group.remove_clients", "removed")
        };
        w.record(
            Change::new(EventType::ClientGroupChanged, action, &proto.name)
                .acting_for(provider.as_str())
                .after(serde_json::json!({ key: changed }))
                .businesses(changed.iter().cloned())
                .principals(principals),
        )
        .await?;
        let answer = w
            .commit(GroupClientsAnswer {
                group: Some(proto),
                revision,
            })
            .await?
            .into_inner();
        Ok((answer.group.unwrap_or_default(), answer.revision))
    }
}
