//! Members of businesses and their direct roles; role sources (direct and
//! through groups) come from the `role_sources` view.

use ccp_platform::db::{all, one};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, Value,
};

use super::entity::{group_member, member, member_role};
use crate::domain::MemberKind;

/// A member of a business.
#[derive(Debug, Clone)]
pub struct MemberRow {
    /// BN9.
    pub bn9: String,
    /// Principal.
    pub principal: String,
    /// A person or a machine credential.
    pub kind: MemberKind,
    /// Credential label (people's names come from identity).
    pub display_name: String,
    /// BAM.
    pub business_manager: bool,
    /// When it joined.
    pub join_time: DateTime<Utc>,
    /// Update counter (the etag).
    pub version: i64,
}

impl TryFrom<member::Model> for MemberRow {
    type Error = DbErr;

    fn try_from(m: member::Model) -> Result<Self, DbErr> {
        Ok(Self {
            kind: ccp_platform::db::decode_enum(&m.kind, "members", "kind")?,
            bn9: m.bn9,
            principal: m.principal,
            display_name: m.display_name,
            business_manager: m.business_manager,
            join_time: m.join_time,
            version: m.version,
        })
    }
}

/// A role on one program.
#[derive(Debug, Clone, FromQueryResult)]
pub struct RoleRow {
    /// Principal.
    pub principal: String,
    /// `RMnnnn`.
    pub reference: String,
    /// Role number.
    pub role: i32,
}

impl From<member_role::Model> for RoleRow {
    fn from(r: member_role::Model) -> Self {
        Self {
            principal: r.principal,
            reference: r.reference,
            role: r.role,
        }
    }
}

#[derive(Debug, FromQueryResult)]
struct Count {
    n: i64,
}

/// Returns one member.
pub async fn member<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
) -> Result<Option<MemberRow>, DbErr> {
    member::Entity::find_by_id((bn9.to_owned(), principal.to_owned()))
        .one(db)
        .await?
        .map(MemberRow::try_from)
        .transpose()
}

/// Inserts or updates a member row (BAM flag, label, version).
pub async fn upsert_member<C: ConnectionTrait>(db: &C, m: &MemberRow) -> Result<(), DbErr> {
    member::Entity::insert(member::ActiveModel {
        bn9: Set(m.bn9.clone()),
        principal: Set(m.principal.clone()),
        kind: Set(m.kind.as_str().to_owned()),
        display_name: Set(m.display_name.clone()),
        business_manager: Set(m.business_manager),
        join_time: Set(m.join_time),
        version: Set(m.version),
    })
    .on_conflict(
        OnConflict::columns([member::Column::Bn9, member::Column::Principal])
            .update_columns([
                member::Column::DisplayName,
                member::Column::BusinessManager,
                member::Column::Version,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Returns a member's direct roles.
pub async fn direct_roles<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
) -> Result<Vec<RoleRow>, DbErr> {
    Ok(member_role::Entity::find()
        .filter(member_role::Column::Bn9.eq(bn9))
        .filter(member_role::Column::Principal.eq(principal))
        .order_by_asc(member_role::Column::Reference)
        .all(db)
        .await?
        .into_iter()
        .map(RoleRow::from)
        .collect())
}

/// Returns the direct roles of several members of a business, in one query.
pub async fn direct_roles_many<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principals: &[String],
) -> Result<Vec<RoleRow>, DbErr> {
    if principals.is_empty() {
        return Ok(Vec::new());
    }
    Ok(member_role::Entity::find()
        .filter(member_role::Column::Bn9.eq(bn9))
        .filter(member_role::Column::Principal.is_in(principals.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(RoleRow::from)
        .collect())
}

/// Returns the `$n` marks of `items`, pushing their values after `vals`.
fn in_list(items: &[String], vals: &mut Vec<Value>) -> String {
    items
        .iter()
        .map(|p| {
            vals.push(p.clone().into());
            format!("${}", vals.len())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Returns every role source (direct and group) of the given members of a business.
pub async fn role_sources<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principals: &[String],
) -> Result<Vec<RoleRow>, DbErr> {
    if principals.is_empty() {
        return Ok(Vec::new());
    }
    let mut vals: Vec<Value> = vec![bn9.into()];
    let marks = in_list(principals, &mut vals);
    // SQL: reads the `role_sources` view (a union over direct and group roles).
    all(
        db,
        &format!(
            "SELECT principal, reference, role FROM role_sources WHERE bn9 = $1 AND principal IN ({marks})"
        ),
        vals,
    )
    .await
}

/// Replaces a member's direct roles.
pub async fn set_direct_roles<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
    roles: &[(String, i32)],
) -> Result<(), DbErr> {
    member_role::Entity::delete_many()
        .filter(member_role::Column::Bn9.eq(bn9))
        .filter(member_role::Column::Principal.eq(principal))
        .exec(db)
        .await?;
    for (reference, role) in roles {
        member_role::Entity::insert(member_role::ActiveModel {
            bn9: Set(bn9.to_owned()),
            principal: Set(principal.to_owned()),
            reference: Set(reference.clone()),
            role: Set(*role),
        })
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Deletes a member with its direct roles and group memberships.
pub async fn delete_member<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
) -> Result<(), DbErr> {
    member_role::Entity::delete_many()
        .filter(member_role::Column::Bn9.eq(bn9))
        .filter(member_role::Column::Principal.eq(principal))
        .exec(db)
        .await?;
    group_member::Entity::delete_many()
        .filter(group_member::Column::Bn9.eq(bn9))
        .filter(group_member::Column::Principal.eq(principal))
        .exec(db)
        .await?;
    member::Entity::delete_many()
        .filter(member::Column::Bn9.eq(bn9))
        .filter(member::Column::Principal.eq(principal))
        .exec(db)
        .await?;
    Ok(())
}

/// Returns true when the member holds a role (BAM, or any direct or group role).
pub async fn has_any_role<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
) -> Result<bool, DbErr> {
    // SQL: one statement over the member row and the `role_sources` view.
    let c: Option<Count> = one(
        db,
        "SELECT (SELECT COUNT(*) FROM members WHERE bn9 = $1 AND principal = $2 AND business_manager = $3)
              + (SELECT COUNT(*) FROM role_sources WHERE bn9 = $1 AND principal = $2) AS n",
        vec![bn9.into(), principal.into(), true.into()],
    )
    .await?;
    Ok(c.is_some_and(|c| c.n > 0))
}

/// Returns the principals holding the PAM role (direct or through a group) on any program of a
/// business, once each, in one query.
pub async fn program_managers<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        principal: String,
    }
    // SQL: the `role_sources` view (direct and group roles) for one role.
    let rows: Vec<Row> = all(
        db,
        "SELECT DISTINCT principal FROM role_sources WHERE bn9 = $1 AND role = $2 ORDER BY principal",
        vec![bn9.into(), (ccp_proto::common::v1::Role::Pam as i32).into()],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.principal).collect())
}

/// A member's active group.
#[derive(Debug, Clone, FromQueryResult)]
pub struct MemberGroupRow {
    /// The member.
    pub principal: String,
    /// The group's id.
    pub group_id: String,
}

/// Returns the active groups of several members of a business, in one query.
pub async fn member_groups_many<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principals: &[String],
) -> Result<Vec<MemberGroupRow>, DbErr> {
    if principals.is_empty() {
        return Ok(Vec::new());
    }
    let mut vals: Vec<Value> = vec![bn9.into()];
    let marks = in_list(principals, &mut vals);
    // SQL: a join keeping only the groups not deleted, for many members at once.
    all(
        db,
        &format!(
            "SELECT gm.principal, gm.group_id FROM group_members gm
             JOIN employee_groups g ON g.id = gm.group_id
             WHERE gm.bn9 = $1 AND g.delete_time IS NULL AND gm.principal IN ({marks})
             ORDER BY gm.group_id"
        ),
        vals,
    )
    .await
}

/// Filters of ListEmployees.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    /// Only members with an effective role on this reference (or BAMs).
    pub reference: Option<String>,
    /// Only members whose effective role is this (4 = BAM).
    pub role: Option<i32>,
}

/// Lists members by (join time, principal) after a keyset position.
pub async fn list_members<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    after: Option<(DateTime<Utc>, String)>,
    filter: &MemberFilter,
    limit: u64,
) -> Result<Vec<MemberRow>, DbErr> {
    // SQL: the effective-role filters are aggregates over the `role_sources` view.
    let mut sql = "SELECT m.bn9, m.principal, m.kind, m.display_name, m.business_manager, \
                   m.join_time, m.version FROM members m WHERE m.bn9 = $1"
        .to_owned();
    let mut vals: Vec<Value> = vec![bn9.into()];
    let next = |v: Value, vals: &mut Vec<Value>| {
        vals.push(v);
        format!("${}", vals.len())
    };
    if let Some((t, p)) = after {
        let a = next(t.into(), &mut vals);
        let b = next(p.into(), &mut vals);
        sql.push_str(&format!(
            " AND (m.join_time > {a} OR (m.join_time = {a} AND m.principal > {b}))"
        ));
    }
    match (&filter.reference, filter.role) {
        (_, Some(4)) => {
            let t = next(true.into(), &mut vals);
            sql.push_str(&format!(" AND m.business_manager = {t}"));
        }
        (Some(r), Some(role)) => {
            let r = next(r.clone().into(), &mut vals);
            let role = next(role.into(), &mut vals);
            sql.push_str(&format!(
                " AND (SELECT MAX(s.role) FROM role_sources s WHERE s.bn9 = m.bn9 AND s.principal = m.principal AND s.reference = {r}) = {role}"
            ));
        }
        (Some(r), None) => {
            let r = next(r.clone().into(), &mut vals);
            let t = next(true.into(), &mut vals);
            sql.push_str(&format!(
                " AND (m.business_manager = {t} OR EXISTS (SELECT 1 FROM role_sources s WHERE s.bn9 = m.bn9 AND s.principal = m.principal AND s.reference = {r}))"
            ));
        }
        (None, Some(role)) => {
            let role = next(role.into(), &mut vals);
            sql.push_str(&format!(
                " AND EXISTS (SELECT s.reference FROM role_sources s WHERE s.bn9 = m.bn9 AND s.principal = m.principal GROUP BY s.reference HAVING MAX(s.role) = {role})"
            ));
        }
        (None, None) => {}
    }
    let l = next(i64::try_from(limit).unwrap_or(i64::MAX).into(), &mut vals);
    sql.push_str(&format!(" ORDER BY m.join_time, m.principal LIMIT {l}"));
    let rows: Vec<member::Model> = all(db, &sql, vals).await?;
    rows.into_iter().map(MemberRow::try_from).collect()
}
