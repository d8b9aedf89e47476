//! Members and their roles (R-AC-4, R-AC-5, R-AC-7): people and machine
//! credentials, direct roles, effective roles, the last-BAM invariant.

use std::collections::HashMap;

use ccp_platform::auth::{Caller, Principal};
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::paging::{finish_page, page_size};
use ccp_platform::store as pstore;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::common::v1::{EventType, Role};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{
    Core, check_request_id, effective_of, page_after_pair, pair_key, parse_member_name,
    program_roles, reject,
};
use crate::domain::{Bn9, Bn15, Grants};
use crate::store;

fn member_json(m: &store::MemberRow, roles: &[(String, i32)]) -> serde_json::Value {
    json!({
        "principal": m.principal,
        "business_manager": m.business_manager,
        "program_roles": roles.iter().map(|(r, l)| json!({"program_account": format!("{}{r}", m.bn9), "role": l})).collect::<Vec<_>>(),
    })
}

impl Core {
    /// Refuses programs that are not the business's.
    pub(super) async fn check_programs<C: ConnectionTrait>(
        &self,
        db: &C,
        bn9: &str,
        grants: &Grants,
        field: &str,
    ) -> Result<(), Error> {
        let linked = store::programs(db, bn9, "", 100_000).await?;
        let mut errs = Vec::new();
        for reference in grants.programs.keys() {
            if !linked.iter().any(|p| p.reference == reference.as_str()) {
                errs.push(FieldViolation::new(
                    field,
                    format!("{bn9}{reference} is not a program account of this business"),
                ));
            }
        }
        reject(errs)
    }

    /// Sets (or, with `merge`, adds to) a member's direct roles, creating the
    /// member when needed; audits the change. Returns the member row.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply_grants<C: ConnectionTrait>(
        &self,
        txn: &C,
        bn9: &str,
        principal: &str,
        kind: &str,
        display_name: &str,
        grants: &Grants,
        merge: bool,
        actor: &str,
        request_id: &str,
    ) -> Result<store::MemberRow, Error> {
        let now = self.now();
        let existing = store::member(txn, bn9, principal).await?;
        let old_roles: Vec<(String, i32)> = match &existing {
            Some(_) => store::direct_roles(txn, bn9, principal)
                .await?
                .into_iter()
                .map(|r| (r.reference, r.role))
                .collect(),
            None => Vec::new(),
        };
        let mut roles: Vec<(String, i32)> = grants
            .programs
            .iter()
            .map(|(r, l)| (r.as_str().to_owned(), l.as_i32()))
            .collect();
        let mut bam = grants.business_manager;
        if merge {
            let merged = effective_of(old_roles.iter().cloned().chain(roles.iter().cloned()));
            roles = merged
                .iter()
                .map(|(r, l)| (r.as_str().to_owned(), l.as_i32()))
                .collect();
            bam = bam || existing.as_ref().is_some_and(|m| m.business_manager);
        }
        let row = store::MemberRow {
            bn9: bn9.to_owned(),
            principal: principal.to_owned(),
            kind: existing
                .as_ref()
                .map_or_else(|| kind.to_owned(), |m| m.kind.clone()),
            display_name: if display_name.is_empty() {
                existing
                    .as_ref()
                    .map(|m| m.display_name.clone())
                    .unwrap_or_default()
            } else {
                display_name.to_owned()
            },
            business_manager: bam,
            join_time: existing.as_ref().map_or(now, |m| m.join_time),
            version: existing.as_ref().map_or(1, |m| m.version + 1),
        };
        store::upsert_member(txn, &row).await?;
        store::set_direct_roles(txn, bn9, principal, &roles).await?;
        let target = format!("businesses/{bn9}/members/{principal}");
        let before = existing
            .as_ref()
            .map_or(serde_json::Value::Null, |m| member_json(m, &old_roles));
        let action = if existing.is_some() {
            "accounts.member.set_roles"
        } else {
            "accounts.member.add"
        };
        self.audit(
            txn,
            actor,
            Some(bn9),
            action,
            &target,
            before,
            member_json(&row, &roles),
            request_id,
        )
        .await?;
        Ok(row)
    }

    /// Removes every given member left with no role at all (R-AC-7), with
    /// audit and events; returns the principals removed.
    pub(super) async fn prune_roleless<C: ConnectionTrait>(
        &self,
        txn: &C,
        bn9: &str,
        principals: &[String],
        actor: &str,
        revision: &str,
        request_id: &str,
    ) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for p in principals {
            let Some(m) = store::member(txn, bn9, p).await? else {
                continue;
            };
            if store::has_any_role(txn, bn9, p).await? {
                continue;
            }
            store::delete_member(txn, bn9, p).await?;
            let target = format!("businesses/{bn9}/members/{p}");
            self.audit(
                txn,
                actor,
                Some(bn9),
                "accounts.member.remove",
                &target,
                member_json(&m, &[]),
                serde_json::Value::Null,
                request_id,
            )
            .await?;
            self.emit(
                txn,
                EventType::MemberRemoved,
                &[bn9],
                vec![p.clone()],
                revision,
                actor,
                &target,
                json!({"reason": "no role left"}),
            )
            .await?;
            removed.push(p.clone());
        }
        Ok(removed)
    }

    /// Returns the contract's Member for a row.
    pub(super) async fn member_proto<C: ConnectionTrait>(
        &self,
        db: &C,
        m: &store::MemberRow,
        profiles: &HashMap<String, (String, String)>,
    ) -> Result<pb::Member, Error> {
        let mut out = self
            .member_protos(db, std::slice::from_ref(m), profiles)
            .await?;
        out.pop().ok_or_else(|| Error::not_found("no such member"))
    }

    /// Returns the contract's Members for rows of one business, with three
    /// queries in all (direct roles, role sources, groups), however many rows.
    pub(super) async fn member_protos<C: ConnectionTrait>(
        &self,
        db: &C,
        rows: &[store::MemberRow],
        profiles: &HashMap<String, (String, String)>,
    ) -> Result<Vec<pb::Member>, Error> {
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let bn9 = first.bn9.as_str();
        let principals: Vec<String> = rows.iter().map(|m| m.principal.clone()).collect();
        let mut direct: HashMap<&str, Vec<(String, i32)>> = HashMap::new();
        let direct_rows = store::direct_roles_many(db, bn9, &principals).await?;
        for r in &direct_rows {
            direct
                .entry(r.principal.as_str())
                .or_default()
                .push((r.reference.clone(), r.role));
        }
        let mut sources: HashMap<&str, Vec<(String, i32)>> = HashMap::new();
        let source_rows = store::role_sources(db, bn9, &principals).await?;
        for r in &source_rows {
            sources
                .entry(r.principal.as_str())
                .or_default()
                .push((r.reference.clone(), r.role));
        }
        let mut groups: HashMap<&str, Vec<String>> = HashMap::new();
        let group_rows = store::member_groups_many(db, bn9, &principals).await?;
        for g in &group_rows {
            groups
                .entry(g.principal.as_str())
                .or_default()
                .push(format!("businesses/{bn9}/employeeGroups/{}", g.group_id));
        }
        Ok(rows
            .iter()
            .map(|m| {
                let person = m.kind == "PERSON";
                let (name, email) = if person {
                    profiles.get(&m.principal).cloned().unwrap_or_default()
                } else {
                    (m.display_name.clone(), String::new())
                };
                let key = m.principal.as_str();
                pb::Member {
                    name: format!("businesses/{}/members/{}", m.bn9, m.principal),
                    principal: m.principal.clone(),
                    kind: if person {
                        pb::MemberKind::Person
                    } else {
                        pb::MemberKind::Credential
                    } as i32,
                    display_name: name,
                    email,
                    business_manager: m.business_manager,
                    direct_roles: program_roles(
                        &m.bn9,
                        &effective_of(direct.get(key).cloned().unwrap_or_default()),
                    ),
                    effective_roles: program_roles(
                        &m.bn9,
                        &effective_of(sources.get(key).cloned().unwrap_or_default()),
                    ),
                    employee_groups: groups.get(key).cloned().unwrap_or_default(),
                    join_time: Some(pstore::timestamp(m.join_time)),
                    etag: m.version.to_string(),
                }
            })
            .collect())
    }

    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub(super) async fn list_employees(
        &self,
        req: pb::ListEmployeesRequest,
    ) -> Result<pb::ListEmployeesResponse, Error> {
        let mut errs = Vec::new();
        let bn9 = Bn9::parse_name(&req.parent, "parent")
            .map_err(|v| errs.push(v))
            .ok();
        let mut filter = store::MemberFilter::default();
        if !req.program_account.is_empty() {
            match Bn15::parse(&req.program_account, "program_account") {
                Ok(p) if bn9.as_ref().is_some_and(|b| b != p.bn9()) => {
                    errs.push(FieldViolation::new(
                        "program_account",
                        "is not a program account of this business",
                    ));
                }
                Ok(p) => filter.reference = Some(p.reference().as_str().to_owned()),
                Err(v) => errs.push(v),
            }
        }
        match Role::try_from(req.role) {
            Ok(Role::Unspecified) => {}
            Ok(r) => filter.role = Some(r as i32),
            Err(_) => errs.push(FieldViolation::new("role", "is not a known role")),
        }
        let size = page_size(req.page_size, 50, 500)
            .map_err(|e| errs.extend(e.violations().to_vec()))
            .ok();
        reject(errs)?;
        let (Some(bn9), Some(size)) = (bn9, size) else {
            return Err(Error::invalid_field("parent", "is invalid"));
        };
        let after = page_after_pair(&req.page_token)?;
        if store::business(&self.db, bn9.as_str()).await?.is_none() {
            return Err(Error::not_found("no such business"));
        }
        let rows =
            store::list_members(&self.db, bn9.as_str(), after, &filter, size as u64 + 1).await?;
        let (rows, next) = finish_page(rows, size, |m| pair_key(m.join_time, &m.principal));
        let profiles = self
            .profiles(rows.iter().map(|m| m.principal.as_str()))
            .await?;
        let members = self.member_protos(&self.db, &rows, &profiles).await?;
        Ok(pb::ListEmployeesResponse {
            members,
            next_page_token: next,
        })
    }

    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub(super) async fn get_member(&self, req: pb::GetMemberRequest) -> Result<pb::Member, Error> {
        let (bn9, principal) =
            parse_member_name(&req.name, "name").map_err(|v| Error::invalid(vec![v]))?;
        let m = store::member(&self.db, bn9.as_str(), &principal.to_string())
            .await?
            .ok_or_else(|| Error::not_found("no such member"))?;
        let profiles = self.profiles([m.principal.as_str()]).await?;
        self.member_proto(&self.db, &m, &profiles).await
    }

    /// Checks with identity that a credential is an active credential of the business.
    async fn check_credential(&self, bn9: &str, principal: &Principal) -> Result<String, Error> {
        let mut client = self.identity.clone();
        let facts = client
            .get_credential(ccp_proto::identity::v1::GetCredentialRequest {
                credential_id: principal.id().to_string(),
            })
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "identity get_credential failed");
                Error::unavailable("identity is unavailable")
            })?
            .into_inner();
        let now = self.now();
        let expired = facts
            .expire_time
            .as_ref()
            .and_then(pstore::from_timestamp)
            .is_some_and(|t| t <= now);
        if !facts.exists || facts.business != bn9 {
            return Err(Error::failed_precondition(
                "the credential is not a machine credential of this business",
            ));
        }
        if facts.revoked || expired {
            return Err(Error::failed_precondition(
                "the credential is revoked or expired",
            ));
        }
        Ok(facts.display_name)
    }

    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub(super) async fn set_member_roles(
        &self,
        who: &Caller,
        req: pb::SetMemberRolesRequest,
    ) -> Result<pb::SetMemberRolesResponse, Error> {
        const METHOD: &str = "SetMemberRoles";
        let mut errs = Vec::new();
        check_request_id(&req.request_id, &mut errs);
        let parsed = parse_member_name(&req.name, "name")
            .map_err(|v| errs.push(v))
            .ok();
        let mut grants = None;
        if let Some((bn9, principal)) = &parsed {
            let g = req.grants.clone().unwrap_or_default();
            let raw: Vec<(String, i32)> = g
                .program_roles
                .iter()
                .map(|r| (r.program_account.clone(), r.role))
                .collect();
            match Grants::parse(bn9, g.business_manager, &raw, "grants.program_roles") {
                Ok(p) => {
                    if !principal.is_person()
                        && let Err(v) = p.check_for_credential("grants")
                    {
                        errs.extend(v);
                    }
                    grants = Some(p);
                }
                Err(v) => errs.extend(v),
            }
        }
        reject(errs)?;
        let (Some((bn9, principal)), Some(grants)) = (parsed, grants) else {
            return Err(Error::invalid_field("name", "is invalid"));
        };
        let actor = who.principal.to_string();
        if let Some(r) = self.replay(&actor, METHOD, &req.request_id).await? {
            return Ok(r);
        }
        let bn9 = bn9.as_str();
        let target = principal.to_string();
        let label = if principal.is_person() {
            String::new()
        } else {
            self.check_credential(bn9, &principal).await?
        };
        let profiles = self.profiles([target.as_str()]).await.unwrap_or_default();
        let txn = self.begin().await?;
        let counter = pstore::bump_revision(&txn, bn9).await?;
        let revision = Self::revision(bn9, counter);
        if store::business(&txn, bn9).await?.is_none() {
            return Err(Error::not_found("no such business"));
        }
        let existing = store::member(&txn, bn9, &target).await?;
        match &existing {
            None if principal.is_person() => return Err(Error::not_found("no such member")),
            None if !req.etag.is_empty() => {
                return Err(Error::aborted("the member has changed; read it again"));
            }
            Some(m) if m.version.to_string() != req.etag => {
                return Err(Error::aborted("the member has changed; read it again"));
            }
            _ => {}
        }
        if existing.is_none() && grants.is_empty() {
            return Err(Error::invalid_field(
                "grants",
                "must grant at least one role to add a credential",
            ));
        }
        self.check_programs(&txn, bn9, &grants, "grants.program_roles")
            .await?;
        if existing.as_ref().is_some_and(|m| m.business_manager)
            && !grants.business_manager
            && store::count_bams(&txn, bn9).await? <= 1
        {
            return Err(Error::failed_precondition(
                "this is the business's last active Business Account Manager (R-AC-5)",
            ));
        }
        let kind = if principal.is_person() {
            "PERSON"
        } else {
            "CREDENTIAL"
        };
        let row = self
            .apply_grants(
                &txn,
                bn9,
                &target,
                kind,
                &label,
                &grants,
                false,
                &actor,
                &req.request_id,
            )
            .await?;
        let removed = self
            .prune_roleless(
                &txn,
                bn9,
                std::slice::from_ref(&target),
                &actor,
                &revision,
                &req.request_id,
            )
            .await?;
        let response = if removed.is_empty() {
            self.emit(
                &txn,
                EventType::MemberRolesChanged,
                &[bn9],
                vec![target.clone()],
                &revision,
                &actor,
                &format!("businesses/{bn9}/members/{target}"),
                serde_json::Value::Null,
            )
            .await?;
            pb::SetMemberRolesResponse {
                member: Some(self.member_proto(&txn, &row, &profiles).await?),
                removed: false,
                revision,
            }
        } else {
            pb::SetMemberRolesResponse {
                member: None,
                removed: true,
                revision,
            }
        };
        self.finish(txn, &actor, METHOD, &req.request_id, response)
            .await
    }

    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub(super) async fn remove_member(
        &self,
        who: &Caller,
        req: pb::RemoveMemberRequest,
    ) -> Result<pb::RemoveMemberResponse, Error> {
        const METHOD: &str = "RemoveMember";
        let mut errs = Vec::new();
        check_request_id(&req.request_id, &mut errs);
        let parsed = parse_member_name(&req.name, "name")
            .map_err(|v| errs.push(v))
            .ok();
        reject(errs)?;
        let Some((bn9, principal)) = parsed else {
            return Err(Error::invalid_field("name", "is invalid"));
        };
        let actor = who.principal.to_string();
        if let Some(r) = self.replay(&actor, METHOD, &req.request_id).await? {
            return Ok(r);
        }
        let bn9 = bn9.as_str();
        let target = principal.to_string();
        let txn = self.begin().await?;
        let counter = pstore::bump_revision(&txn, bn9).await?;
        let revision = Self::revision(bn9, counter);
        let m = store::member(&txn, bn9, &target)
            .await?
            .ok_or_else(|| Error::not_found("no such member"))?;
        if !req.etag.is_empty() && req.etag != m.version.to_string() {
            return Err(Error::aborted("the member has changed; read it again"));
        }
        if m.business_manager && store::count_bams(&txn, bn9).await? <= 1 {
            return Err(Error::failed_precondition(
                "this is the business's last active Business Account Manager (R-AC-5)",
            ));
        }
        let roles: Vec<(String, i32)> = store::direct_roles(&txn, bn9, &target)
            .await?
            .into_iter()
            .map(|r| (r.reference, r.role))
            .collect();
        store::delete_member(&txn, bn9, &target).await?;
        let name = format!("businesses/{bn9}/members/{target}");
        self.audit(
            &txn,
            &actor,
            Some(bn9),
            "accounts.member.remove",
            &name,
            member_json(&m, &roles),
            serde_json::Value::Null,
            &req.request_id,
        )
        .await?;
        self.emit(
            &txn,
            EventType::MemberRemoved,
            &[bn9],
            vec![target.clone()],
            &revision,
            &actor,
            &name,
            serde_json::Value::Null,
        )
        .await?;
        self.finish(
            txn,
            &actor,
            METHOD,
            &req.request_id,
            pb::RemoveMemberResponse { revision },
        )
        .await
    }
}
