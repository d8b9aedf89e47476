//! Resource names, request parsing and domain -> proto conversion: the one
//! place each state meets its proto enum. The use cases answer with proto
//! messages because a write's answer is what its request id replays.

use ccp_platform::error::FieldViolation;
use ccp_platform::store::{from_timestamp, timestamp};
use ccp_proto::common::v1::Role;
use ccp_proto::delegation::v1 as pb;
use ccp_types::{Bn9, RequestId, parse_business_child};
use chrono::{DateTime, Utc};

use crate::domain::{
    Assignment, AssignmentRole, AssignmentTarget, ClientGroup, EndReason, Level, Party,
    Relationship, RelationshipFact, RelationshipRequest, RelationshipStatus, RequestState,
    Visibility, VisibilityRules, check_expiry,
};

/// Parses a write's request id, collecting the violation.
pub fn request_id(text: &str, v: &mut Vec<FieldViolation>) -> Option<RequestId> {
    RequestId::parse(text).map_err(|e| v.push(e)).ok()
}

/// Parses `businesses/{bn9}`.
pub fn parse_parent(field: &str, name: &str) -> Result<Bn9, FieldViolation> {
    ccp_types::BusinessRef::parse(name, field)
}

/// Parses `businesses/{bn9}/{collection}/{uuid}`.
pub fn parse_name(
    field: &str,
    name: &str,
    collection: &str,
) -> Result<(Bn9, String), FieldViolation> {
    let child = parse_business_child(name, collection, field)?;
    let id = child.uuid(field)?;
    Ok((child.business, id.to_string()))
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
        match ccp_types::ProgramAccountRef::parse(text, &f) {
            Ok(p) => match client {
                Some(c) if p.bn9() != c => violations.push(FieldViolation::new(
                    f,
                    "is a program account of another business, not the client's",
                )),
                _ => out.push(p.to_string()),
            },
            Err(e) => violations.push(e),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Parses BN9s, naming `field[i]`.
pub fn parse_clients(field: &str, items: &[String], v: &mut Vec<FieldViolation>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in items.iter().enumerate() {
        match ccp_types::BusinessRef::parse(c, &format!("{field}[{i}]")) {
            Ok(bn) => out.push(bn.to_string()),
            Err(e) => v.push(e),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Parses an expiry instant chosen now: required, future, within the maximum.
pub fn parse_expiry(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
    now: DateTime<Utc>,
    max_days: i64,
    v: &mut Vec<FieldViolation>,
) -> Option<DateTime<Utc>> {
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
            v.push(why.at(field));
            None
        }
    }
}

/// Parses visibility rules (must include the provider's own submissions).
pub fn parse_visibility(
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
            v.push(why.at(field));
            None
        }
    }
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

fn level_to(l: Level) -> pb::RelationshipLevel {
    match l {
        Level::Business => pb::RelationshipLevel::Business,
        Level::Program => pb::RelationshipLevel::Program,
    }
}

fn end_reason_to(r: EndReason) -> pb::EndReason {
    match r {
        EndReason::Expired => pb::EndReason::Expired,
        EndReason::EndedByClient => pb::EndReason::EndedByClient,
        EndReason::EndedByProvider => pb::EndReason::EndedByProvider,
    }
}

/// Converts a proto request state filter.
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

/// Converts a proto assignment role.
pub fn role_from(v: i32) -> Option<AssignmentRole> {
    match Role::try_from(v) {
        Ok(Role::Editor) => Some(AssignmentRole::Editor),
        Ok(Role::Reader) => Some(AssignmentRole::Reader),
        _ => None,
    }
}

/// Converts an assignment role to the proto.
pub fn role_to(r: AssignmentRole) -> Role {
    match r {
        AssignmentRole::Editor => Role::Editor,
        AssignmentRole::Reader => Role::Reader,
    }
}

/// Converts a stored request, named under `side`, as seen at `now`.
pub fn request_to_proto(
    row: &RelationshipRequest,
    side: Party,
    now: DateTime<Utc>,
) -> pb::RelationshipRequest {
    let state = row.state_at(now);
    let (bn, coll) = match side {
        Party::Client => (&row.client, "receivedRequests"),
        Party::Provider => (&row.provider, "sentRequests"),
    };
    let decide_time = match (state, row.decide_time, row.expire_time) {
        (_, Some(d), _) => Some(timestamp(d)),
        (RequestState::Expired, None, Some(e)) => Some(timestamp(e)),
        _ => None,
    };
    pb::RelationshipRequest {
        name: format!("businesses/{bn}/{coll}/{}", row.id),
        id: row.id.clone(),
        provider: row.provider.clone(),
        client: row.client.clone(),
        program_accounts: row.program_accounts.clone(),
        note: row.note.clone(),
        state: request_state_to(state) as i32,
        sender: row.sender.clone(),
        create_time: Some(timestamp(row.create_time)),
        visible_time: row.visible_time.map(timestamp),
        expire_time: row.expire_time.map(timestamp),
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
        received_name: format!("businesses/{}/receivedRequests/{}", row.client, row.id),
        sent_name: format!("businesses/{}/sentRequests/{}", row.provider, row.id),
    }
}

fn visibility_list(items: &[Visibility]) -> Vec<i32> {
    items.iter().map(|v| visibility_to(*v) as i32).collect()
}

/// Converts a stored relationship named under `bn`, as seen at `now`.
pub fn relationship_to_proto(row: &Relationship, bn: &str, now: DateTime<Utc>) -> pb::Relationship {
    let (state, end_time, end_reason, ended_by) = match row.status_at(now) {
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
        level: level_to(row.level) as i32,
        program_accounts: row.program_accounts.clone(),
        visibility: visibility_list(&row.visibility),
        state: state as i32,
        start_time: Some(timestamp(row.start_time)),
        expire_time: Some(timestamp(row.expire_time)),
        end_time,
        end_reason: end_reason as i32,
        ended_by,
        end_note: row.end_note.clone(),
        request_id: row.request_id.clone(),
        update_time: Some(timestamp(row.update_time)),
        etag: row.version.to_string(),
        client_name: format!("businesses/{}/relationships/{}", row.client, row.id),
        provider_name: format!("businesses/{}/relationships/{}", row.provider, row.id),
    }
}

/// Converts a relationship fact as seen at `now`.
pub fn fact_to_proto(row: &RelationshipFact, now: DateTime<Utc>) -> pb::RelationshipFact {
    let (end_time, reason) = match row.status_at(now) {
        RelationshipStatus::Active => (None, pb::EndReason::Unspecified),
        RelationshipStatus::Ended { at, reason } => (Some(timestamp(at)), end_reason_to(reason)),
    };
    pb::RelationshipFact {
        id: row.id.clone(),
        level: level_to(row.level) as i32,
        program_accounts: row.program_accounts.clone(),
        visibility: visibility_list(&row.visibility),
        start_time: Some(timestamp(row.start_time)),
        expire_time: Some(timestamp(row.expire_time)),
        end_time,
        end_reason: reason as i32,
    }
}

/// Converts a stored client group with its clients.
pub fn group_to_proto(row: &ClientGroup, clients: Vec<String>) -> pb::ClientGroup {
    pb::ClientGroup {
        name: format!("businesses/{}/clientGroups/{}", row.provider, row.id),
        display_name: row.display_name.clone(),
        clients,
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        delete_time: row.delete_time.map(timestamp),
        etag: row.version.to_string(),
    }
}

/// Converts a stored assignment.
pub fn assignment_to_proto(a: &Assignment) -> pb::Assignment {
    let target = match &a.target {
        AssignmentTarget::Client(c) => pb::assignment::Target::Client(c.clone()),
        AssignmentTarget::Group(g) => pb::assignment::Target::ClientGroup(format!(
            "businesses/{}/clientGroups/{g}",
            a.provider
        )),
    };
    pb::Assignment {
        name: format!("businesses/{}/assignments/{}", a.provider, a.id),
        assignee: a.assignee.clone(),
        target: Some(target),
        role: role_to(a.role) as i32,
        create_time: Some(timestamp(a.create_time)),
        creator: a.creator.clone(),
    }
}
