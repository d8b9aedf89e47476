//! Relationships (R-DE-3, R-DE-4): get, list, update, end.

use ccp_platform::error::{Error, FieldViolation, Result};
use ccp_platform::paging::{decode_token, finish_page, page_size};
use ccp_proto::common::v1::EventType;
use ccp_proto::delegation::v1 as pb;

use super::convert::{
    level_from, parse_name, parse_parent, parse_programs, relationship_status,
    relationship_to_proto,
};
use super::core::{Change, Core, Write, check_request_id};
use super::requests::{parse_expiry, parse_visibility};
use crate::domain::{EndReason, Level, bounded_text, reminder_schedule};
use crate::store::{
    self, RelationshipFilter, RelationshipRow, decode_list, encode_list, from_us, us,
};

impl Core {
    /// GetRelationship.
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn get_relationship(
        &self,
        req: pb::GetRelationshipRequest,
    ) -> Result<pb::Relationship> {
        let (bn, id) =
            parse_name("name", &req.name, "relationships").map_err(|e| Error::invalid(vec![e]))?;
        let row = store::get_relationship(&self.db, &id)
            .await?
            .filter(|r| r.client == bn.as_str() || r.provider == bn.as_str())
            .ok_or_else(|| Error::not_found("relationship not found"))?;
        Ok(relationship_to_proto(&row, bn.as_str(), self.now()))
    }

    /// ListRelationships.
    #[tracing::instrument(skip_all, fields(parent = %req.parent), err)]
    pub async fn list_relationships(
        &self,
        req: pb::ListRelationshipsRequest,
    ) -> Result<pb::ListRelationshipsResponse> {
        let bn = parse_parent("parent", &req.parent).map_err(|e| Error::invalid(vec![e]))?;
        let size = page_size(req.page_size, 50, 500)?;
        let after = decode_token(&req.page_token)?;
        let side_column = match pb::RelationshipSide::try_from(req.side) {
            Ok(pb::RelationshipSide::Unspecified) => None,
            Ok(pb::RelationshipSide::Client) => Some("client"),
            Ok(pb::RelationshipSide::Provider) => Some("provider"),
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
            &self.db,
            &RelationshipFilter {
                business: bn.to_string(),
                side_column,
                active,
                now_us: us(now),
                after,
                limit: size as u64 + 1,
            },
        )
        .await?;
        let (rows, next) = finish_page(rows, size, |r| r.id.clone());
        Ok(pb::ListRelationshipsResponse {
            relationships: rows
                .iter()
                .map(|r| relationship_to_proto(r, bn.as_str(), now))
                .collect(),
            next_page_token: next,
        })
    }

    /// Opens a transaction that bumps (and locks) the relationship's pair and
    /// its provider, and re-reads it. NOT_FOUND unless it lives under `bn`.
    async fn lock_relationship(
        &self,
        id: &str,
        bn: &str,
    ) -> Result<(RelationshipRow, String, sea_orm::DatabaseTransaction)> {
        let not_found = || Error::not_found("relationship not found");
        let first = store::get_relationship(&self.db, id)
            .await?
            .filter(|r| r.client == bn || r.provider == bn)
            .ok_or_else(not_found)?;
        let txn = self.begin().await?;
        let revision = self.bump_pair(&txn, &first.provider, &first.client).await?;
        self.bump_business(&txn, &first.provider).await?;
        let row = store::get_relationship(&txn, id)
            .await?
            .ok_or_else(not_found)?;
        Ok((row, revision, txn))
    }

    /// UpdateRelationship (client side).
    #[tracing::instrument(skip_all, err)]
    pub async fn update_relationship(
        &self,
        principal: String,
        req: pb::UpdateRelationshipRequest,
    ) -> Result<pb::UpdateRelationshipResponse> {
        let now = self.now();
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
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
        let (Some((bn, id)), true) = (name, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "UpdateRelationship",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        let current = store::get_relationship(&self.db, &id)
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
        let new_level = level.unwrap_or(Level::parse(&current.level).unwrap_or(Level::Business));
        let new_programs = match (new_level, programs.clone()) {
            (Level::Business, Some(p)) if !p.is_empty() => {
                return Err(Error::invalid_field(
                    "relationship.program_accounts",
                    "business level covers every program; name none",
                ));
            }
            (Level::Business, _) => Vec::new(),
            (Level::Program, Some(p)) => p,
            (Level::Program, None) => decode_list(&current.program_accounts),
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
        let (row, revision, txn) = self.lock_relationship(&id, bn.as_str()).await?;
        if !relationship_status(&row, now).is_active() {
            return Err(Error::failed_precondition("the relationship has ended"));
        }
        if row.version.to_string() != rel.etag {
            return Err(Error::aborted(
                "the relationship changed; read it again (stale etag)",
            ));
        }
        let mut next = row.clone();
        next.level = new_level.as_str().to_owned();
        next.program_accounts = encode_list(&new_programs);
        if let Some(vis) = &visibility {
            next.visibility = encode_list(
                &vis.iter()
                    .map(|v| v.as_str().to_owned())
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(e) = expire {
            next.expire_us = us(e);
            // Moving the expiry re-arms the thresholds still ahead.
            if next.expire_us != row.expire_us {
                let s = reminder_schedule(e, now);
                next.remind_30_us = s[0].map(us);
                next.remind_7_us = s[1].map(us);
                next.remind_1_us = s[2].map(us);
            }
        }
        next.update_us = us(now);
        next.version = row.version + 1;
        if !store::save_relationship(&txn, &next, row.version).await? {
            return Err(Error::aborted("the relationship changed; read it again"));
        }
        let proto = relationship_to_proto(&next, bn.as_str(), now);
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: row.client.clone(),
                other_business: Some(row.provider.clone()),
                action: "delegation.relationship.update".to_owned(),
                target: proto.name.clone(),
                before_json: relationship_json(&row),
                after_json: relationship_json(&next),
                event: EventType::RelationshipUpdated as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                principals: vec![w.principal.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                details_json: serde_json::json!({"update_mask": paths}).to_string(),
            },
        )
        .await?;
        let resp = pb::UpdateRelationshipResponse {
            relationship: Some(proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }

    /// EndRelationship (either side).
    #[tracing::instrument(skip_all, fields(name = %req.name), err)]
    pub async fn end_relationship(
        &self,
        principal: String,
        req: pb::EndRelationshipRequest,
    ) -> Result<pb::EndRelationshipResponse> {
        let mut v = Vec::new();
        check_request_id(&req.request_id, &mut v);
        let name = parse_name("name", &req.name, "relationships")
            .map_err(|e| v.push(e))
            .ok();
        let note = bounded_text(&req.note, 0, 500)
            .map_err(|why| v.push(FieldViolation::new("note", why)))
            .ok();
        let (Some((bn, id)), Some(note), true) = (name, note, v.is_empty()) else {
            return Err(Error::invalid(v));
        };
        let w = Write {
            principal,
            method: "EndRelationship",
            request_id: req.request_id.clone(),
        };
        if let Some(r) = self.replay(&w).await? {
            return Ok(r);
        }
        let now = self.now();
        let (row, revision, txn) = self.lock_relationship(&id, bn.as_str()).await?;
        if !relationship_status(&row, now).is_active() {
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
        next.end_us = Some(us(now));
        next.end_reason = Some(reason.as_str().to_owned());
        next.ended_by = w.principal.clone();
        next.end_note = note;
        next.update_us = us(now);
        next.version = row.version + 1;
        next.remind_30_us = None;
        next.remind_7_us = None;
        next.remind_1_us = None;
        if !store::save_relationship(&txn, &next, row.version).await? {
            return Err(Error::aborted("the relationship changed; try again"));
        }
        let proto = relationship_to_proto(&next, bn.as_str(), now);
        let other = if reason == EndReason::EndedByClient {
            &row.provider
        } else {
            &row.client
        };
        self.record(
            &txn,
            &w.principal,
            &w.request_id,
            &revision,
            Change {
                acting_for: bn.to_string(),
                other_business: Some(other.clone()),
                action: "delegation.relationship.end".to_owned(),
                target: proto.name.clone(),
                before_json: relationship_json(&row),
                after_json: relationship_json(&next),
                event: EventType::RelationshipEnded as i32,
                businesses: vec![row.provider.clone(), row.client.clone()],
                principals: vec![w.principal.clone()],
                pairs: vec![(row.provider.clone(), row.client.clone())],
                details_json: serde_json::json!({"end_reason": reason.as_str()}).to_string(),
            },
        )
        .await?;
        let resp = pb::EndRelationshipResponse {
            relationship: Some(proto),
            revision,
        };
        self.commit(txn, &w, resp).await
    }
}

/// Returns the audit JSON of a relationship.
pub(crate) fn relationship_json(r: &RelationshipRow) -> String {
    serde_json::json!({
        "id": r.id,
        "provider": r.provider,
        "client": r.client,
        "level": r.level,
        "program_accounts": decode_list(&r.program_accounts),
        "visibility": decode_list(&r.visibility),
        "start_time": from_us(r.start_us).to_rfc3339(),
        "expire_time": from_us(r.expire_us).to_rfc3339(),
        "end_time": r.end_us.map(|e| from_us(e).to_rfc3339()),
        "end_reason": r.end_reason,
        "ended_by": r.ended_by,
        "end_note": r.end_note,
    })
    .to_string()
}
