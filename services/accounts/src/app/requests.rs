//! Employee access requests (R-AC-3): request, withdraw, list, approve,
//! reject, and expiry (by the sweep and at approval time).

use std::collections::HashMap;

use ccp_platform::auth::Caller;
use ccp_platform::error::{Error, FieldViolation};
use ccp_platform::paging::page_size;
use ccp_platform::store::{self as pstore, Begun, Change, UnitOfWork, WriteBy};
use ccp_proto::accounts::v1 as pb;
use ccp_proto::common::v1::{EventType, ProgramRole, RoleGrants};
use serde_json::json;

use super::{Core, page_after_pair, pair_key, parse_uuid_child, parsed, reject, request_id};
use crate::domain::{AccountsError, Grants, MemberKind, RequestState};
use crate::store;

fn state_to_proto(s: RequestState) -> i32 {
    use pb::EmployeeRequestState as S;
    (match s {
        RequestState::Pending => S::Pending,
        RequestState::Approved => S::Approved,
        RequestState::Rejected => S::Rejected,
        RequestState::Withdrawn => S::Withdrawn,
        RequestState::Expired => S::Expired,
    }) as i32
}

fn state_filter(n: i32) -> Result<Option<RequestState>, Error> {
    use pb::EmployeeRequestState as S;
    Ok(
        match S::try_from(n).map_err(|_| Error::invalid_field("state", "is not a known state"))? {
            S::Unspecified => None,
            S::Pending => Some(RequestState::Pending),
            S::Approved => Some(RequestState::Approved),
            S::Rejected => Some(RequestState::Rejected),
            S::Withdrawn => Some(RequestState::Withdrawn),
            S::Expired => Some(RequestState::Expired),
        },
    )
}

pub(super) fn grants_json(g: &RoleGrants) -> String {
    json!({
        "business_manager": g.business_manager,
        "program_roles": g.program_roles.iter().map(|r| json!({"program_account": r.program_account, "role": r.role})).collect::<Vec<_>>(),
    })
    .to_string()
}

fn grants_from_json(s: &str) -> Option<RoleGrants> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let bam = v.get("business_manager")?.as_bool()?;
    let roles = v
        .get("program_roles")?
        .as_array()?
        .iter()
        .filter_map(|r| {
            Some(ProgramRole {
                program_account: r.get("program_account")?.as_str()?.to_owned(),
                role: i32::try_from(r.get("role")?.as_i64()?).ok()?,
            })
        })
        .collect();
    Some(RoleGrants {
        business_manager: bam,
        program_roles: roles,
    })
}

pub(super) fn request_proto(
    r: &store::RequestRow,
    profiles: &HashMap<String, (String, String)>,
    legal_name: &str,
) -> pb::EmployeeRequest {
    let (name, email) = profiles.get(&r.requester).cloned().unwrap_or_default();
    pb::EmployeeRequest {
        name: format!("businesses/{}/employeeRequests/{}", r.bn9, r.id),
        requester: r.requester.clone(),
        requester_name: name,
        requester_email: email,
        note: r.note.clone(),
        state: state_to_proto(r.state),
        create_time: Some(pstore::timestamp(r.create_time)),
        expire_time: Some(pstore::timestamp(r.expire_time)),
        decide_time: r.decide_time.map(pstore::timestamp),
        decided_by: r.decided_by.clone(),
        reject_reason: r.reject_reason.clone(),
        granted: grants_from_json(&r.granted_json),
        business_legal_name: legal_name.to_owned(),
    }
}

fn check_text(v: &str, field: &str, errs: &mut Vec<FieldViolation>) {
    let n = v.trim().chars().count();
    if let Err(violation) = ccp_types::check_multiline(v, field) {
        errs.push(violation);
    } else if n == 0 {
        errs.push(FieldViolation::new(field, "is required"));
    } else if v.chars().count() > 500 {
        errs.push(FieldViolation::new(field, "must be at most 500 characters"));
    }
}

impl Core {
    async fn legal_name<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        bn9: &str,
    ) -> Result<String, Error> {
        Ok(store::business(db, bn9)
            .await?
            .map(|b| b.legal_name)
            .unwrap_or_default())
    }

    /// The `RequestEmployeeAccess` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn request_employee_access(
        &self,
        who: &Caller,
        req: pb::RequestEmployeeAccessRequest,
    ) -> Result<pb::RequestEmployeeAccessResponse, Error> {
        const METHOD: &str = "RequestEmployeeAccess";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let bn9 = ccp_types::BusinessRef::parse(&req.parent, "parent")
            .map_err(|v| errs.push(v))
            .ok();
        check_text(&req.note, "note", &mut errs);
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let bn9 = parsed(bn9, "parent")?;
        who.require_profile()?;
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        let mut w = begin!(self, by);
        let bn9 = bn9.as_str();
        let now = w.now();
        let revision = w.bump_revision(bn9).await?;
        let Some(business) = store::business(w.txn(), bn9).await? else {
            return Err(Error::from(AccountsError::NoSuchBusiness));
        };
        if store::member(w.txn(), bn9, &actor).await?.is_some() {
            return Err(Error::from(AccountsError::AlreadyMember));
        }
        let row = store::RequestRow {
            id: uuid::Uuid::now_v7().to_string(),
            bn9: bn9.to_owned(),
            requester: actor.clone(),
            note: req.note.trim().to_owned(),
            state: RequestState::Pending,
            create_time: now,
            expire_time: now
                + chrono::Duration::days(i64::from(self.settings.employee_request_ttl_days)),
            decide_time: None,
            decided_by: String::new(),
            reject_reason: String::new(),
            granted_json: String::new(),
        };
        if let Err(err) = store::insert_request(w.txn(), &row).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::from(AccountsError::AlreadyRequested));
            }
            return Err(err.into());
        }
        let name = format!("businesses/{bn9}/employeeRequests/{}", row.id);
        // The request names no program: the managers of every program of the business are
        // told (the notifications service), with the business's BAMs.
        let program_managers = store::program_managers(w.txn(), bn9).await?;
        w.record(
            Change::new(
                EventType::EmployeeRequestCreated,
                "accounts.employee_request.create",
                &name,
            )
            .acting_for(bn9)
            .principals([actor.clone()])
            .after(json!({"note": row.note, "state": "PENDING"}))
            .details(json!({"note": row.note, "program_managers": program_managers})),
        )
        .await?;
        let response = pb::RequestEmployeeAccessResponse {
            request: Some(request_proto(&row, &HashMap::new(), &business.legal_name)),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }

    /// Loads a request under a business, NOT_FOUND when it lives elsewhere.
    async fn load_request<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        bn9: &str,
        id: &str,
    ) -> Result<store::RequestRow, Error> {
        store::request(db, bn9, id)
            .await?
            .ok_or_else(|| Error::from(AccountsError::NoSuchRequest))
    }

    /// Moves a request to a final state in the unit of work, with audit
    /// and event; `system` when the system decides (expiry), else the
    /// unit's actor.
    async fn decide<R: prost::Message + Default>(
        w: &mut UnitOfWork<R>,
        row: &mut store::RequestRow,
        to: RequestState,
        system: bool,
        reason: &str,
        granted: Option<&RoleGrants>,
    ) -> Result<(), Error> {
        let actor = if system {
            "system".to_owned()
        } else {
            w.actor().to_owned()
        };
        let before = json!({"state": row.state.as_str()});
        row.state = to;
        row.decide_time = Some(w.now());
        row.decided_by = if matches!(to, RequestState::Approved | RequestState::Rejected) {
            actor.clone()
        } else {
            String::new()
        };
        row.reject_reason = reason.to_owned();
        row.granted_json = granted.map(grants_json).unwrap_or_default();
        if !store::decide_request(w.txn(), row).await? {
            return Err(Error::from(AccountsError::NotPending));
        }
        let (action, kind) = match to {
            RequestState::Approved => ("approve", EventType::EmployeeRequestApproved),
            RequestState::Rejected => ("reject", EventType::EmployeeRequestRejected),
            RequestState::Withdrawn => ("withdraw", EventType::EmployeeRequestWithdrawn),
            RequestState::Expired | RequestState::Pending => {
                ("expire", EventType::EmployeeRequestExpired)
            }
        };
        let name = format!("businesses/{}/employeeRequests/{}", row.bn9, row.id);
        w.record(
            Change::new(kind, format!("accounts.employee_request.{action}"), &name)
                .by(actor)
                .acting_for(&row.bn9)
                .principals([row.requester.clone()])
                .before(before)
                .after(json!({"state": row.state.as_str(), "reason": row.reject_reason, "granted": row.granted_json}))
                .details(if to == RequestState::Rejected {
                    json!({"reject_reason": row.reject_reason})
                } else {
                    serde_json::Value::Null
                }),
        )
        .await
    }

    /// The `WithdrawEmployeeRequest` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn withdraw_employee_request(
        &self,
        who: &Caller,
        req: pb::WithdrawEmployeeRequestRequest,
    ) -> Result<pb::WithdrawEmployeeRequestResponse, Error> {
        const METHOD: &str = "WithdrawEmployeeRequest";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let parsed_name = parse_uuid_child(&req.name, "employeeRequests", "name")
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
        let mut row = self.load_request(w.txn(), bn9, &id.to_string()).await?;
        if row.requester != actor {
            return Err(Error::from(AccountsError::NoSuchRequest));
        }
        let state = row.state;
        state.decide(
            RequestState::Withdrawn,
            chrono::DateTime::<chrono::Utc>::MAX_UTC,
            w.now(),
        )?;
        Self::decide(&mut w, &mut row, RequestState::Withdrawn, false, "", None).await?;
        let legal = self.legal_name(w.txn(), bn9).await?;
        let response = pb::WithdrawEmployeeRequestResponse {
            request: Some(request_proto(&row, &HashMap::new(), &legal)),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }

    /// The `RejectEmployeeRequest` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn reject_employee_request(
        &self,
        who: &Caller,
        req: pb::RejectEmployeeRequestRequest,
    ) -> Result<pb::RejectEmployeeRequestResponse, Error> {
        const METHOD: &str = "RejectEmployeeRequest";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let parsed_name = parse_uuid_child(&req.name, "employeeRequests", "name")
            .map_err(|v| errs.push(v))
            .ok();
        check_text(&req.reason, "reason", &mut errs);
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let (bn9, id) = parsed(parsed_name, "name")?;
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        let mut w = begin!(self, by);
        let bn9 = bn9.as_str();
        let revision = w.bump_revision(bn9).await?;
        let mut row = self.load_request(w.txn(), bn9, &id.to_string()).await?;
        let state = row.state;
        state.decide(RequestState::Rejected, row.expire_time, w.now())?;
        Self::decide(
            &mut w,
            &mut row,
            RequestState::Rejected,
            false,
            req.reason.trim(),
            None,
        )
        .await?;
        let legal = self.legal_name(w.txn(), bn9).await?;
        let response = pb::RejectEmployeeRequestResponse {
            request: Some(request_proto(&row, &HashMap::new(), &legal)),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }

    /// The `ApproveEmployeeRequest` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn approve_employee_request(
        &self,
        who: &Caller,
        req: pb::ApproveEmployeeRequestRequest,
    ) -> Result<pb::ApproveEmployeeRequestResponse, Error> {
        const METHOD: &str = "ApproveEmployeeRequest";
        let mut errs = Vec::new();
        let request_id = request_id(&req.request_id, &mut errs);
        let parsed_name = parse_uuid_child(&req.name, "employeeRequests", "name")
            .map_err(|v| errs.push(v))
            .ok();
        let mut grants = None;
        match (&parsed_name, &req.grants) {
            (_, None) => errs.push(FieldViolation::new("grants", "is required")),
            (Some((bn9, _)), Some(g)) => {
                let raw: Vec<(String, i32)> = g
                    .program_roles
                    .iter()
                    .map(|r| (r.program_account.clone(), r.role))
                    .collect();
                match Grants::parse(bn9, g.business_manager, &raw, "grants.program_roles") {
                    Ok(p) if p.is_empty() => errs.push(FieldViolation::new(
                        "grants",
                        "must grant at least one role",
                    )),
                    Ok(p) => grants = Some(p),
                    Err(v) => errs.extend(v),
                }
            }
            (None, Some(_)) => {}
        }
        reject(errs)?;
        let request_id = parsed(request_id, "request_id")?;
        let (Some((bn9, id)), Some(grants), Some(raw_grants)) =
            (parsed_name, grants, req.grants.clone())
        else {
            return Err(Error::invalid_field("name", "is invalid"));
        };
        let actor = who.principal.to_string();
        let by = WriteBy::idempotent(actor.clone(), METHOD, request_id);
        if let Some(answer) = self.writer.replayed(&by).await? {
            return Ok(answer);
        }
        let bn9 = bn9.as_str();
        // Names come from identity before the transaction, so no transaction
        // is held across a network call.
        let requester = store::request(&self.db, bn9, &id.to_string())
            .await?
            .map(|r| r.requester);
        let profiles = match &requester {
            Some(p) => self.profiles([p.as_str()]).await.unwrap_or_default(),
            None => HashMap::new(),
        };
        let mut w = begin!(self, by);
        let now = w.now();
        let revision = w.bump_revision(bn9).await?;
        let mut row = self.load_request(w.txn(), bn9, &id.to_string()).await?;
        let state = row.state;
        if state == RequestState::Pending && now >= row.expire_time {
            // Expiry is enforced at the moment of approval, too: record it.
            Self::decide(&mut w, &mut row, RequestState::Expired, true, "", None).await?;
            w.commit_without_answer().await?;
            return Err(Error::from(AccountsError::Expired));
        }
        state.decide(RequestState::Approved, row.expire_time, now)?;
        self.check_programs(w.txn(), bn9, &grants, "grants.program_roles")
            .await?;
        let (member, audit) = Self::apply_grants(
            &w,
            (&row.requester, MemberKind::Person, ""),
            bn9,
            &grants,
            true,
        )
        .await?;
        w.record(audit.change(None)).await?;
        Self::decide(
            &mut w,
            &mut row,
            RequestState::Approved,
            false,
            "",
            Some(&raw_grants),
        )
        .await?;
        let member = self.member_proto(w.txn(), &member, &profiles).await?;
        let legal = self.legal_name(w.txn(), bn9).await?;
        let response = pb::ApproveEmployeeRequestResponse {
            request: Some(request_proto(&row, &profiles, &legal)),
            member: Some(member),
            revision,
        };
        Ok(w.commit(response).await?.into_inner())
    }

    /// The `ListEmployeeRequests` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_employee_requests(
        &self,
        who: &Caller,
        req: pb::ListEmployeeRequestsRequest,
    ) -> Result<pb::ListEmployeeRequestsResponse, Error> {
        let bn9 = ccp_types::BusinessRef::parse(&req.parent, "parent")
            .map_err(|v| Error::invalid(vec![v]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let state = state_filter(req.state)?;
        let pages = self.pages(
            "accounts.ListEmployeeRequests",
            bn9.as_str(),
            format!("state={}", req.state),
            who,
        );
        let after = page_after_pair(&pages, &req.page_token)?;
        let Some(business) = store::business(&self.db, bn9.as_str()).await? else {
            return Err(Error::from(AccountsError::NoSuchBusiness));
        };
        let legal = business.legal_name;
        let rows = store::list_requests(
            &self.db,
            Some(bn9.as_str()),
            None,
            state,
            after,
            size as u64 + 1,
        )
        .await?;
        let (rows, next) = pages.finish_page(rows, size, |r| pair_key(r.create_time, &r.id));
        let profiles = self
            .profiles(rows.iter().map(|r| r.requester.as_str()))
            .await?;
        Ok(pb::ListEmployeeRequestsResponse {
            requests: rows
                .iter()
                .map(|r| request_proto(r, &profiles, &legal))
                .collect(),
            next_page_token: next,
        })
    }

    /// The `ListMyEmployeeRequests` use case (its rule: the contract and docs/rules.md).
    #[tracing::instrument(skip_all)]
    pub async fn list_my_employee_requests(
        &self,
        who: &Caller,
        req: pb::ListMyEmployeeRequestsRequest,
    ) -> Result<pb::ListMyEmployeeRequestsResponse, Error> {
        let size = page_size(req.page_size, 50, 500)?;
        let state = state_filter(req.state)?;
        let pages = self.pages(
            "accounts.ListMyEmployeeRequests",
            "",
            format!("state={}", req.state),
            who,
        );
        let after = page_after_pair(&pages, &req.page_token)?;
        let me = who.principal.to_string();
        let rows =
            store::list_requests(&self.db, None, Some(&me), state, after, size as u64 + 1).await?;
        let (rows, next) = pages.finish_page(rows, size, |r| pair_key(r.create_time, &r.id));
        let mut out = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        for r in &rows {
            if !names.contains_key(&r.bn9) {
                names.insert(r.bn9.clone(), self.legal_name(&self.db, &r.bn9).await?);
            }
            out.push(request_proto(
                r,
                &HashMap::new(),
                names.get(&r.bn9).map_or("", String::as_str),
            ));
        }
        Ok(pb::ListMyEmployeeRequestsResponse {
            requests: out,
            next_page_token: next,
        })
    }

    /// Expires every pending request whose time has come, each in its own transaction.
    pub(super) async fn sweep_expired(&self) -> Result<usize, Error> {
        let mut expired = 0;
        loop {
            let now = self.now();
            let rows = store::expired_pending(&self.db, now, 100).await?;
            if rows.is_empty() {
                return Ok(expired);
            }
            for mut row in rows {
                let mut w = match self.writer.begin::<()>(WriteBy::system()).await? {
                    Begun::Replayed(()) => continue,
                    Begun::Fresh(w) => *w,
                };
                w.bump_revision(&row.bn9).await?;
                match Self::decide(&mut w, &mut row, RequestState::Expired, true, "", None).await {
                    Ok(()) => {
                        w.commit(()).await?;
                        expired += 1;
                    }
                    Err(e) if e.code() == ccp_platform::error::ErrorCode::FailedPrecondition => {
                        drop(w);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
