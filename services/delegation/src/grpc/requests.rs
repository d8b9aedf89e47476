//! Relationship requests (R-DE-1, R-DE-2): send, withdraw, list, approve, reject.

use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::paging::{decode_token, finish_page, page_size};
use ccp_platform::store::from_timestamp;
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;
use chrono::Duration;

use super::convert::{
    Side, level_from, parse_name, parse_parent, parse_programs, relationship_to_proto,
    request_state, request_state_from, request_to_proto, visibility_from,
};
use super::core::{Change, Core, Write, check_request_id};
use crate::domain::{
    Level, RequestState, VisibilityRules, bounded_text, check_expiry, reminder_schedule,
};
use crate::store::{self, RelationshipRow, RequestFilter, RequestRow, encode_list, us};

impl Core {
    /// SendRelationshipRequest.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn send_request(
        &self,
        principal: String,
        req: pb::SendRelationshipRequestRequest,
    ) -> Result<pb::SendRelationshipRequestResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let provider = parse_parent("parent", &req.parent)
            .map_err(|e| v.push(e))
            .ok();
        let client = crate::domain::Bn9::parse(&req.client)
            .map_err(|why| v.push(FieldViolation::new("client", why)))
            .ok();
        if let (Some(p), Some(c)) = (&provider, &client)
            && p == c
        {
            v.push(FieldViolation::new(
                "client",
                "a provider cannot send a request to itself",
            ));
        }
        let programs = parse_programs(
            "program_accounts",
            &req.program_accounts,
            client.as_ref(),
            &mut v,
        );
        let note = bounded_text(&req.note, 1, 500)
            .map_err(|why| v.push(FieldViolation::new("note", why)))
            .ok();
        let (Some(provider), Some(client), Some(note), true) =
            (provider, client, note, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "SendRelationshipRequest",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        let registered = self.ensure_registered(client.as_str()).await?;
        let now = self.now();
        let txn = self.begin().await?;
        let revision = self
            .bump_pair(&txn, provider.as_str(), client.as_str())
            .await?;
        if let Some(existing) =
            store::pending_request_of_pair(&txn, provider.as_str(), client.as_str()).await?
        {
            if request_state(&existing, now) == RequestState::Expired {
                self.record_request_lapse(&txn, &existing, &revision)
                    .await?;
            } else {
                return Err(Error::already_exists(format!(
                    "a request to {client} is already pending: businesses/{provider}/sentRequests/{}",
                    existing.id
                )));
            }
        }
        // Re-read under the pair lock: the registration may have been recorded meanwhile.
        let registered = registered || store::registered_at(&txn, client.as_str()).await?.is_some();
        let (visible, expire) = if registered {
            let e = now + Duration::days(self.pending_days);
            (Some(us(now)), Some(us(e)))
        } else {
            (None, None)
        };
        let row = RequestRow {
            id: uuid::Uuid::now_v7().to_string(),
            provider: provider.to_string(),
            client: client.to_string(),
            program_accounts: encode_list(&programs),
            note,
            state: RequestState::Pending.as_str().to_owned(),
            sender: w.principal.clone(),
            create_us: us(now),
            visible_us: visible,
            expire_us: expire,
            decide_us: None,
            decided_by: String::new(),
            reject_reason: String::new(),
            relationship_id: String::new(),
        };
        if let Err(err) = store::insert_request(&txn, &row).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::already_exists(format!(
                    "a request to {client} is already pending"
                )));
            }
            return Err(err.into());
        }
        let proto = request_to_proto(&row, Side::Provider, now);
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: row.provider.clone(),
                other_business: Some(row.client.clone()),
                action: "delegation.request.send".to_owned(),
                target: proto.name.clone(),
                after_json: request_json(&row),
                event: EventType::RelationshipRequestSent as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                principals: vec![w.principal.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                details_json: serde_json::json!({"visible": registered}).to_string(),
                ..Change::default()
            },
        )
        .await?;
        let resp = pb::SendRelationshipRequestResponse {
            request: Some(proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }

    /// WithdrawRelationshipRequest (provider side).
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn withdraw_request(
        &self,
        principal: String,
        req: pb::WithdrawRelationshipRequestRequest,
    ) -> Result<pb::WithdrawRelationshipRequestResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "sentRequests")
            .map_err(|e| v.push(e))
            .ok();
        let (Some((provider, id)), true) = (name, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "WithdrawRelationshipRequest",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        let (row, revision, txn) = self
            .lock_request(&id, |r| r.provider == provider.as_str())
            .await?;
        let now = self.now();
        request_state(&row, now)
            .decide()
            .map_err(Error::failed_precondition)?;
        if !store::decide_request(
            &txn,
            &id,
            RequestState::Withdrawn.as_str(),
            us(now),
            &w.principal,
            "",
            "",
        )
        .await?
        {
            return Err(Error::failed_precondition(
                "the request is no longer pending",
            ));
        }
        let after = store::get_request(&txn, &id)
            .await?
            .ok_or_else(|| Error::not_found("request not found"))?;
        let proto = request_to_proto(&after, Side::Provider, now);
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: row.provider.clone(),
                other_business: Some(row.client.clone()),
                action: "delegation.request.withdraw".to_owned(),
                target: proto.name.clone(),
                before_json: request_json(&row),
                after_json: request_json(&after),
                event: EventType::RelationshipRequestWithdrawn as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                principals: vec![w.principal.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                ..Change::default()
            },
        )
        .await?;
        let resp = pb::WithdrawRelationshipRequestResponse {
            request: Some(proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }

    /// Reads a request to find its pair, then opens a transaction that bumps
    /// (and on PostgreSQL locks) the pair and re-reads it. NOT_FOUND when it
    /// does not live under the named parent.
    pub(crate) async fn lock_request(
        &self,
        id: &str,
        under: impl Fn(&RequestRow) -> bool,
    ) -> Result<(RequestRow, String, sea_orm::DatabaseTransaction)> {
        let not_found = || Error::not_found("relationship request not found");
        let first = store::get_request(&self.db, id)
            .await?
            .ok_or_else(not_found)?;
        if !under(&first) {
            return Err(not_found());
        }
        let txn = self.begin().await?;
        let revision = self.bump_pair(&txn, &first.provider, &first.client).await?;
        let row = store::get_request(&txn, id).await?.ok_or_else(not_found)?;
        Ok((row, revision, txn))
    }

    /// ListReceivedRequests: visible requests only.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn list_received(
        &self,
        req: pb::ListReceivedRequestsRequest,
    ) -> Result<pb::ListReceivedRequestsResponse> {
        let client = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        // Learn of a registration now rather than wait for accounts' event;
        // a list still answers from what is known when accounts cannot.
        if let Err(err) = self.ensure_registered(client.as_str()).await {
            tracing::warn!(error = %err, "registration check failed; listing known requests");
        }
        let (rows, next) = self
            .list_requests_of(
                client.as_str(),
                "client",
                true,
                req.state,
                req.page_size,
                &req.page_token,
            )
            .await?;
        let now = self.now();
        Ok(pb::ListReceivedRequestsResponse {
            requests: rows
                .iter()
                .map(|r| request_to_proto(r, Side::Client, now))
                .collect(),
            next_page_token: next,
        })
    }

    /// ListSentRequests.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn list_sent(
        &self,
        req: pb::ListSentRequestsRequest,
    ) -> Result<pb::ListSentRequestsResponse> {
        let provider = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let (rows, next) = self
            .list_requests_of(
                provider.as_str(),
                "provider",
                false,
                req.state,
                req.page_size,
                &req.page_token,
            )
            .await?;
        let now = self.now();
        Ok(pb::ListSentRequestsResponse {
            requests: rows
                .iter()
                .map(|r| request_to_proto(r, Side::Provider, now))
                .collect(),
            next_page_token: next,
        })
    }

    async fn list_requests_of(
        &self,
        bn: &str,
        side_column: &'static str,
        visible_only: bool,
        state: i32,
        size: i32,
        token: &str,
    ) -> Result<(Vec<RequestRow>, String)> {
        let size = page_size(size, 50, 500)?;
        let after = decode_token(token)?;
        let state = match state {
            0 => None,
            s => Some(
                request_state_from(s)
                    .ok_or_else(|| Error::invalid_field("state", "unknown state"))?
                    .as_str(),
            ),
        };
        let rows = store::list_requests(
            &self.db,
            &RequestFilter {
                side_column,
                business: bn.to_owned(),
                visible_only,
                state,
                now_us: us(self.now()),
                after,
                limit: size as u64 + 1,
            },
        )
        .await?;
        Ok(finish_page(rows, size, |r| r.id.clone()))
    }

    /// ApproveRelationshipRequest (client side).
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn approve_request(
        &self,
        principal: String,
        req: pb::ApproveRelationshipRequestRequest,
    ) -> Result<pb::ApproveRelationshipRequestResponse> {
        let now = self.now();
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "receivedRequests")
            .map_err(|e| v.push(e))
            .ok();
        let client = name.as_ref().map(|(c, _)| c.clone());
        let level = level_from(req.level);
        if level.is_none() {
            v.push(FieldViolation::new("level", "must be BUSINESS or PROGRAM"));
        }
        let programs = parse_programs(
            "program_accounts",
            &req.program_accounts,
            client.as_ref(),
            &mut v,
        );
        match level {
            Some(Level::Program) if req.program_accounts.is_empty() => v.push(FieldViolation::new(
                "program_accounts",
                "program level needs at least one program account",
            )),
            Some(Level::Business) if !req.program_accounts.is_empty() => {
                v.push(FieldViolation::new(
                    "program_accounts",
                    "business level covers every program; name none",
                ))
            }
            _ => {}
        }
        let expire = parse_expiry(
            "expire_time",
            req.expire_time.as_ref(),
            now,
            self.max_days,
            &mut v,
        );
        let visibility = parse_visibility("visibility", &req.visibility, &mut v);
        let (Some((client, id)), Some(level), Some(expire), Some(visibility), true) =
            (name, level, expire, visibility, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "ApproveRelationshipRequest",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        self.ensure_registered(client.as_str()).await?;
        if level == Level::Program {
            self.check_client_programs(
                client.as_str(),
                &programs,
                &req.program_accounts,
                "program_accounts",
            )
            .await?;
        }
        let (row, revision, txn) = self
            .lock_request(&id, |r| {
                r.client == client.as_str() && r.visible_us.is_some()
            })
            .await?;
        request_state(&row, now)
            .decide()
            .map_err(Error::failed_precondition)?;
        if let Some(current) =
            store::unended_relationship_of_pair(&txn, &row.provider, &row.client).await?
        {
            if super::convert::relationship_status(&current, now).is_active() {
                return Err(Error::failed_precondition(format!(
                    "a relationship with {} is active; update businesses/{}/relationships/{} instead",
                    row.provider, row.client, current.id
                )));
            }
            let provider_rev = self.bump_business(&txn, &row.provider).await?;
            self.record_relationship_lapse(&txn, &current, &provider_rev)
                .await?;
        } else {
            self.bump_business(&txn, &row.provider).await?;
        }
        let reminders = reminder_schedule(expire, now);
        let rel = RelationshipRow {
            id: uuid::Uuid::now_v7().to_string(),
            provider: row.provider.clone(),
            client: row.client.clone(),
            request_id: row.id.clone(),
            level: level.as_str().to_owned(),
            program_accounts: encode_list(&programs),
            visibility: encode_list(
                &visibility
                    .iter()
                    .map(|v| v.as_str().to_owned())
                    .collect::<Vec<_>>(),
            ),
            start_us: us(now),
            expire_us: us(expire),
            end_us: None,
            end_reason: None,
            ended_by: String::new(),
            end_note: String::new(),
            update_us: us(now),
            version: 1,
            remind_30_us: reminders[0].map(us),
            remind_7_us: reminders[1].map(us),
            remind_1_us: reminders[2].map(us),
        };
        if let Err(err) = store::insert_relationship(&txn, &rel).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::failed_precondition(format!(
                    "a relationship with {} is active; update it instead",
                    row.provider
                )));
            }
            return Err(err.into());
        }
        if !store::decide_request(
            &txn,
            &id,
            RequestState::Approved.as_str(),
            us(now),
            &w.principal,
            "",
            &rel.id,
        )
        .await?
        {
            return Err(Error::failed_precondition(
                "the request is no longer pending",
            ));
        }
        let after = store::get_request(&txn, &id)
            .await?
            .ok_or_else(|| Error::not_found("request not found"))?;
        let rel_proto = relationship_to_proto(&rel, &rel.client, now);
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: row.client.clone(),
                other_business: Some(row.provider.clone()),
                action: "delegation.request.approve".to_owned(),
                target: rel_proto.name.clone(),
                before_json: request_json(&row),
                after_json: super::relationships::relationship_json(&rel),
                event: EventType::RelationshipRequestApproved as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                principals: vec![w.principal.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                details_json: serde_json::json!({"relationship": rel.id}).to_string(),
            },
        )
        .await?;
        let resp = pb::ApproveRelationshipRequestResponse {
            request: Some(request_to_proto(&after, Side::Client, now)),
            relationship: Some(rel_proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }

    /// Checks that every program is one of the client's per accounts' facts.
    pub(crate) async fn check_client_programs(
        &self,
        client: &str,
        programs: &[String],
        given: &[String],
        field: &str,
    ) -> Result<()> {
        let facts = self.business_facts(client).await?;
        let mut v = Vec::new();
        for p in programs {
            if !facts.program_accounts.iter().any(|q| q == p) {
                let i = given.iter().position(|g| g == p).unwrap_or(0);
                v.push(FieldViolation::new(
                    format!("{field}[{i}]"),
                    "is not a program account of the client",
                ));
            }
        }
        if v.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(v))
        }
    }

    /// RejectRelationshipRequest (client side).
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn reject_request(
        &self,
        principal: String,
        req: pb::RejectRelationshipRequestRequest,
    ) -> Result<pb::RejectRelationshipRequestResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "receivedRequests")
            .map_err(|e| v.push(e))
            .ok();
        let reason = bounded_text(&req.reason, 1, 500)
            .map_err(|why| v.push(FieldViolation::new("reason", why)))
            .ok();
        let (Some((client, id)), Some(reason), true) = (name, reason, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "RejectRelationshipRequest",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        self.ensure_registered(client.as_str()).await?;
        let (row, revision, txn) = self
            .lock_request(&id, |r| {
                r.client == client.as_str() && r.visible_us.is_some()
            })
            .await?;
        let now = self.now();
        request_state(&row, now)
            .decide()
            .map_err(Error::failed_precondition)?;
        if !store::decide_request(
            &txn,
            &id,
            RequestState::Rejected.as_str(),
            us(now),
            &w.principal,
            &reason,
            "",
        )
        .await?
        {
            return Err(Error::failed_precondition(
                "the request is no longer pending",
            ));
        }
        let after = store::get_request(&txn, &id)
            .await?
            .ok_or_else(|| Error::not_found("request not found"))?;
        let proto = request_to_proto(&after, Side::Client, now);
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: row.client.clone(),
                other_business: Some(row.provider.clone()),
                action: "delegation.request.reject".to_owned(),
                target: proto.name.clone(),
                before_json: request_json(&row),
                after_json: request_json(&after),
                event: EventType::RelationshipRequestRejected as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                principals: vec![w.principal.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                ..Change::default()
            },
        )
        .await?;
        let resp = pb::RejectRelationshipRequestResponse {
            request: Some(proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }
}

/// Parses an expiry instant chosen now: required, future, within the maximum.
pub(crate) fn parse_expiry(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
    now: chrono::DateTime<chrono::Utc>,
    max_days: i64,
    v: &mut Vec<FieldViolation>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let Some(ts) = ts else {
        v.push(FieldViolation::new(field, "is required"));
        return None;
    };
    let Some(t) = from_timestamp(ts) else {
        v.push(FieldViolation::new(field, "is not a valid instant"));
        return None;
    };
    match check_expiry(t, now, max_days) {
        Ok(()) => Some(t),
        Err(why) => {
            v.push(FieldViolation::new(field, why));
            None
        }
    }
}

/// Parses visibility rules (must include the provider's own submissions).
pub(crate) fn parse_visibility(
    field: &str,
    items: &[i32],
    v: &mut Vec<FieldViolation>,
) -> Option<VisibilityRules> {
    let mut parsed = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match visibility_from(*item) {
            Some(x) => parsed.push(x),
            None => {
                ok = false;
                v.push(FieldViolation::new(
                    format!("{field}[{i}]"),
                    "unknown visibility",
                ));
            }
        }
    }
    match VisibilityRules::new(parsed) {
        Ok(rules) if ok => Some(rules),
        Ok(_) => None,
        Err(why) => {
            v.push(FieldViolation::new(field, why));
            None
        }
    }
}

fn request_json(r: &RequestRow) -> String {
    serde_json::json!({
        "id": r.id,
        "provider": r.provider,
        "client": r.client,
        "program_accounts": store::decode_list(&r.program_accounts),
        "note": r.note,
        "state": r.state,
        "decided_by": r.decided_by,
        "reject_reason": r.reject_reason,
        "relationship": r.relationship_id,
    })
    .to_string()
}
