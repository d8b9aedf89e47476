//! Members and their roles (R-AC-4, R-AC-5, R-AC-7): people and machine
//! credentials, direct roles, effective roles, the last-BAM invariant.

use std::collections::HashMap;

use ccp_platform::auth::{Caller, Principal};
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::paging::page_size;
use ccp_platform::store::{self as pstore, Change, UnitOfWork, WriteBy};
use ccp_proto::accounts::v1 as pb;
use ccp_proto::common::v1::{EventType, Role};
use prost::Message;
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{
    Core, effective_of, page_after_pair, pair_key, parse_member_name, parsed, program_roles,
    reject, request_id,
};
use crate::domain::{AccountsError, Grants, MemberKind};
use crate::store;

fn member_json(m: &store::MemberRow, roles: &[(String, i32)]) -> serde_json::Value {
    json!({
        "principal": m.principal,
        "business_manager": m.business_manager,
        "program_roles": roles.iter().map(|(r, l)| json!({"program_account": format!("{}{r}", m.bn9), "role": l})).collect::<Vec<_>>(),
    })
}

/// The audit of a member's roles set by [`Core::apply_grants`]: recorded on
/// its own, or with the event of the write that set them.
pub(super) struct GrantChange {
    action: &'static str,
    target: String,
    principal: String,
    bn9: String,
    before: serde_json::Value,
    after: serde_json::Value,
}

impl GrantChange {
    /// Returns the change, publishing `event` naming the member when given.
    pub(super) fn change(self, event: Option<EventType>) -> Change {
        let change = match event {
            Some(event) => {
                Change::new(event, self.action, &self.target).principals([self.principal])
            }
            None => Change::audit(self.action, &self.target),
        };
        change
            .acting_for(self.bn9)
            .before(self.before)
            .after(self.after)
    }
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

    /// Sets (or, with `merge`, adds to) the direct roles of `member` (a
    /// principal of kind `kind`, labelled `display_name` when a credential),
    /// creating the member when needed. Returns the member row and the audit
    /// of the change, which the caller records.
    pub(super) async fn apply_grants<R: Message + Default>(
        w: &UnitOfWork<R>,
        member: (&str, MemberKind, &str),
        bn9: &str,
        grants: &Grants,
        merge: bool,
    ) -> Result<(store::MemberRow, GrantChange), Error> {
        let (principal, kind, display_name) = member;
        let now = w.now();
        let txn = w.txn();
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
            kind: existing.as_ref().map_or(kind, |m| m.kind),
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
        let after = member_json(&row, &roles);
        Ok((
            row,
            GrantChange {
                action,
                target,
                principal: principal.to_owned(),
                bn9: bn9.to_owned(),
                before,
                after,
            },
        ))
    }

    /// Removes every given member left with no role at all (R-AC-7), with
    /// audit and events; returns the principals removed.
    pub(super) async fn prune_roleless<R: Message + Default>(
        w: &mut UnitOfWork<R>,
        bn9: &str,
        principals: &[String],
    ) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for p in principals {
            let Some(m) = store::member(w.txn(), bn9, p).await? else {
                continue;
            };
            if store::has_any_role(w.txn(), bn9, p).await? {
                continue;
            }
            store::delete_member(w.txn(), bn9, p).await?;
            let target = format!("businesses/{bn9}/members/{p}");
            w.record(
                Change::new(EventType::MemberRemoved, "accounts.member.remove", &target)
                    .acting_for(bn9)
                    .principals([p.clone()])
                    .before(member_json(&m, &[]))
                    .details(json!({"reason": "no role left"})),
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
        out.pop()
            .ok_or_else(|| Error::from(AccountsError::NoSuchMember))
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
                let person = m.kind == MemberKind::Person;
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

    /// The `ListEmployees` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_employees(
        &self,
        who: &Caller,
        req: pb::ListEmployeesRequest,
    ) -> Result<pb::ListEmployeesResponse, Error> {
        let mut errs = Vec::new();
        let bn9 = ccp_types::BusinessRef::parse(&req.parent, "parent")
            .map_err(|v| errs.push(v))
            .ok();
        let mut filter = store::MemberFilter::default();
        if !req.program_account.is_empty() {
            match ccp_types::ProgramAccountRef::parse(&req.program_account, "program_account") {
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
        let pages = self.pages(
            "accounts.ListEmployees",
            bn9.as_str(),
            format!(
                "program_account={:?} role={:?}",
                filter.reference, filter.role
            ),
            who,
        );
        let after = page_after_pair(&pages, &req.page_token)?;
        if store::business(&self.db, bn9.as_str()).await?.is_none() {
            return Err(Error::from(AccountsError::NoSuchBusiness));
        }
        let rows =
            store::list_members(&self.db, bn9.as_str(), after, &filter, size as u64 + 1).await?;
        let (rows, next) = pages.finish_page(rows, size, |m| pair_key(m.join_time, &m.principal));
        let profiles = self
            .profiles(rows.iter().map(|m| m.principal.as_str()))
            .await?;
        let members = self.member_protos(&self.db, &rows, &profiles).await?;
        Ok(pb::ListEmployeesResponse {
            members,
            next_page_token: next,
        })
    }

    /// The `GetMember` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn get_member(&self, req: pb::GetMemberRequest) -> Result<pb::Member, Error> {
        let (bn9, principal) =
            parse_member_name(&req.name, "name").map_err(|v| Error::invalid(vec![v]))?;
        let m = store::member(&self.db, bn9.as_str(), &principal.to_string())
            .await?
            .ok_or_else(|| Error::from(AccountsError::NoSuchMember))?;
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
            .map_err(|status| Error::upstream("identity", status))?
            .into_inner();
        let now = self.now();
        let expired = facts
            .expire_time
            .as_ref()
            .and_then(pstore::from_timestamp)
            .is_some_and(|t| t <= now);
        if !facts.exists || facts.business != bn9 {
            return Err(Error::from(AccountsError::ForeignCredential));
        }
        if facts.revoked || expired {
            return Err(Error::from(AccountsError::InactiveCredential));
        }
        Ok(facts.display_name)
    }

    /// The `SetMemberRoles` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn set_member_roles(
        &self,
        who: &Caller,
        req: pb::SetMemberRolesRequest,
    ) -> Result<pb::SetMemberRolesResponse, Error> {
        const METHOD: &str = "SetMemberRoles";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let parsed_name = parse_member_name(&req.name, "name")
            .map_err(|v| errs.push(v))
            .ok();
        let mut grants = None;
        if let Some((bn9, principal)) = &parsed_name {
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
        let request_id = parsed(request_id, "request_id")?;
        let (Some((bn9, principal)), Some(grants)) = (parsed_name, grants) else {
            return Err(Error::invalid_field("name", "is invalid"));
        };
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        if let Some(answer) = self.writer.replayed(&by).await? {
            return Ok(answer);
        }
        let bn9 = bn9.as_str();
        let target = principal.to_string();
        let label = if principal.is_person() {
            String::new()
        } else {
            self.check_credential(bn9, &principal).await?
        };
        let profiles = self.profiles([target.as_str()]).await.unwrap_or_default();
        // Identity was asked before the transaction: none is held across a
        // network call.
        let mut w = begin!(self, by);
        let revision = w.bump_revision(bn9).await?;
        if store::business(w.txn(), bn9).await?.is_none() {
            return Err(Error::from(AccountsError::NoSuchBusiness));
        }
        let existing = store::member(w.txn(), bn9, &target).await?;
        match &existing {
            None if principal.is_person() => return Err(Error::from(AccountsError::NoSuchMember)),
            None if !req.etag.is_empty() => {
                return Err(Error::from(AccountsError::MemberChanged));
            }
            Some(m) if m.version.to_string() != req.etag => {
                return Err(Error::from(AccountsError::MemberChanged));
            }
            _ => {}
        }
        if existing.is_none() && grants.is_empty() {
            return Err(Error::invalid_field(
                "grants",
                "must grant at least one role to add a credential",
            ));
        }
        self.check_programs(w.txn(), bn9, &grants, "grants.program_roles")
            .await?;
        if existing.as_ref().is_some_and(|m| m.business_manager)
            && !grants.business_manager
            && store::count_bams(w.txn(), bn9).await? <= 1
        {
            return Err(Error::from(AccountsError::LastBusinessManager));
        }
        let kind = if principal.is_person() {
            MemberKind::Person
        } else {
            MemberKind::Credential
        };
        let (row, audit) =
            Self::apply_grants(&w, (&target, kind, &label), bn9, &grants, false).await?;
        // A member left with no role at all is removed (R-AC-7); else the
        // roles change is published with its audit record.
        let response = if store::has_any_role(w.txn(), bn9, &target).await? {
            w.record(audit.change(Some(EventType::MemberRolesChanged)))
                .await?;
            pb::SetMemberRolesResponse {
                member: Some(self.member_proto(w.txn(), &row, &profiles).await?),
                removed: false,
                revision,
            }
        } else {
            w.record(audit.change(None)).await?;
            Self::prune_roleless(&mut w, bn9, std::slice::from_ref(&target)).await?;
            pb::SetMemberRolesResponse {
                member: None,
                removed: true,
                revision,
            }
        };
        Ok(w.commit(response).await?.into_inner())
    }

    /// The `RemoveMember` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn remove_member(
        &self,
        who: &Caller,
        req: pb::RemoveMemberRequest,
    ) -> Result<pb::RemoveMemberResponse, Error> {
        const METHOD: &str = "RemoveMember";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let parsed_name = parse_member_name(&req.name, "name")
            .map_err(|v| errs.push(v))
            .ok();
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let (bn9, principal) = parsed(parsed_name, "name")?;
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        let mut w = begin!(self, by);
        let bn9 = bn9.as_str();
        let target = principal.to_string();
        let revision = w.bump_revision(bn9).await?;
        let m = store::member(w.txn(), bn9, &target)
            .await?
            .ok_or_else(|| Error::from(AccountsError::NoSuchMember))?;
        if !req.etag.is_empty() && req.etag != m.version.to_string() {
            return Err(Error::from(AccountsError::MemberChanged));
        }
        if m.business_manager && store::count_bams(w.txn(), bn9).await? <= 1 {
            return Err(Error::from(AccountsError::LastBusinessManager));
        }
        let roles: Vec<(String, i32)> = store::direct_roles(w.txn(), bn9, &target)
            .await?
            .into_iter()
            .map(|r| (r.reference, r.role))
            .collect();
        store::delete_member(w.txn(), bn9, &target).await?;
        let name = format!("businesses/{bn9}/members/{target}");
        w.record(
            Change::new(EventType::MemberRemoved, "accounts.member.remove", &name)
                .acting_for(bn9)
                .principals([target.clone()])
                .before(member_json(&m, &roles)),
        )
        .await?;
        Ok(w.commit(pb::RemoveMemberResponse { revision })
            .await?
            .into_inner())
    }
}
