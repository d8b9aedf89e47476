//! Relationships (R-DE-3, R-DE-4): get, list, update, end.

use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::paging::page_size;
use ccp_platform::store::{Begun, Change, UnitOfWork, WriteBy};
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;
use prost::Message;

use super::convert::{
    level_from, parse_expiry, parse_name, parse_parent, parse_programs, parse_visibility,
    relationship_to_proto, request_id,
};
use super::{Core, pair_scope, record_pair, stored};
use crate::domain::{EndReason, Level, Party, Relationship, bounded_text, reminder_schedule};
use crate::store::{self, RelationshipFilter};

impl Core {
    /// GetRelationship.
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn get_relationship(
        &self,
        req: pb::GetRelationshipRequest,
    ) -> Result<pb::Relationship> {
        let (bn, id) =
            parse_name("name", &req.name, "relationships").map_err(|e| Error::invalid(vec![e]))?;
        let row = store::get_relationship(self.db(), &id)
            .await?
            .filter(|r| r.client == bn.as_str() || r.provider == bn.as_str())
            .ok_or_else(|| Error::not_found("relationship not found"))?;
        Ok(relationship_to_proto(&row, bn.as_str(), self.now()))
    }

    /// ListRelationships.
    #[tracing::instrument(skip_all, fields(parent = %req.parent))]
    pub async fn list_relationships(
        &self,
        caller: &str,
        req: pb::ListRelationshipsRequest,
    ) -> Result<pb::ListRelationshipsResponse> {
        let bn = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let pages = self.pages(
            "delegation.ListRelationships",
            bn.as_str(),
            format!("side={} state={}", req.side, req.state),
            caller,
        );
        let after = pages.decode(&req.page_token)?;
        let side = match pb::RelationshipSide::try_from(req.side) {
            Ok(pb::RelationshipSide::Unspecified) => None,
            Ok(pb::RelationshipSide::Client) => Some(Party::Client),
            Ok(pb::RelationshipSide::Provider) => Some(Party::Provider),
            Err(_) => return Err(Error::invalid_field("side", "unknown side")),
        };
        let active = match pb::RelationshipState::try_from(req.state) {
            Ok(pb::RelationshipState::Unspecified) => None,
            Ok(pb::RelationshipState::Active) => Some(true),
            Ok(pb::RelationshipState::Ended) => Some(false),
            Err(_) => return Err(Error::invalid_field("state", "unknown state")),
        };
        let now = self.now();
        let rows = store::list_relationships(
            self.db(),
            &RelationshipFilter {
                business: bn.to_string(),
                side,
                active,
                now,
                after,
                limit: size as u64 + 1,
            },
        )
        .await?;
        let (rows, next) = pages.finish_page(rows, size, |r| r.id.clone());
        Ok(pb::ListRelationshipsResponse {
            relationships: rows
                .iter()
                .map(|r| relationship_to_proto(r, bn.as_str(), now))
                .collect(),
            next_page_token: next,
        })
    }

    /// Bumps (and locks) the relationship's pair and then its provider in the
    /// unit of work, and re-reads it; returns it with the pair's revision.
    /// NOT_FOUND unless it lives under `bn`.
    async fn lock_relationship<R: Message + Default>(
        &self,
        w: &mut UnitOfWork<R>,
        id: &str,
        bn: &str,
    ) -> Result<(Relationship, String)> {
        let not_found = || Error::not_found("relationship not found");
        let first = store::get_relationship(self.db(), id)
            .await?
            .filter(|r| r.client == bn || r.provider == bn)
            .ok_or_else(not_found)?;
        let revision = w
            .bump_revision(&pair_scope(&first.provider, &first.client))
            .await?;
        w.bump_revision(&first.provider).await?;
        let row = store::get_relationship(w.txn(), id)
            .await?
            .ok_or_else(not_found)?;
        Ok((row, revision))
    }

    /// UpdateRelationship (client side).
    #[tracing::instrument(skip_all)]
    pub async fn update_relationship(
        &self,
        principal: String,
        req: pb::UpdateRelationshipRequest,
    ) -> Result<pb::UpdateRelationshipResponse> {
        let now = self.now();
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let Some(rel) = req.relationship.as_ref() else {
            v.push(FieldViolation::new("relationship", "is required"));
            return Err(Error::invalid(v));
        };
        let name = parse_name("relationship.name", &rel.name, "relationships")
            .map_err(|e| v.push(e))
            .ok();
        if rel.etag.is_empty() {
            v.push(FieldViolation::new("relationship.etag", "is required"));
        }
        let paths: Vec<String> = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        if paths.is_empty() {
            v.push(FieldViolation::new(
                "update_mask",
                "name at least one field",
            ));
        }
        let mut level = None;
        let mut programs = None;
        let mut expire = None;
        let mut visibility = None;
        let client = name.as_ref().map(|(bn, _)| bn.clone());
        for p in &paths {
            match p.as_str() {
                "level" => {
                    level = level_from(rel.level);
                    if level.is_none() {
                        v.push(FieldViolation::new(
                            "relationship.level",
                            "must be BUSINESS or PROGRAM",
                        ));
                    }
                }
                "program_accounts" => {
                    programs = Some(parse_programs(
                        "relationship.program_accounts",
                        &rel.program_accounts,
                        client.as_ref(),
                        &mut v,
                    ));
                }
                "expire_time" => {
                    expire = parse_expiry(
                        "relationship.expire_time",
                        rel.expire_time.as_ref(),
                        now,
                        self.max_days,
                        &mut v,
                    );
                }
                "visibility" => {
                    visibility =
                        parse_visibility("relationship.visibility", &rel.visibility, &mut v);
                }
                other => v.push(FieldViolation::new(
                    "update_mask",
                    format!("`{other}` cannot be changed"),
                )),
            }
        }
        let (Some(request_id), Some((bn, id)), true) = (request_id, name, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        if let Some(r) = self
            .answered(&principal, "UpdateRelationship", &request_id)
            .await?
        {
            return Ok(r);
        }
        let current = store::get_relationship(self.db(), &id)
            .await?
            .filter(|r| r.client == bn.as_str() || r.provider == bn.as_str())
            .ok_or_else(|| Error::not_found("relationship not found"))?;
        if current.client != bn.as_str() {
            return Err(Error::invalid_field(
                "relationship.name",
                "only the client changes a relationship; name it under the client",
            ));
        }
        // The resulting scope must be consistent and the client's.
        let new_level = level.unwrap_or(current.level);
        let new_programs = match (new_level, programs) {
            (Level::Business, Some(p)) if !p.is_empty() => {
                return Err(Error::invalid_field(
                    "relationship.program_accounts",
                    "business level covers every program; name none",
                ));
            }
            (Level::Business, _) => Vec::new(),
            (Level::Program, Some(p)) => p,
            (Level::Program, None) => current.program_accounts.clone(),
        };
        if new_level == Level::Program {
            if new_programs.is_empty() {
                return Err(Error::invalid_field(
                    "relationship.program_accounts",
                    "program level needs at least one program account",
                ));
            }
            self.check_client_programs(
                bn.as_str(),
                &new_programs,
                &rel.program_accounts,
                "relationship.program_accounts",
            )
            .await?;
        }
        let mut w = match self
            .writer
            .begin(WriteBy::idempotent(
                &principal,
                "UpdateRelationship",
                request_id,
            ))
            .await?
        {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let now = stored(now);
        let (row, revision) = self.lock_relationship(&mut w, &id, bn.as_str()).await?;
        if !row.status_at(now).is_active() {
            return Err(Error::failed_precondition("the relationship has ended"));
        }
        if row.version.to_string() != rel.etag {
            return Err(Error::aborted(
                "the relationship changed; read it again (stale etag)",
            ));
        }
        let mut next = row.clone();
        next.level = new_level;
        next.program_accounts = new_programs;
        if let Some(vis) = &visibility {
            next.visibility = vis.iter().collect();
        }
        if let Some(e) = expire {
            next.expire_time = stored(e);
            // Moving the expiry re-arms the thresholds still ahead.
            if next.expire_time != row.expire_time {
                next.reminders = reminder_schedule(e, now).map(|d| d.map(stored));
            }
        }
        next.update_time = now;
        next.version = row.version + 1;
        if !store::save_relationship(w.txn(), &next, row.version).await? {
            return Err(Error::aborted("the relationship changed; read it again"));
        }
        let proto = relationship_to_proto(&next, bn.as_str(), now);
        record_pair(
            &mut w,
            &row.provider,
            &row.client,
            Party::Client,
            Some(&principal),
            Change::new(
                EventType::RelationshipUpdated,
                "delegation.relationship.update",
                &proto.name,
            )
            .before(relationship_json(&row))
            .after(relationship_json(&next))
            .details(serde_json::json!({"update_mask": paths}))
            .revision(&revision),
        )
        .await?;
        let resp = pb::UpdateRelationshipResponse {
            relationship: Some(proto),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
    }

    /// EndRelationship (either side).
    #[tracing::instrument(skip_all, fields(name = %req.name))]
    pub async fn end_relationship(
        &self,
        principal: String,
        req: pb::EndRelationshipRequest,
    ) -> Result<pb::EndRelationshipResponse> {
        let mut v = Vec::new();
        let request_id = request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "relationships")
            .map_err(|e| v.push(e))
            .ok();
        let note = bounded_text(&req.note, 0, 500)
            .map_err(|why| v.push(why.at("note")))
            .ok();
        let (Some(request_id), Some((bn, id)), Some(note), true) =
            (request_id, name, note, v.is_empty())
        else {
            return Err(Error::invalid(v));
        };
        let by = WriteBy::idempotent(&principal, "EndRelationship", request_id);
        let mut w = match self.writer.begin(by).await? {
            Begun::Replayed(r) => return Ok(r),
            Begun::Fresh(w) => *w,
        };
        let now = stored(w.now());
        let (row, revision) = self.lock_relationship(&mut w, &id, bn.as_str()).await?;
        if !row.status_at(now).is_active() {
            return Err(Error::failed_precondition(
                "the relationship has already ended",
            ));
        }
        let reason = if row.client == bn.as_str() {
            EndReason::EndedByClient
        } else {
            EndReason::EndedByProvider
        };
        let mut next = row.clone();
        next.ended = Some((now, reason));
        next.ended_by = principal.clone();
        next.end_note = note;
        next.update_time = now;
        next.version = row.version + 1;
        next.reminders = [None; 3];
        if !store::save_relationship(w.txn(), &next, row.version).await? {
            return Err(Error::aborted("the relationship changed; try again"));
        }
        let proto = relationship_to_proto(&next, bn.as_str(), now);
        let acting = if reason == EndReason::EndedByClient {
            Party::Client
        } else {
            Party::Provider
        };
        record_pair(
            &mut w,
            &row.provider,
            &row.client,
            acting,
            Some(&principal),
            Change::new(
                EventType::RelationshipEnded,
                "delegation.relationship.end",
                &proto.name,
            )
            .before(relationship_json(&row))
            .after(relationship_json(&next))
            .details(serde_json::json!({"end_reason": reason.as_str(), "note": next.end_note}))
            .revision(&revision),
        )
        .await?;
        let resp = pb::EndRelationshipResponse {
            relationship: Some(proto),
            revision,
        };
        Ok(w.commit(resp).await?.into_inner())
    }
}

/// Returns the audit JSON of a relationship.
pub(crate) fn relationship_json(r: &Relationship) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "provider": r.provider,
        "client": r.client,
        "level": r.level.as_str(),
        "program_accounts": r.program_accounts,
        "visibility": r.visibility.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
        "start_time": r.start_time.to_rfc3339(),
        "expire_time": r.expire_time.to_rfc3339(),
        "end_time": r.ended.map(|(at, _)| at.to_rfc3339()),
        "end_reason": r.ended.map(|(_, why)| why.as_str()),
        "ended_by": r.ended_by,
        "end_note": r.end_note,
    })
}
