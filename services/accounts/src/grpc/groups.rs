//! Employee groups (R-AC-6): PAM/Editor/Reader per program, never BAM;
//! names unique per business, deleted ones included; soft delete.

use ccp_platform::auth::{Caller, Principal};
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::paging::{finish_page, page_size};
use ccp_platform::store as pstore;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::common::v1::{EventType, ProgramRole};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::json;

use super::{
    Core, check_request_id, effective_of, page_after, parse_uuid_child, program_roles, reject,
};
use crate::domain::matching::normalize_text;
use crate::domain::{Bn9, Grants, RoleLevel};
use crate::store;

fn parse_roles(
    bn9: &Bn9,
    roles: &[ProgramRole],
    field: &str,
) -> Result<Vec<(String, i32)>, Vec<FieldViolation>> {
    let raw: Vec<(String, i32)> = roles
        .iter()
        .map(|r| (r.program_account.clone(), r.role))
        .collect();
    let g = Grants::parse(bn9, false, &raw, field)?;
    Ok(g.programs
        .iter()
        .map(|(r, l)| (r.as_str().to_owned(), l.as_i32()))
        .collect())
}

fn check_name(name: &str, field: &str, errs: &mut Vec<FieldViolation>) {
    let n = name.trim().chars().count();
    if n == 0 {
        errs.push(FieldViolation::new(field, "is required"));
    } else if n > 100 {
        errs.push(FieldViolation::new(field, "must be at most 100 characters"));
    }
}

fn parse_principals(ps: &[String], errs: &mut Vec<FieldViolation>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, p) in ps.iter().enumerate() {
        match p.parse::<Principal>() {
            Ok(p) => {
                let s = p.to_string();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Err(_) => errs.push(FieldViolation::new(
                format!("principals[{i}]"),
                "is not a principal",
            )),
        }
    }
    out
}

impl Core {
    async fn group_proto<C: ConnectionTrait>(
        &self,
        db: &C,
        g: &store::GroupRow,
    ) -> Result<pb::EmployeeGroup, Error> {
        let roles = store::group_roles(db, &g.id).await?;
        let members = store::group_members(db, &g.id).await?;
        Ok(pb::EmployeeGroup {
            name: format!("businesses/{}/employeeGroups/{}", g.bn9, g.id),
            display_name: g.display_name.clone(),
            roles: program_roles(&g.bn9, &effective_of(roles)),
            members,
            create_time: Some(pstore::timestamp(g.create_time)),
            update_time: Some(pstore::timestamp(g.update_time)),
            delete_time: g.delete_time.map(pstore::timestamp),
            etag: g.version.to_string(),
        })
    }

    async fn check_programs_raw<C: ConnectionTrait>(
        &self,
        db: &C,
        bn9: &str,
        roles: &[(String, i32)],
        field: &str,
    ) -> Result<(), Error> {
        let linked = store::programs(db, bn9, "", 100_000).await?;
        let errs: Vec<FieldViolation> = roles
            .iter()
            .filter(|(r, _)| !linked.iter().any(|p| &p.reference == r))
            .map(|(r, _)| {
                FieldViolation::new(
                    field,
                    format!("{bn9}{r} is not a program account of this business"),
                )
            })
            .collect();
        reject(errs)
    }

    /// Refuses principals that are not members, and machine credentials in a
    /// group that gives PAM (a credential never manages, R-AZ-5).
    async fn check_members<C: ConnectionTrait>(
        &self,
        db: &C,
        bn9: &str,
        ps: &[String],
        roles: &[(String, i32)],
    ) -> Result<(), Error> {
        let gives_pam = roles.iter().any(|(_, r)| *r == RoleLevel::Pam.as_i32());
        for p in ps {
            match store::member(db, bn9, p).await? {
                None => {
                    return Err(Error::failed_precondition(format!(
                        "{p} is not a member of the business"
                    )));
                }
                Some(m) if gives_pam && m.kind != "PERSON" => {
                    return Err(Error::failed_precondition(format!(
                        "{p} is a machine credential and the group gives PAM; credentials hold only Editor or Reader"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub(super) async fn create_employee_group(
        &self,
        who: &Caller,
        req: pb::CreateEmployeeGroupRequest,
    ) -> Result<pb::CreateEmployeeGroupResponse, Error> {
        const METHOD: &str = "CreateEmployeeGroup";
        let mut errs = Vec::new();
        check_request_id(&req.request_id, &mut errs);
        let bn9 = Bn9::parse_name(&req.parent, "parent")
            .map_err(|v| errs.push(v))
            .ok();
        let group = req.group.clone().unwrap_or_default();
        check_name(&group.display_name, "group.display_name", &mut errs);
        let roles = match &bn9 {
            Some(b) => parse_roles(b, &group.roles, "group.roles")
                .map_err(|v| errs.extend(v))
                .ok(),
            None => None,
        };
        let members = parse_principals(&group.members, &mut errs);
        reject(errs)?;
        let (Some(bn9), Some(roles)) = (bn9, roles) else {
            return Err(Error::invalid_field("parent", "is invalid"));
        };
        let actor = who.principal.to_string();
        if let Some(r) = self.replay(&actor, METHOD, &req.request_id).await? {
            return Ok(r);
        }
        let bn9 = bn9.as_str();
        let now = self.now();
        let txn = self.begin().await?;
        let counter = pstore::bump_revision(&txn, bn9).await?;
        let revision = Self::revision(bn9, counter);
        if store::business(&txn, bn9).await?.is_none() {
            return Err(Error::not_found("no such business"));
        }
        self.check_programs_raw(&txn, bn9, &roles, "group.roles")
            .await?;
        self.check_members(&txn, bn9, &members, &roles).await?;
        let row = store::GroupRow {
            id: uuid::Uuid::now_v7().to_string(),
            bn9: bn9.to_owned(),
            display_name: group.display_name.trim().to_owned(),
            name_key: normalize_text(&group.display_name),
            create_time: now,
            update_time: now,
            delete_time: None,
            version: 1,
        };
        if let Err(err) = store::upsert_group(&txn, &row).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::already_exists(
                    "a group of this name exists (or existed) in the business",
                ));
            }
            return Err(err.into());
        }
        store::set_group_roles(&txn, &row.id, &roles).await?;
        for p in &members {
            store::add_group_member(&txn, &row.id, bn9, p).await?;
        }
        let proto = self.group_proto(&txn, &row).await?;
        self.audit(
            &txn,
            &actor,
            Some(bn9),
            "accounts.employee_group.create",
            &proto.name,
            serde_json::Value::Null,
            json!({"display_name": row.display_name, "roles": roles, "members": members}),
            &req.request_id,
        )
        .await?;
        self.emit(
            &txn,
            EventType::EmployeeGroupCreated,
            &[bn9],
            members.clone(),
            &revision,
            &actor,
            &proto.name,
            serde_json::Value::Null,
        )
        .await?;
        let response = pb::CreateEmployeeGroupResponse {
            group: Some(proto),
            revision,
        };
        self.finish(txn, &actor, METHOD, &req.request_id, response)
            .await
    }

    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub(super) async fn get_employee_group(
        &self,
        req: pb::GetEmployeeGroupRequest,
    ) -> Result<pb::EmployeeGroup, Error> {
        let (bn9, id) = parse_uuid_child(&req.name, "employeeGroups", "name")
            .map_err(|v| Error::invalid(vec![v]))?;
        let g = store::group(&self.db, bn9.as_str(), &id.to_string())
            .await?
            .ok_or_else(|| Error::not_found("no such employee group"))?;
        self.group_proto(&self.db, &g).await
    }

    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub(super) async fn list_employee_groups(
        &self,
        req: pb::ListEmployeeGroupsRequest,
    ) -> Result<pb::ListEmployeeGroupsResponse, Error> {
        let bn9 = Bn9::parse_name(&req.parent, "parent").map_err(|v| Error::invalid(vec![v]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let after = page_after(&req.page_token)?;
        let rows = store::list_groups(
            &self.db,
            bn9.as_str(),
            &after,
            req.show_deleted,
            size as u64 + 1,
        )
        .await?;
        let (rows, next) = finish_page(rows, size, |g| g.name_key.clone());
        let mut groups = Vec::new();
        for g in &rows {
            groups.push(self.group_proto(&self.db, g).await?);
        }
        Ok(pb::ListEmployeeGroupsResponse {
            groups,
            next_page_token: next,
        })
    }

    /// Loads an active group for a change, checking the etag when given.
    async fn load_group_for_change<C: ConnectionTrait>(
        &self,
        db: &C,
        bn9: &str,
        id: &str,
        etag: &str,
    ) -> Result<store::GroupRow, Error> {
        let g = store::group(db, bn9, id)
            .await?
            .filter(|g| g.delete_time.is_none())
            .ok_or_else(|| Error::not_found("no such employee group"))?;
        if !etag.is_empty() && etag != g.version.to_string() {
            return Err(Error::aborted("the group has changed; read it again"));
        }
        Ok(g)
    }

    #[tracing::instrument(skip_all, err)]
    pub(super) async fn update_employee_group(
        &self,
        who: &Caller,
        req: pb::UpdateEmployeeGroupRequest,
    ) -> Result<pb::UpdateEmployeeGroupResponse, Error> {
        const METHOD: &str = "UpdateEmployeeGroup";
        let mut errs = Vec::new();
        check_request_id(&req.request_id, &mut errs);
        let group = req.group.clone().unwrap_or_default();
        let parsed = parse_uuid_child(&group.name, "employeeGroups", "group.name")
            .map_err(|v| errs.push(v))
            .ok();
        let paths: Vec<String> = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        if paths.is_empty() {
            errs.push(FieldViolation::new(
                "update_mask",
                "must name `display_name` and/or `roles`",
            ));
        }
        for p in &paths {
            if p != "display_name" && p != "roles" {
                errs.push(FieldViolation::new(
                    "update_mask",
                    format!("`{p}` cannot be updated"),
                ));
            }
        }
        let set_name = paths.iter().any(|p| p == "display_name");
        let set_roles = paths.iter().any(|p| p == "roles");
        if set_name {
            check_name(&group.display_name, "group.display_name", &mut errs);
        }
        let roles = match (&parsed, set_roles) {
            (Some((b, _)), true) => parse_roles(b, &group.roles, "group.roles")
                .map_err(|v| errs.extend(v))
                .ok(),
            _ => None,
        };
        reject(errs)?;
        let Some((bn9, id)) = parsed else {
            return Err(Error::invalid_field("group.name", "is invalid"));
        };
        let actor = who.principal.to_string();
        if let Some(r) = self.replay(&actor, METHOD, &req.request_id).await? {
            return Ok(r);
        }
        let bn9 = bn9.as_str();
        let txn = self.begin().await?;
        let counter = pstore::bump_revision(&txn, bn9).await?;
        let revision = Self::revision(bn9, counter);
        let mut g = self
            .load_group_for_change(&txn, bn9, &id.to_string(), &group.etag)
            .await?;
        if group.etag.is_empty() {
            return Err(Error::aborted("the group's etag is required"));
        }
        let before = self.group_proto(&txn, &g).await?;
        if set_name {
            g.display_name = group.display_name.trim().to_owned();
            g.name_key = normalize_text(&group.display_name);
        }
        g.update_time = self.now();
        g.version += 1;
        if let Err(err) = store::upsert_group(&txn, &g).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::already_exists(
                    "a group of this name exists (or existed) in the business",
                ));
            }
            return Err(err.into());
        }
        if let Some(roles) = &roles {
            self.check_programs_raw(&txn, bn9, roles, "group.roles")
                .await?;
            let members = store::group_members(&txn, &g.id).await?;
            self.check_members(&txn, bn9, &members, roles).await?;
            store::set_group_roles(&txn, &g.id, roles).await?;
        }
        let members = store::group_members(&txn, &g.id).await?;
        let after = self.group_proto(&txn, &g).await?;
        self.audit(&txn, &actor, Some(bn9), "accounts.employee_group.update", &after.name,
            json!({"display_name": before.display_name, "roles": before.roles.iter().map(|r| (r.program_account.clone(), r.role)).collect::<Vec<_>>()}),
            json!({"display_name": after.display_name, "roles": after.roles.iter().map(|r| (r.program_account.clone(), r.role)).collect::<Vec<_>>()}),
            &req.request_id).await?;
        self.emit(
            &txn,
            EventType::EmployeeGroupUpdated,
            &[bn9],
            members.clone(),
            &revision,
            &actor,
            &after.name,
            serde_json::Value::Null,
        )
        .await?;
        self.prune_roleless(&txn, bn9, &members, &actor, &revision, &req.request_id)
            .await?;
        let after = self.group_proto(&txn, &g).await?;
        let response = pb::UpdateEmployeeGroupResponse {
            group: Some(after),
            revision,
        };
        self.finish(txn, &actor, METHOD, &req.request_id, response)
            .await
    }

    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub(super) async fn delete_employee_group(
        &self,
        who: &Caller,
        req: pb::DeleteEmployeeGroupRequest,
    ) -> Result<pb::DeleteEmployeeGroupResponse, Error> {
        const METHOD: &str = "DeleteEmployeeGroup";
        let mut errs = Vec::new();
        check_request_id(&req.request_id, &mut errs);
        let parsed = parse_uuid_child(&req.name, "employeeGroups", "name")
            .map_err(|v| errs.push(v))
            .ok();
        reject(errs)?;
        let Some((bn9, id)) = parsed else {
            return Err(Error::invalid_field("name", "is invalid"));
        };
        let actor = who.principal.to_string();
        if let Some(r) = self.replay(&actor, METHOD, &req.request_id).await? {
            return Ok(r);
        }
        let bn9 = bn9.as_str();
        let txn = self.begin().await?;
        let counter = pstore::bump_revision(&txn, bn9).await?;
        let revision = Self::revision(bn9, counter);
        let mut g = self
            .load_group_for_change(&txn, bn9, &id.to_string(), &req.etag)
            .await?;
        let before = self.group_proto(&txn, &g).await?;
        let now = self.now();
        g.delete_time = Some(now);
        g.update_time = now;
        g.version += 1;
        store::upsert_group(&txn, &g).await?;
        let members = store::group_members(&txn, &g.id).await?;
        self.audit(
            &txn,
            &actor,
            Some(bn9),
            "accounts.employee_group.delete",
            &before.name,
            json!({"display_name": before.display_name, "members": members}),
            serde_json::Value::Null,
            &req.request_id,
        )
        .await?;
        self.emit(
            &txn,
            EventType::EmployeeGroupDeleted,
            &[bn9],
            members.clone(),
            &revision,
            &actor,
            &before.name,
            serde_json::Value::Null,
        )
        .await?;
        self.prune_roleless(&txn, bn9, &members, &actor, &revision, &req.request_id)
            .await?;
        self.finish(
            txn,
            &actor,
            METHOD,
            &req.request_id,
            pb::DeleteEmployeeGroupResponse { revision },
        )
        .await
    }

    /// Parses a membership change (group name, principals, request id),
    /// naming every bad field.
    fn parse_member_change(
        group: &str,
        principals: &[String],
        request_id: &str,
    ) -> Result<(String, String, Vec<String>), Error> {
        let mut errs = Vec::new();
        check_request_id(request_id, &mut errs);
        let parsed = parse_uuid_child(group, "employeeGroups", "group")
            .map_err(|v| errs.push(v))
            .ok();
        let parsed_principals = parse_principals(principals, &mut errs);
        if principals.is_empty() {
            errs.push(FieldViolation::new("principals", "is required"));
        }
        reject(errs)?;
        let Some((bn9, id)) = parsed else {
            return Err(Error::invalid_field("group", "is invalid"));
        };
        Ok((bn9.as_str().to_owned(), id.to_string(), parsed_principals))
    }

    /// Adds members to (`adding`) or removes them from a group in `txn`: the
    /// revision bump, the change, audit, the event naming the members changed
    /// and, on removal, the members left with no role (R-AC-7). Returns the
    /// group and the revision token.
    #[allow(clippy::too_many_arguments)]
    async fn change_group_members(
        &self,
        txn: &DatabaseTransaction,
        actor: &str,
        bn9: &str,
        id: &str,
        principals: &[String],
        request_id: &str,
        adding: bool,
    ) -> Result<(pb::EmployeeGroup, String), Error> {
        let counter = pstore::bump_revision(txn, bn9).await?;
        let revision = Self::revision(bn9, counter);
        let mut g = self.load_group_for_change(txn, bn9, id, "").await?;
        if adding {
            let roles = store::group_roles(txn, &g.id).await?;
            self.check_members(txn, bn9, principals, &roles).await?;
        }
        let mut changed = Vec::new();
        for p in principals {
            let did = if adding {
                store::add_group_member(txn, &g.id, bn9, p).await?
            } else {
                store::remove_group_member(txn, &g.id, p).await?
            };
            if did {
                changed.push(p.clone());
            }
        }
        g.version += 1;
        g.update_time = self.now();
        store::upsert_group(txn, &g).await?;
        let proto = self.group_proto(txn, &g).await?;
        let (action, after) = if adding {
            (
                "accounts.employee_group.add_members",
                json!({"added": changed}),
            )
        } else {
            (
                "accounts.employee_group.remove_members",
                json!({"removed": changed}),
            )
        };
        self.audit(
            txn,
            actor,
            Some(bn9),
            action,
            &proto.name,
            serde_json::Value::Null,
            after,
            request_id,
        )
        .await?;
        self.emit(
            txn,
            EventType::EmployeeGroupMembersChanged,
            &[bn9],
            changed.clone(),
            &revision,
            actor,
            &proto.name,
            serde_json::Value::Null,
        )
        .await?;
        if !adding {
            self.prune_roleless(txn, bn9, &changed, actor, &revision, request_id)
                .await?;
        }
        Ok((proto, revision))
    }

    #[tracing::instrument(skip_all, fields(group = %req.group), err)]
    pub(super) async fn add_employee_group_members(
        &self,
        who: &Caller,
        req: pb::AddEmployeeGroupMembersRequest,
    ) -> Result<pb::AddEmployeeGroupMembersResponse, Error> {
        const METHOD: &str = "AddEmployeeGroupMembers";
        let (bn9, id, principals) =
            Self::parse_member_change(&req.group, &req.principals, &req.request_id)?;
        let actor = who.principal.to_string();
        if let Some(r) = self.replay(&actor, METHOD, &req.request_id).await? {
            return Ok(r);
        }
        let txn = self.begin().await?;
        let (group, revision) = self
            .change_group_members(&txn, &actor, &bn9, &id, &principals, &req.request_id, true)
            .await?;
        let response = pb::AddEmployeeGroupMembersResponse {
            group: Some(group),
            revision,
        };
        self.finish(txn, &actor, METHOD, &req.request_id, response)
            .await
    }

    #[tracing::instrument(skip_all, fields(group = %req.group), err)]
    pub(super) async fn remove_employee_group_members(
        &self,
        who: &Caller,
        req: pb::RemoveEmployeeGroupMembersRequest,
    ) -> Result<pb::RemoveEmployeeGroupMembersResponse, Error> {
        const METHOD: &str = "RemoveEmployeeGroupMembers";
        let (bn9, id, principals) =
            Self::parse_member_change(&req.group, &req.principals, &req.request_id)?;
        let actor = who.principal.to_string();
        if let Some(r) = self.replay(&actor, METHOD, &req.request_id).await? {
            return Ok(r);
        }
        let txn = self.begin().await?;
        let (group, revision) = self
            .change_group_members(&txn, &actor, &bn9, &id, &principals, &req.request_id, false)
            .await?;
        let response = pb::RemoveEmployeeGroupMembersResponse {
            group: Some(group),
            revision,
        };
        self.finish(txn, &actor, METHOD, &req.request_id, response)
            .await
    }
}
