//! Resource names and proto <-> stored record conversion.

use ccp_platform::error::FieldViolation;
use ccp_platform::store::timestamp;
use ccp_proto::delegation::v1 as pb;
use chrono::{DateTime, Utc};

use crate::domain::{Bn9, Bn15, EndReason, Level, RelationshipStatus, RequestState, Visibility};
use crate::store::{FactRow, GroupRow, RelationshipRow, RequestRow, decode_list, from_us};

/// Parses `businesses/{bn9}`.
pub fn parse_parent(field: &str, name: &str) -> Result<Bn9, FieldViolation> {
    let bn = name
        .strip_prefix("businesses/")
        .ok_or_else(|| FieldViolation::new(field, "must be businesses/{bn9}"))?;
    Bn9::parse(bn).map_err(|why| FieldViolation::new(field, why))
}

/// Parses `businesses/{bn9}/{collection}/{uuid}`.
pub fn parse_name(
    field: &str,
    name: &str,
    collection: &str,
) -> Result<(Bn9, String), FieldViolation> {
    let bad = || {
        FieldViolation::new(
            field,
            format!("must be businesses/{{bn9}}/{collection}/{{id}}"),
        )
    };
    let rest = name.strip_prefix("businesses/").ok_or_else(bad)?;
    let mut parts = rest.split('/');
    let (Some(bn), Some(coll), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if coll != collection {
        return Err(bad());
    }
    let bn = Bn9::parse(bn).map_err(|why| FieldViolation::new(field, why))?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((bn, id.to_string()))
}

/// Parses BN15s that must belong to `client`, naming `field[i]`.
pub fn parse_programs(
    field: &str,
    items: &[String],
    client: Option<&Bn9>,
    violations: &mut Vec<FieldViolation>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, text) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        match Bn15::parse(text) {
            Ok(p) => match client {
                Some(c) if p.bn9() != c => violations.push(FieldViolation::new(
                    f,
                    "is a program account of another business, not the client's",
                )),
                _ => out.push(p.as_str().to_owned()),
            },
            Err(why) => violations.push(FieldViolation::new(f, why)),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Converts a proto visibility.
pub fn visibility_from(v: i32) -> Option<Visibility> {
    match pb::Visibility::try_from(v).ok()? {
        pb::Visibility::SubmittedByProvider => Some(Visibility::SubmittedByProvider),
        pb::Visibility::SubmittedByClient => Some(Visibility::SubmittedByClient),
        pb::Visibility::SubmittedByOtherBusinesses => Some(Visibility::SubmittedByOtherBusinesses),
        pb::Visibility::Unspecified => None,
    }
}

fn visibility_to(v: Visibility) -> pb::Visibility {
    match v {
        Visibility::SubmittedByProvider => pb::Visibility::SubmittedByProvider,
        Visibility::SubmittedByClient => pb::Visibility::SubmittedByClient,
        Visibility::SubmittedByOtherBusinesses => pb::Visibility::SubmittedByOtherBusinesses,
    }
}

/// Converts a proto level.
pub fn level_from(v: i32) -> Option<Level> {
    match pb::RelationshipLevel::try_from(v).ok()? {
        pb::RelationshipLevel::Business => Some(Level::Business),
        pb::RelationshipLevel::Program => Some(Level::Program),
        pb::RelationshipLevel::Unspecified => None,
    }
}

fn level_to(text: &str) -> pb::RelationshipLevel {
    match Level::parse(text) {
        Some(Level::Business) => pb::RelationshipLevel::Business,
        Some(Level::Program) => pb::RelationshipLevel::Program,
        None => pb::RelationshipLevel::Unspecified,
    }
}

fn end_reason_to(r: EndReason) -> pb::EndReason {
    match r {
        EndReason::Expired => pb::EndReason::Expired,
        EndReason::EndedByClient => pb::EndReason::EndedByClient,
        EndReason::EndedByProvider => pb::EndReason::EndedByProvider,
    }
}

/// Converts a proto request state filter to the stored spelling.
pub fn request_state_from(v: i32) -> Option<RequestState> {
    match pb::RelationshipRequestState::try_from(v).ok()? {
        pb::RelationshipRequestState::Pending => Some(RequestState::Pending),
        pb::RelationshipRequestState::Approved => Some(RequestState::Approved),
        pb::RelationshipRequestState::Rejected => Some(RequestState::Rejected),
        pb::RelationshipRequestState::Withdrawn => Some(RequestState::Withdrawn),
        pb::RelationshipRequestState::Expired => Some(RequestState::Expired),
        pb::RelationshipRequestState::Unspecified => None,
    }
}

/// Converts a request state to the proto.
pub fn request_state_to(s: RequestState) -> pb::RelationshipRequestState {
    match s {
        RequestState::Pending => pb::RelationshipRequestState::Pending,
        RequestState::Approved => pb::RelationshipRequestState::Approved,
        RequestState::Rejected => pb::RelationshipRequestState::Rejected,
        RequestState::Withdrawn => pb::RelationshipRequestState::Withdrawn,
        RequestState::Expired => pb::RelationshipRequestState::Expired,
    }
}

/// Which side a resource is named under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Client,
    /// The provider.
    Provider,
}

/// Returns the state of a stored request at `now`.
pub fn request_state(row: &RequestRow, now: DateTime<Utc>) -> RequestState {
    RequestState::parse(&row.state)
        .unwrap_or(RequestState::Pending)
        .at(row.expire_us.map(from_us), now)
}

/// Converts a stored request, named under `side`, as seen at `now`.
pub fn request_to_proto(
    row: &RequestRow,
    side: Side,
    now: DateTime<Utc>,
) -> pb::RelationshipRequest {
    let state = request_state(row, now);
    let (bn, coll) = match side {
        Side::Client => (&row.client, "receivedRequests"),
        Side::Provider => (&row.provider, "sentRequests"),
    };
    let decide_time = match (state, row.decide_us, row.expire_us) {
        (_, Some(d), _) => Some(timestamp(from_us(d))),
        (RequestState::Expired, None, Some(e)) => Some(timestamp(from_us(e))),
        _ => None,
    };
    pb::RelationshipRequest {
        name: format!("businesses/{bn}/{coll}/{}", row.id),
        id: row.id.clone(),
        provider: row.provider.clone(),
        client: row.client.clone(),
        program_accounts: decode_list(&row.program_accounts),
        note: row.note.clone(),
        state: request_state_to(state) as i32,
        sender: row.sender.clone(),
        create_time: Some(timestamp(from_us(row.create_us))),
        visible_time: row.visible_us.map(|v| timestamp(from_us(v))),
        expire_time: row.expire_us.map(|v| timestamp(from_us(v))),
        decide_time,
        decided_by: if state == RequestState::Expired {
            "system".to_owned()
        } else {
            row.decided_by.clone()
        },
        reject_reason: row.reject_reason.clone(),
        relationship: if row.relationship_id.is_empty() {
            String::new()
        } else {
            format!("businesses/{bn}/relationships/{}", row.relationship_id)
        },
    }
}

/// Returns the status of a stored relationship at `now` (never active at or
/// after its expiry, whether or not the sweep recorded the ending).
pub fn relationship_status(row: &RelationshipRow, now: DateTime<Utc>) -> RelationshipStatus {
    let recorded = match (
        row.end_us,
        row.end_reason.as_deref().and_then(EndReason::parse),
    ) {
        (Some(at), Some(reason)) => Some((from_us(at), reason)),
        _ => None,
    };
    RelationshipStatus::at(from_us(row.expire_us), recorded, now)
}

/// Returns the visibility rules of a stored list.
pub fn visibility_list(text: &str) -> Vec<i32> {
    decode_list(text)
        .iter()
        .filter_map(|v| Visibility::parse(v))
        .map(|v| visibility_to(v) as i32)
        .collect()
}

/// Converts a stored relationship named under `bn`, as seen at `now`.
pub fn relationship_to_proto(
    row: &RelationshipRow,
    bn: &str,
    now: DateTime<Utc>,
) -> pb::Relationship {
    let status = relationship_status(row, now);
    let (state, end_time, end_reason, ended_by) = match status {
        RelationshipStatus::Active => (
            pb::RelationshipState::Active,
            None,
            pb::EndReason::Unspecified,
            String::new(),
        ),
        RelationshipStatus::Ended { at, reason } => (
            pb::RelationshipState::Ended,
            Some(timestamp(at)),
            end_reason_to(reason),
            if row.ended_by.is_empty() {
                "system".to_owned()
            } else {
                row.ended_by.clone()
            },
        ),
    };
    pb::Relationship {
        name: format!("businesses/{bn}/relationships/{}", row.id),
        id: row.id.clone(),
        provider: row.provider.clone(),
        client: row.client.clone(),
        level: level_to(&row.level) as i32,
        program_accounts: decode_list(&row.program_accounts),
        visibility: visibility_list(&row.visibility),
        state: state as i32,
        start_time: Some(timestamp(from_us(row.start_us))),
        expire_time: Some(timestamp(from_us(row.expire_us))),
        end_time,
        end_reason: end_reason as i32,
        ended_by,
        end_note: row.end_note.clone(),
        request_id: row.request_id.clone(),
        update_time: Some(timestamp(from_us(row.update_us))),
        etag: row.version.to_string(),
    }
}

/// Converts a fact row as seen at `now`; None when the row carries no
/// relationship (a pair or page without any).
pub fn fact_to_proto(row: &FactRow, now: DateTime<Utc>) -> Option<pb::RelationshipFact> {
    let (Some(id), Some(start_us), Some(expire_us)) = (&row.id, row.start_us, row.expire_us) else {
        return None;
    };
    let recorded = match (
        row.end_us,
        row.end_reason.as_deref().and_then(EndReason::parse),
    ) {
        (Some(at), Some(reason)) => Some((from_us(at), reason)),
        _ => None,
    };
    let (end_time, reason) = match RelationshipStatus::at(from_us(expire_us), recorded, now) {
        RelationshipStatus::Active => (None, pb::EndReason::Unspecified),
        RelationshipStatus::Ended { at, reason } => (Some(timestamp(at)), end_reason_to(reason)),
    };
    Some(pb::RelationshipFact {
        id: id.clone(),
        level: level_to(row.level.as_deref().unwrap_or_default()) as i32,
        program_accounts: decode_list(row.program_accounts.as_deref().unwrap_or("[]")),
        visibility: visibility_list(row.visibility.as_deref().unwrap_or("[]")),
        start_time: Some(timestamp(from_us(start_us))),
        expire_time: Some(timestamp(from_us(expire_us))),
        end_time,
        end_reason: reason as i32,
    })
}

/// Converts a stored client group with its clients.
pub fn group_to_proto(row: &GroupRow, clients: Vec<String>) -> pb::ClientGroup {
    pb::ClientGroup {
        name: format!("businesses/{}/clientGroups/{}", row.provider, row.id),
        display_name: row.display_name.clone(),
        clients,
        create_time: Some(timestamp(from_us(row.create_us))),
        update_time: Some(timestamp(from_us(row.update_us))),
        delete_time: row.delete_us.map(|d| timestamp(from_us(d))),
        etag: row.version.to_string(),
    }
}
