//! Relationship requests (R-DE-1, R-DE-2): send, withdraw, list, approve, reject.

use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::paging::page_size;
use ccp_platform::store::{Begun, Change, UnitOfWork, WriteBy};
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;
use chrono::Duration;
use prost::Message;

use super::convert::{
    level_from, parse_expiry, parse_name, parse_parent, parse_programs, parse_visibility,
    relationship_to_proto, request_id, request_state_from, request_to_proto,
};
use super::relationships::relationship_json;
use super::{Core, pair_scope, record_pair, stored};
use crate::domain::{
    Level, Party, Relationship, RelationshipRequest, RequestState, bounded_text, reminder_schedule,
};
use crate::store::{self, Decision, RequestFilter};

impl Core {
    /// SendRelationshipRequest.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn send_request(
        &self,
        principal: String,
        req: pb::SendRelationshipRequestRequest,
    ) -> Result<pb::SendRelationshipRequestResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let provider = parse_parent("parent", &req.parent)
            .map_err(|e| v.push(e))
            .ok();
        let client = ccp_types::BusinessRef::parse(&req.client, "client")
            .map_err(|e| v.push(e))
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
            .map_err(|why| v.push(why.at("note")))
            .ok();
        let (Some(request_id), Some(provider), Some(client), Some(note), true) =
            (request_id, provider, client, note, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        if let Some(r) = self
            .answered(&principal, "SendRelationshipRequest", &request_id)
            .await?
        {
            return Ok(r);
        }
        let registered = self.ensure_registered(client.as_str()).await?;
        let mut w = match self
            .writer
            .begin(WriteBy::idempotent(
                &principal,
                "SendRelationshipRequest",
                request_id,
            ))
            .await?
        {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let now = stored(w.now());
        let revision = w
            .bump_revision(&pair_scope(provider.as_str(), client.as_str()))
            .await?;
        if let Some(existing) =
            store::pending_request_of_pair(w.txn(), provider.as_str(), client.as_str()).await?
        {
            if existing.state_at(now) == RequestState::Expired {
                self.record_request_lapse(&mut w, &existing, &revision)
                    .await?;
            } else {
                return Err(Error::already_exists(format!(
                    "a request to {client} is already pending: businesses/{provider}/sentRequests/{}",
                    existing.id
                )));
            }
        }
        // Re-read under the pair lock: the registration may have been recorded meanwhile.
        let registered = registered
            || store::registered_at(w.txn(), client.as_str())
                .await?
                .is_some();
        let (visible, expire) = if registered {
            (Some(now), Some(now + Duration::days(self.pending_days)))
        } else {
            (None, None)
        };
        let row = RelationshipRequest {
            id: uuid::Uuid::now_v7().to_string(),
            provider: provider.to_string(),
            client: client.to_string(),
            program_accounts: programs,
            note,
            state: RequestState::Pending,
            sender: principal.clone(),
            create_time: now,
            visible_time: visible,
            expire_time: expire,
            decide_time: None,
            decided_by: String::new(),
            reject_reason: String::new(),
            relationship_id: String::new(),
        };
        if let Err(err) = store::insert_request(w.txn(), &row).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::already_exists(format!(
                    "a request to {client} is already pending"
                )));
            }
            return Err(err.into());
        }
        let proto = request_to_proto(&row, Party::Provider, now);
        record_pair(
            &mut w,
            &row.provider,
            &row.client,
            Party::Provider,
            Some(&principal),
            Change::new(
                EventType::RelationshipRequestSent,
                "delegation.request.send",
                &proto.name,
            )
            .after(request_json(&row))
            .details(serde_json::json!({"visible": registered})),
        )
        .await?;
        let resp = pb::SendRelationshipRequestResponse {
            request: Some(proto),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
    }

    /// WithdrawRelationshipRequest (provider side).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn withdraw_request(
        &self,
        principal: String,
        req: pb::WithdrawRelationshipRequestRequest,
    ) -> Result<pb::WithdrawRelationshipRequestResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "sentRequests")
            .map_err(|e| v.push(e))
            .ok();
        let (Some(request_id), Some((provider, id)), true) = (request_id, name, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let by = WriteBy::idempotent(&principal, "WithdrawRelationshipRequest", request_id);
        let mut w = match self.writer.begin(by).await? {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let under = |r: &RelationshipRequest| r.provider == provider.as_str();
        let (request, revision) = self
            .close_request(
                &mut w,
                Closing {
                    principal: &principal,
                    id: &id,
                    by: Party::Provider,
                    state: RequestState::Withdrawn,
                    reject_reason: "",
                },
                under,
            )
            .await?;
        let resp = pb::WithdrawRelationshipRequestResponse {
            request: Some(request),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
    }

    /// Closes a pending request without a relationship (withdrawn by the
    /// provider, rejected by the client) in the unit of work, with its audit
    /// record and event; returns it as its closer names it, and the pair's
    /// revision. NOT_FOUND unless `under` holds.
    async fn close_request<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        c: Closing<'_>,
        under: impl Fn(&RelationshipRequest) -> bool,
    ) -> Result<(pb::RelationshipRequest, String)> {
        let (row, revision) = self.lock_request(w, c.id, under).await?;
        let now = stored(w.now());
        self.decide(w, &row, c.state, c.principal, c.reject_reason, "")
            .await?;
        let after = store::get_request(w.txn(), c.id)
            .await?
            .ok_or_else(|| Error::not_found("request not found"))?;
        let proto = request_to_proto(&after, c.by, now);
        let (event, action) = match c.by {
            Party::Provider => (
                EventType::RelationshipRequestWithdrawn,
                "delegation.request.withdraw",
            ),
            Party::Client => (
                EventType::RelationshipRequestRejected,
                "delegation.request.reject",
            ),
        };
        let mut change = Change::new(event, action, &proto.name)
            .before(request_json(&row))
            .after(request_json(&after));
        if c.by == Party::Client {
            // The notifications service tells both sides why.
            change = change.details(serde_json::json!({"reject_reason": after.reject_reason}));
        }
        record_pair(
            w,
            &row.provider,
            &row.client,
            c.by,
            Some(c.principal),
            change,
        )
        .await?;
        Ok((proto, revision))
    }

    /// Records a decision (withdraw, approve, reject) on a request that must
    /// still be pending at the unit's instant.
    async fn decide<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        row: &RelationshipRequest,
        state: RequestState,
        by: &str,
        reject_reason: &str,
        relationship_id: &str,
    ) -> Result<()> {
        let now = stored(w.now());
        row.state_at(now).decide()?;
        let decision = Decision {
            state,
            at: now,
            by,
            reject_reason,
            relationship_id,
        };
        if !store::decide_request(w.txn(), &row.id, &decision).await? {
            return Err(Error::failed_precondition(
                "the request is no longer pending",
            ));
        }
        Ok(())
    }

    /// Reads a request to find its pair, then bumps (and on PostgreSQL locks)
    /// the pair in the unit of work and re-reads it; returns it with the
    /// pair's revision. NOT_FOUND when it does not live under the named parent.
    pub(crate) async fn lock_request<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        id: &str,
        under: impl Fn(&RelationshipRequest) -> bool,
    ) -> Result<(RelationshipRequest, String)> {
        let not_found = || Error::not_found("relationship request not found");
        let first = store::get_request(self.db(), id)
            .await?
            .ok_or_else(not_found)?;
        if !under(&first) {
            return Err(not_found());
        }
        let revision = w
            .bump_revision(&pair_scope(&first.provider, &first.client))
            .await?;
        let row = store::get_request(w.txn(), id)
            .await?
            .ok_or_else(not_found)?;
        Ok((row, revision))
    }

    /// ListReceivedRequests: visible requests only.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_received(
        &self,
        caller: &str,
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
                caller,
                client.as_str(),
                Party::Client,
                req.state,
                req.page_size,
                &req.page_token,
            )
            .await?;
        let now = self.now();
        Ok(pb::ListReceivedRequestsResponse {
            requests: rows
                .iter()
                .map(|r| request_to_proto(r, Party::Client, now))
                .collect(),
            next_page_token: next,
        })
    }

    /// ListSentRequests.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_sent(
        &self,
        caller: &str,
        req: pb::ListSentRequestsRequest,
    ) -> Result<pb::ListSentRequestsResponse> {
        let provider = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let (rows, next) = self
            .list_requests_of(
                caller,
                provider.as_str(),
                Party::Provider,
                req.state,
                req.page_size,
                &req.page_token,
            )
            .await?;
        let now = self.now();
        Ok(pb::ListSentRequestsResponse {
            requests: rows
                .iter()
                .map(|r| request_to_proto(r, Party::Provider, now))
                .collect(),
            next_page_token: next,
        })
    }

    /// Lists a business's requests on one side; the client sees visible ones only.
    async fn list_requests_of(
        &self,
        caller: &str,
        bn: &str,
        side: Party,
        state: i32,
        size: i32,
        token: &str,
    ) -> Result<(Vec<RelationshipRequest>, String)> {
        let size = page_size(size, 50, 500)?;
        let rpc = match side {
            Party::Client => "delegation.ListReceivedRequests",
            Party::Provider => "delegation.ListSentRequests",
        };
        let pages = self.pages(rpc, bn, format!("state={state}"), caller);
        let after = pages.decode(token)?;
        let state = match state {
            0 => None,
            s => Some(
                request_state_from(s)
                    .ok_or_else(|| Error::invalid_field("state", "unknown state"))?,
            ),
        };
        let rows = store::list_requests(
            self.db(),
            &RequestFilter {
                side,
                business: bn.to_owned(),
                visible_only: side == Party::Client,
                state,
                now: self.now(),
                after,
                limit: size as u64 + 1,
            },
        )
        .await?;
        Ok(pages.finish_page(rows, size, |r| r.id.clone()))
    }

    /// ApproveRelationshipRequest (client side).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn approve_request(
        &self,
        principal: String,
        req: pb::ApproveRelationshipRequestRequest,
    ) -> Result<pb::ApproveRelationshipRequestResponse> {
        let now = self.now();
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
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
        let (
            Some(request_id),
            Some((client, id)),
            Some(level),
            Some(expire),
            Some(visibility),
            true,
        ) = (request_id, name, level, expire, visibility, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        if let Some(r) = self
            .answered(&principal, "ApproveRelationshipRequest", &request_id)
            .await?
        {
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
        let mut w = match self
            .writer
            .begin(WriteBy::idempotent(
                &principal,
                "ApproveRelationshipRequest",
                request_id,
            ))
            .await?
        {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let now = stored(now);
        let (row, revision) = self
            .lock_request(&mut w, &id, |r| {
                r.client == client.as_str() && r.visible_time.is_some()
            })
            .await?;
        row.state_at(now).decide()?;
        if let Some(current) =
            store::unended_relationship_of_pair(w.txn(), &row.provider, &row.client).await?
        {
            if current.status_at(now).is_active() {
                return Err(Error::failed_precondition(format!(
                    "a relationship with {} is active; update businesses/{}/relationships/{} instead",
                    row.provider, row.client, current.id
                )));
            }
            let provider_rev = w.bump_revision(&row.provider).await?;
            self.record_relationship_lapse(&mut w, &current, &provider_rev)
                .await?;
        } else {
            w.bump_revision(&row.provider).await?;
        }
        let rel = Relationship {
            id: uuid::Uuid::now_v7().to_string(),
            provider: row.provider.clone(),
            client: row.client.clone(),
            request_id: row.id.clone(),
            level,
            program_accounts: programs,
            visibility: visibility.iter().collect(),
            start_time: now,
            expire_time: stored(expire),
            ended: None,
            ended_by: String::new(),
            end_note: String::new(),
            update_time: now,
            version: 1,
            reminders: reminder_schedule(expire, now).map(|d| d.map(stored)),
        };
        if let Err(err) = store::insert_relationship(w.txn(), &rel).await {
            if ccp_platform::db::is_unique_violation(&err) {
                return Err(Error::failed_precondition(format!(
                    "a relationship with {} is active; update it instead",
                    row.provider
                )));
            }
            return Err(err.into());
        }
        self.decide(
            &mut w,
            &row,
            RequestState::Approved,
            &principal,
            "",
            &rel.id,
        )
        .await?;
        let after = store::get_request(w.txn(), &id)
            .await?
            .ok_or_else(|| Error::not_found("request not found"))?;
        let rel_proto = relationship_to_proto(&rel, &rel.client, now);
        record_pair(
            &mut w,
            &row.provider,
            &row.client,
            Party::Client,
            Some(&principal),
            Change::new(
                EventType::RelationshipRequestApproved,
                "delegation.request.approve",
                &rel_proto.name,
            )
            .before(request_json(&row))
            .after(relationship_json(&rel))
            .details(serde_json::json!({"relationship": rel.id}))
            .revision(&revision),
        )
        .await?;
        let resp = pb::ApproveRelationshipRequestResponse {
            request: Some(request_to_proto(&after, Party::Client, now)),
            relationship: Some(rel_proto),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
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
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn reject_request(
        &self,
        principal: String,
        req: pb::RejectRelationshipRequestRequest,
    ) -> Result<pb::RejectRelationshipRequestResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "receivedRequests")
            .map_err(|e| v.push(e))
            .ok();
        let reason = bounded_text(&req.reason, 1, 500)
            .map_err(|why| v.push(why.at("reason")))
            .ok();
        let (Some(request_id), Some((client, id)), Some(reason), true) =
            (request_id, name, reason, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        if let Some(r) = self
            .answered(&principal, "RejectRelationshipRequest", &request_id)
            .await?
        {
            return Ok(r);
        }
        self.ensure_registered(client.as_str()).await?;
        let mut w = match self
            .writer
            .begin(WriteBy::idempotent(
                &principal,
                "RejectRelationshipRequest",
                request_id,
            ))
            .await?
        {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let under =
            |r: &RelationshipRequest| r.client == client.as_str() && r.visible_time.is_some();
        let (request, revision) = self
            .close_request(
                &mut w,
                Closing {
                    principal: &principal,
                    id: &id,
                    by: Party::Client,
                    state: RequestState::Rejected,
                    reject_reason: &reason,
                },
                under,
            )
            .await?;
        let resp = pb::RejectRelationshipRequestResponse {
            request: Some(request),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
    }
}

/// How a request closes without a relationship.
struct Closing<'a> {
    /// Who closes it.
    principal: &'a str,
    /// The request.
    id: &'a str,
    /// The side that closes it (the provider withdraws, the client rejects).
    by: Party,
    /// Withdrawn or rejected.
    state: RequestState,
    /// The client's reason (rejections).
    reject_reason: &'a str,
}

/// Returns the audit JSON of a request.
fn request_json(r: &RelationshipRequest) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "provider": r.provider,
        "client": r.client,
        "program_accounts": r.program_accounts,
        "note": r.note,
        "state": r.state.as_str(),
        "decided_by": r.decided_by,
        "reject_reason": r.reject_reason,
        "relationship": r.relationship_id,
    })
}
