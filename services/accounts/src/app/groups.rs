//! Employee groups (R-AC-6): PAM/Editor/Reader per program, never BAM;
//! names unique per business, deleted ones included; soft delete.

use ccp_platform::auth::{Caller, Principal};
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::paging::page_size;
use ccp_platform::store::{self as pstore, Change, UnitOfWork, WriteBy};
use ccp_proto::accounts::v1 as pb;
use ccp_proto::common::v1::{EventType, ProgramRole};
use ccp_types::RequestId;
use prost::Message;
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{
    Core, effective_of, page_after, parse_uuid_child, parsed, program_roles, reject, request_id,
};
use crate::domain::matching::normalize_text;
use crate::domain::{AccountsError, Bn9, Grants, MemberKind, RoleLevel};
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
    if let Err(violation) = ccp_types::check_line(name, field) {
        errs.push(violation);
    } else if n == 0 {
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
                    return Err(Error::from(AccountsError::NotAMember(p.clone())));
                }
                Some(m) if gives_pam && m.kind != MemberKind::Person => {
                    return Err(Error::from(AccountsError::CredentialInPamGroup(p.clone())));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The `CreateEmployeeGroup` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn create_employee_group(
        &self,
        who: &Caller,
        req: pb::CreateEmployeeGroupRequest,
    ) -> Result<pb::CreateEmployeeGroupResponse, Error> {
        const METHOD: &str = "CreateEmployeeGroup";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let bn9 = ccp_types::BusinessRef::parse(&req.parent, "parent")
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
        let request_id = parsed(request_id, "request_id")?;
        let (Some(bn9), Some(roles)) = (bn9, roles) else {
            return Err(Error::invalid_field("parent", "is invalid"));
        };
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        let mut w = begin!(self, by);
        let bn9 = bn9.as_str();
        let now = w.now();
        let revision = w.bump_revision(bn9).await?;
        if store::business(w.txn(), bn9).await?.is_none() {
            return Err(Error::from(AccountsError::NoSuchBusiness));
        }
        self.check_programs_raw(w.txn(), bn9, &roles, "group.roles")
            .await?;
        self.check_members(w.txn(), bn9, &members, &roles).await?;
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
        if let Err(err) = store::upsert_group(w.txn(), &row).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::from(AccountsError::GroupNameTaken));
            }
            return Err(err.into());
        }
        store::set_group_roles(w.txn(), &row.id, &roles).await?;
        for p in &members {
            store::add_group_member(w.txn(), &row.id, bn9, p).await?;
        }
        let proto = self.group_proto(w.txn(), &row).await?;
        w.record(
            Change::new(
                EventType::EmployeeGroupCreated,
                "accounts.employee_group.create",
                &proto.name,
            )
            .acting_for(bn9)
            .principals(members.clone())
            .after(json!({"display_name": row.display_name, "roles": roles, "members": members})),
        )
        .await?;
        let response = pb::CreateEmployeeGroupResponse {
            group: Some(proto),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }

    /// The `GetEmployeeGroup` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn get_employee_group(
        &self,
        req: pb::GetEmployeeGroupRequest,
    ) -> Result<pb::EmployeeGroup, Error> {
        let (bn9, id) = parse_uuid_child(&req.name, "employeeGroups", "name")
            .map_err(|v| Error::invalid(vec![v]))?;
        let g = store::group(&self.db, bn9.as_str(), &id.to_string())
            .await?
            .ok_or_else(|| Error::from(AccountsError::NoSuchGroup))?;
        self.group_proto(&self.db, &g).await
    }

    /// The `ListEmployeeGroups` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_employee_groups(
        &self,
        who: &Caller,
        req: pb::ListEmployeeGroupsRequest,
    ) -> Result<pb::ListEmployeeGroupsResponse, Error> {
        let bn9 = ccp_types::BusinessRef::parse(&req.parent, "parent")
            .map_err(|v| Error::invalid(vec![v]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let pages = self.pages(
            "accounts.ListEmployeeGroups",
            bn9.as_str(),
            format!("show_deleted={}", req.show_deleted),
            who,
        );
        let after = page_after(&pages, &req.page_token)?;
        let rows = store::list_groups(
            &self.db,
            bn9.as_str(),
            &after,
            req.show_deleted,
            size as u64 + 1,
        )
        .await?;
        let (rows, next) = pages.finish_page(rows, size, |g| g.name_key.clone());
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
            .ok_or_else(|| Error::from(AccountsError::NoSuchGroup))?;
        if !etag.is_empty() && etag != g.version.to_string() {
            return Err(Error::from(AccountsError::GroupChanged));
        }
        Ok(g)
    }

    /// The `UpdateEmployeeGroup` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all)]
    pub async fn update_employee_group(
        &self,
        who: &Caller,
        req: pb::UpdateEmployeeGroupRequest,
    ) -> Result<pb::UpdateEmployeeGroupResponse, Error> {
        const METHOD: &str = "UpdateEmployeeGroup";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let group = req.group.clone().unwrap_or_default();
        let parsed_name = parse_uuid_child(&group.name, "employeeGroups", "group.name")
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
        let roles = match (&parsed_name, set_roles) {
            (Some((b, _)), true) => parse_roles(b, &group.roles, "group.roles")
                .map_err(|v| errs.extend(v))
                .ok(),
            _ => None,
        };
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let (bn9, id) = parsed(parsed_name, "group.name")?;
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        let mut w = begin!(self, by);
        let bn9 = bn9.as_str();
        let revision = w.bump_revision(bn9).await?;
        let mut g = self
            .load_group_for_change(w.txn(), bn9, &id.to_string(), &group.etag)
            .await?;
        if group.etag.is_empty() {
            return Err(Error::from(AccountsError::GroupEtagRequired));
        }
        let before = self.group_proto(w.txn(), &g).await?;
        if set_name {
            g.display_name = group.display_name.trim().to_owned();
            g.name_key = normalize_text(&group.display_name);
        }
        g.update_time = w.now();
        g.version += 1;
        if let Err(err) = store::upsert_group(w.txn(), &g).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::from(AccountsError::GroupNameTaken));
            }
            return Err(err.into());
        }
        if let Some(roles) = &roles {
            self.check_programs_raw(w.txn(), bn9, roles, "group.roles")
                .await?;
            let members = store::group_members(w.txn(), &g.id).await?;
            self.check_members(w.txn(), bn9, &members, roles).await?;
            store::set_group_roles(w.txn(), &g.id, roles).await?;
        }
        let members = store::group_members(w.txn(), &g.id).await?;
        let after = self.group_proto(w.txn(), &g).await?;
        let roles_of = |g: &pb::EmployeeGroup| {
            g.roles
                .iter()
                .map(|r| (r.program_account.clone(), r.role))
                .collect::<Vec<_>>()
        };
        w.record(
            Change::new(
                EventType::EmployeeGroupUpdated,
                "accounts.employee_group.update",
                &after.name,
            )
            .acting_for(bn9)
            .principals(members.clone())
            .before(json!({"display_name": before.display_name, "roles": roles_of(&before)}))
            .after(json!({"display_name": after.display_name, "roles": roles_of(&after)})),
        )
        .await?;
        Self::prune_roleless(&mut w, bn9, &members).await?;
        let after = self.group_proto(w.txn(), &g).await?;
        let response = pb::UpdateEmployeeGroupResponse {
            group: Some(after),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }

    /// The `DeleteEmployeeGroup` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn delete_employee_group(
        &self,
        who: &Caller,
        req: pb::DeleteEmployeeGroupRequest,
    ) -> Result<pb::DeleteEmployeeGroupResponse, Error> {
        const METHOD: &str = "DeleteEmployeeGroup";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let parsed_name = parse_uuid_child(&req.name, "employeeGroups", "name")
            .map_err(|v| errs.push(v))
            .ok();
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let (bn9, id) = parsed(parsed_name, "name")?;
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        let mut w = begin!(self, by);
        let bn9 = bn9.as_str();
        let revision = w.bump_revision(bn9).await?;
        let mut g = self
            .load_group_for_change(w.txn(), bn9, &id.to_string(), &req.etag)
            .await?;
        let before = self.group_proto(w.txn(), &g).await?;
        let now = w.now();
        g.delete_time = Some(now);
        g.update_time = now;
        g.version += 1;
        store::upsert_group(w.txn(), &g).await?;
        let members = store::group_members(w.txn(), &g.id).await?;
        w.record(
            Change::new(
                EventType::EmployeeGroupDeleted,
                "accounts.employee_group.delete",
                &before.name,
            )
            .acting_for(bn9)
            .principals(members.clone())
            .before(json!({"display_name": before.display_name, "members": members})),
        )
        .await?;
        Self::prune_roleless(&mut w, bn9, &members).await?;
        Ok(w.commit(pb::DeleteEmployeeGroupResponse { revision })
            .await?
            .into_inner())
    }

    /// Parses a membership change (group name, principals, request id),
    /// naming every bad field.
    fn parse_member_change(
        group: &str,
        principals: &[String],
        request_id: &str,
    ) -> Result<(RequestId, String, String, Vec<String>), Error> {
        let mut errs = Vec::new();
        let request_id = self::request_id(request_id, &mut errs);
        let parsed_group = parse_uuid_child(group, "employeeGroups", "group")
            .map_err(|v| errs.push(v))
            .ok();
        let parsed_principals = parse_principals(principals, &mut errs);
        if principals.is_empty() {
            errs.push(FieldViolation::new("principals", "is required"));
        }
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let (bn9, id) = parsed(parsed_group, "group")?;
        Ok((
            request_id,
            bn9.as_str().to_owned(),
            id.to_string(),
            parsed_principals,
        ))
    }

    /// Adds members to (`adding`) or removes them from a group in the unit
    /// of work: the revision bump, the change, audit, the event naming the
    /// members changed and, on removal, the members left with no role
    /// (R-AC-7). Returns the group and the revision token.
    async fn change_group_members<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        group: (&str, &str),
        principals: &[String],
        adding: bool,
    ) -> Result<(pb::EmployeeGroup, String), Error> {
        let (bn9, id) = group;
        let revision = w.bump_revision(bn9).await?;
        let mut g = self.load_group_for_change(w.txn(), bn9, id, "").await?;
        if adding {
            let roles = store::group_roles(w.txn(), &g.id).await?;
            self.check_members(w.txn(), bn9, principals, &roles).await?;
        }
        let mut changed = Vec::new();
        for p in principals {
            let did = if adding {
                store::add_group_member(w.txn(), &g.id, bn9, p).await?
            } else {
                store::remove_group_member(w.txn(), &g.id, p).await?
            };
            if did {
                changed.push(p.clone());
            }
        }
        g.version += 1;
        g.update_time = w.now();
        store::upsert_group(w.txn(), &g).await?;
        let proto = self.group_proto(w.txn(), &g).await?;
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
        w.record(
            Change::new(EventType::EmployeeGroupMembersChanged, action, &proto.name)
                .acting_for(bn9)
                .principals(changed.clone())
                .after(after),
        )
        .await?;
        if !adding {
            Self::prune_roleless(w, bn9, &changed).await?;
        }
        Ok((proto, revision))
    }

    /// The `AddEmployeeGroupMembers` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(group = %req.group))]
    pub async fn add_employee_group_members(
        &self,
        who: &Caller,
        req: pb::AddEmployeeGroupMembersRequest,
    ) -> Result<pb::AddEmployeeGroupMembersResponse, Error> {
        const METHOD: &str = "AddEmployeeGroupMembers";
        let (request_id, bn9, id, principals) =
            Self::parse_member_change(&req.group, &req.principals, &req.request_id)?;
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        let mut w = begin!(self, by);
        let (group, revision) = self
            .change_group_members(&mut w, (&bn9, &id), &principals, true)
            .await?;
        let response = pb::AddEmployeeGroupMembersResponse {
            group: Some(group),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }

    /// The `RemoveEmployeeGroupMembers` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(group = %req.group))]
    pub async fn remove_employee_group_members(
        &self,
        who: &Caller,
        req: pb::RemoveEmployeeGroupMembersRequest,
    ) -> Result<pb::RemoveEmployeeGroupMembersResponse, Error> {
        const METHOD: &str = "RemoveEmployeeGroupMembers";
        let (request_id, bn9, id, principals) =
            Self::parse_member_change(&req.group, &req.principals, &req.request_id)?;
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        let mut w = begin!(self, by);
        let (group, revision) = self
            .change_group_members(&mut w, (&bn9, &id), &principals, false)
            .await?;
        let response = pb::RemoveEmployeeGroupMembersResponse {
            group: Some(group),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }
}
