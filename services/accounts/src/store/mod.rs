//! This service's schema: migrations and repositories. Queries are plain SQL
//! with `$n` parameters, which both SQLite and PostgreSQL accept; rows are
//! returned as plain structs (models never leave this module).

pub mod migration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};

pub use migration::Migrator;

fn st<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

async fn exec<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    Ok(db.execute_raw(st(db, sql, values)).await?.rows_affected())
}

async fn all<T: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<T>, DbErr> {
    T::find_by_statement(st(db, sql, values)).all(db).await
}

async fn one<T: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<T>, DbErr> {
    T::find_by_statement(st(db, sql, values)).one(db).await
}

#[derive(Debug, FromQueryResult)]
struct Count {
    n: i64,
}

// ---------------------------------------------------------------- registry

/// A registry record's head.
#[derive(Debug, Clone, FromQueryResult)]
pub struct RegistryRow {
    /// BN9.
    pub bn9: String,
    /// Legal name.
    pub legal_name: String,
    /// Address as JSON.
    pub address_json: String,
}

/// A program account listed by the registry or linked to a business.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ProgramRow {
    /// BN9.
    pub bn9: String,
    /// `RMnnnn`.
    pub reference: String,
    /// Its name.
    pub display_name: String,
}

/// A linked program account.
#[derive(Debug, Clone, FromQueryResult)]
pub struct LinkedProgramRow {
    /// `RMnnnn`.
    pub reference: String,
    /// Its name.
    pub display_name: String,
    /// When it was linked.
    pub link_time: DateTime<Utc>,
}

/// A known fact of a registry record.
#[derive(Debug, Clone, FromQueryResult)]
pub struct FactRow {
    /// Question id.
    pub question_id: String,
    /// English question.
    pub text_en: String,
    /// French question.
    pub text_fr: String,
    /// `AMOUNT`, `DATE` or `TEXT`.
    pub format: String,
    /// The expected answer.
    pub answer: String,
}

/// Replaces a registry record with its programs and facts.
pub async fn upsert_registry<C: ConnectionTrait>(
    db: &C,
    head: &RegistryRow,
    programs: &[(String, String)],
    facts: &[FactRow],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO registry_records (bn9, legal_name, address_json, update_time) VALUES ($1, $2, $3, $4)
         ON CONFLICT (bn9) DO UPDATE SET legal_name = excluded.legal_name,
         address_json = excluded.address_json, update_time = excluded.update_time",
        vec![
            head.bn9.clone().into(),
            head.legal_name.clone().into(),
            head.address_json.clone().into(),
            now.into(),
        ],
    )
    .await?;
    exec(
        db,
        "DELETE FROM registry_programs WHERE bn9 = $1",
        vec![head.bn9.clone().into()],
    )
    .await?;
    exec(
        db,
        "DELETE FROM registry_facts WHERE bn9 = $1",
        vec![head.bn9.clone().into()],
    )
    .await?;
    for (reference, name) in programs {
        exec(
            db,
            "INSERT INTO registry_programs (bn9, reference, display_name) VALUES ($1, $2, $3)",
            vec![
                head.bn9.clone().into(),
                reference.clone().into(),
                name.clone().into(),
            ],
        )
        .await?;
    }
    for (i, f) in facts.iter().enumerate() {
        exec(
            db,
            "INSERT INTO registry_facts (bn9, question_id, position, text_en, text_fr, format, answer)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                head.bn9.clone().into(),
                f.question_id.clone().into(),
                (i as i32).into(),
                f.text_en.clone().into(),
                f.text_fr.clone().into(),
                f.format.clone().into(),
                f.answer.clone().into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Returns a registry record's head.
pub async fn registry<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Option<RegistryRow>, DbErr> {
    one(
        db,
        "SELECT bn9, legal_name, address_json FROM registry_records WHERE bn9 = $1",
        vec![bn9.into()],
    )
    .await
}

/// Returns the program accounts the registry lists for a BN9.
pub async fn registry_programs<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
) -> Result<Vec<ProgramRow>, DbErr> {
    all(
        db,
        "SELECT bn9, reference, display_name FROM registry_programs WHERE bn9 = $1 ORDER BY reference",
        vec![bn9.into()],
    )
    .await
}

/// Returns the known facts of a registry record, in question order.
pub async fn registry_facts<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Vec<FactRow>, DbErr> {
    all(
        db,
        "SELECT question_id, text_en, text_fr, format, answer FROM registry_facts
         WHERE bn9 = $1 ORDER BY position",
        vec![bn9.into()],
    )
    .await
}

// ---------------------------------------------------------------- businesses

/// A registered business.
#[derive(Debug, Clone, FromQueryResult)]
pub struct BusinessRow {
    /// BN9.
    pub bn9: String,
    /// Legal name.
    pub legal_name: String,
    /// Address JSON.
    pub address_json: String,
    /// When it registered.
    pub register_time: DateTime<Utc>,
    /// The accepted T&C version.
    pub terms_version: String,
    /// When the T&C were accepted.
    pub terms_accept_time: DateTime<Utc>,
}

/// Returns a registered business.
pub async fn business<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Option<BusinessRow>, DbErr> {
    one(
        db,
        "SELECT bn9, legal_name, address_json, register_time, terms_version, terms_accept_time
         FROM businesses WHERE bn9 = $1",
        vec![bn9.into()],
    )
    .await
}

/// Inserts a business.
pub async fn insert_business<C: ConnectionTrait>(
    db: &C,
    row: &BusinessRow,
    registered_by: &str,
) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO businesses (bn9, legal_name, address_json, register_time, registered_by, terms_version, terms_accept_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            row.bn9.clone().into(),
            row.legal_name.clone().into(),
            row.address_json.clone().into(),
            row.register_time.into(),
            registered_by.into(),
            row.terms_version.clone().into(),
            row.terms_accept_time.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Links a program account to a business; returns false when it was linked already.
pub async fn link_program<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    reference: &str,
    display_name: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "INSERT INTO program_accounts (bn9, reference, display_name, link_time) VALUES ($1, $2, $3, $4)
         ON CONFLICT (bn9, reference) DO NOTHING",
        vec![bn9.into(), reference.into(), display_name.into(), now.into()],
    )
    .await?;
    Ok(n > 0)
}

/// Lists a business's program accounts after `after` (by reference).
pub async fn programs<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    after: &str,
    limit: u64,
) -> Result<Vec<LinkedProgramRow>, DbErr> {
    all(
        db,
        "SELECT reference, display_name, link_time FROM program_accounts
         WHERE bn9 = $1 AND reference > $2 ORDER BY reference LIMIT $3",
        vec![bn9.into(), after.into(), (limit as i64).into()],
    )
    .await
}

/// Counts a business's active BAMs.
pub async fn count_bams<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<i64, DbErr> {
    let c: Option<Count> = one(
        db,
        "SELECT COUNT(*) AS n FROM members WHERE bn9 = $1 AND business_manager = $2",
        vec![bn9.into(), true.into()],
    )
    .await?;
    Ok(c.map_or(0, |c| c.n))
}

/// Returns the principals of a business's BAMs.
pub async fn bams<C: ConnectionTrait>(db: &C, bn9: &str) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct P {
        principal: String,
    }
    let rows: Vec<P> = all(
        db,
        "SELECT principal FROM members WHERE bn9 = $1 AND business_manager = $2 ORDER BY principal",
        vec![bn9.into(), true.into()],
    )
    .await?;
    Ok(rows.into_iter().map(|p| p.principal).collect())
}

// ---------------------------------------------------------------- members

/// A member of a business.
#[derive(Debug, Clone, FromQueryResult)]
pub struct MemberRow {
    /// BN9.
    pub bn9: String,
    /// Principal.
    pub principal: String,
    /// `PERSON` or `CREDENTIAL`.
    pub kind: String,
    /// Credential label (people's names come from identity).
    pub display_name: String,
    /// BAM.
    pub business_manager: bool,
    /// When it joined.
    pub join_time: DateTime<Utc>,
    /// Update counter (the etag).
    pub version: i64,
}

const MEMBER_COLS: &str =
    "bn9, principal, kind, display_name, business_manager, join_time, version";

/// Returns one member.
pub async fn member<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
) -> Result<Option<MemberRow>, DbErr> {
    one(
        db,
        &format!("SELECT {MEMBER_COLS} FROM members WHERE bn9 = $1 AND principal = $2"),
        vec![bn9.into(), principal.into()],
    )
    .await
}

/// Inserts or updates a member row (BAM flag, label, version).
pub async fn upsert_member<C: ConnectionTrait>(db: &C, m: &MemberRow) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO members (bn9, principal, kind, display_name, business_manager, join_time, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (bn9, principal) DO UPDATE SET display_name = excluded.display_name,
         business_manager = excluded.business_manager, version = excluded.version",
        vec![
            m.bn9.clone().into(),
            m.principal.clone().into(),
            m.kind.clone().into(),
            m.display_name.clone().into(),
            m.business_manager.into(),
            m.join_time.into(),
            m.version.into(),
        ],
    )
    .await?;
    Ok(())
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

/// Returns a member's direct roles.
pub async fn direct_roles<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
) -> Result<Vec<RoleRow>, DbErr> {
    all(
        db,
        "SELECT principal, reference, role FROM member_roles WHERE bn9 = $1 AND principal = $2 ORDER BY reference",
        vec![bn9.into(), principal.into()],
    )
    .await
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
    let marks: Vec<String> = principals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vals.push(p.clone().into());
            format!("${}", i + 2)
        })
        .collect();
    all(
        db,
        &format!(
            "SELECT principal, reference, role FROM role_sources WHERE bn9 = $1 AND principal IN ({})",
            marks.join(", ")
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
    exec(
        db,
        "DELETE FROM member_roles WHERE bn9 = $1 AND principal = $2",
        vec![bn9.into(), principal.into()],
    )
    .await?;
    for (reference, role) in roles {
        exec(
            db,
            "INSERT INTO member_roles (bn9, principal, reference, role) VALUES ($1, $2, $3, $4)",
            vec![
                bn9.into(),
                principal.into(),
                reference.clone().into(),
                (*role).into(),
            ],
        )
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
    for sql in [
        "DELETE FROM member_roles WHERE bn9 = $1 AND principal = $2",
        "DELETE FROM group_members WHERE bn9 = $1 AND principal = $2",
        "DELETE FROM members WHERE bn9 = $1 AND principal = $2",
    ] {
        exec(db, sql, vec![bn9.into(), principal.into()]).await?;
    }
    Ok(())
}

/// Returns true when the member holds a role (BAM, or any direct or group role).
pub async fn has_any_role<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
) -> Result<bool, DbErr> {
    let c: Option<Count> = one(
        db,
        "SELECT (SELECT COUNT(*) FROM members WHERE bn9 = $1 AND principal = $2 AND business_manager = $3)
              + (SELECT COUNT(*) FROM role_sources WHERE bn9 = $1 AND principal = $2) AS n",
        vec![bn9.into(), principal.into(), true.into()],
    )
    .await?;
    Ok(c.is_some_and(|c| c.n > 0))
}

/// Returns the active group ids of a member.
pub async fn member_groups<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct G {
        group_id: String,
    }
    let rows: Vec<G> = all(
        db,
        "SELECT gm.group_id FROM group_members gm JOIN employee_groups g ON g.id = gm.group_id
         WHERE gm.bn9 = $1 AND gm.principal = $2 AND g.delete_time IS NULL ORDER BY gm.group_id",
        vec![bn9.into(), principal.into()],
    )
    .await?;
    Ok(rows.into_iter().map(|g| g.group_id).collect())
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
    let mut sql = format!("SELECT {MEMBER_COLS} FROM members m WHERE m.bn9 = $1");
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
    let l = next((limit as i64).into(), &mut vals);
    sql.push_str(&format!(" ORDER BY m.join_time, m.principal LIMIT {l}"));
    all(db, &sql, vals).await
}

/// One row of a principal's role facts: a membership with one role source.
#[derive(Debug, Clone, FromQueryResult)]
pub struct FactsRow {
    /// BN9.
    pub bn9: String,
    /// BAM.
    pub business_manager: bool,
    /// The business's revision counter.
    pub revision: i64,
    /// Legal name of the business.
    pub legal_name: String,
    /// A program reference, when the row carries a role.
    pub reference: Option<String>,
    /// The role on it.
    pub role: Option<i32>,
}

/// Returns every membership of a principal with every role source, in ONE
/// indexed query (members by principal, role sources by (bn9, principal)).
pub async fn role_facts<C: ConnectionTrait>(
    db: &C,
    principal: &str,
) -> Result<Vec<FactsRow>, DbErr> {
    all(
        db,
        "SELECT m.bn9, m.business_manager, COALESCE(r.counter, 0) AS revision, b.legal_name,
                s.reference, s.role
         FROM members m
         JOIN businesses b ON b.bn9 = m.bn9
         LEFT JOIN revisions r ON r.scope = m.bn9
         LEFT JOIN role_sources s ON s.bn9 = m.bn9 AND s.principal = m.principal
         WHERE m.principal = $1
         ORDER BY m.bn9",
        vec![principal.into()],
    )
    .await
}

// ---------------------------------------------------------------- groups

/// An employee group.
#[derive(Debug, Clone, FromQueryResult)]
pub struct GroupRow {
    /// Uuid.
    pub id: String,
    /// BN9.
    pub bn9: String,
    /// Its name.
    pub display_name: String,
    /// Its normalized name (unique per business).
    pub name_key: String,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Updated.
    pub update_time: DateTime<Utc>,
    /// Deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// Update counter (the etag).
    pub version: i64,
}

const GROUP_COLS: &str =
    "id, bn9, display_name, name_key, create_time, update_time, delete_time, version";

/// Returns a group of a business.
pub async fn group<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    id: &str,
) -> Result<Option<GroupRow>, DbErr> {
    one(
        db,
        &format!("SELECT {GROUP_COLS} FROM employee_groups WHERE bn9 = $1 AND id = $2"),
        vec![bn9.into(), id.into()],
    )
    .await
}

/// Lists a business's groups by normalized name after `after`.
pub async fn list_groups<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    after: &str,
    show_deleted: bool,
    limit: u64,
) -> Result<Vec<GroupRow>, DbErr> {
    let deleted = if show_deleted {
        ""
    } else {
        " AND delete_time IS NULL"
    };
    all(
        db,
        &format!(
            "SELECT {GROUP_COLS} FROM employee_groups WHERE bn9 = $1 AND name_key > $2{deleted}
             ORDER BY name_key LIMIT $3"
        ),
        vec![bn9.into(), after.into(), (limit as i64).into()],
    )
    .await
}

/// One row of a group's facts: the group, with one of its roles (none when
/// it holds no role).
#[derive(Debug, Clone, FromQueryResult)]
pub struct GroupFactsRow {
    /// Deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// A program reference it holds a role on.
    pub reference: Option<String>,
}

/// Returns a group of a business with the program references of its roles,
/// in ONE query by primary keys (empty when no such group lives under `bn9`).
pub async fn group_facts<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    id: &str,
) -> Result<Vec<GroupFactsRow>, DbErr> {
    all(
        db,
        "SELECT g.delete_time, gr.reference
         FROM employee_groups g
         LEFT JOIN group_roles gr ON gr.group_id = g.id
         WHERE g.id = $1 AND g.bn9 = $2
         ORDER BY gr.reference",
        vec![id.into(), bn9.into()],
    )
    .await
}

/// Inserts or updates a group row.
pub async fn upsert_group<C: ConnectionTrait>(db: &C, g: &GroupRow) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO employee_groups (id, bn9, display_name, name_key, create_time, update_time, delete_time, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, name_key = excluded.name_key,
         update_time = excluded.update_time, delete_time = excluded.delete_time, version = excluded.version",
        vec![
            g.id.clone().into(),
            g.bn9.clone().into(),
            g.display_name.clone().into(),
            g.name_key.clone().into(),
            g.create_time.into(),
            g.update_time.into(),
            g.delete_time.into(),
            g.version.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Returns a group's roles.
pub async fn group_roles<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Vec<(String, i32)>, DbErr> {
    #[derive(FromQueryResult)]
    struct R {
        reference: String,
        role: i32,
    }
    let rows: Vec<R> = all(
        db,
        "SELECT reference, role FROM group_roles WHERE group_id = $1 ORDER BY reference",
        vec![id.into()],
    )
    .await?;
    Ok(rows.into_iter().map(|r| (r.reference, r.role)).collect())
}

/// Replaces a group's roles.
pub async fn set_group_roles<C: ConnectionTrait>(
    db: &C,
    id: &str,
    roles: &[(String, i32)],
) -> Result<(), DbErr> {
    exec(
        db,
        "DELETE FROM group_roles WHERE group_id = $1",
        vec![id.into()],
    )
    .await?;
    for (reference, role) in roles {
        exec(
            db,
            "INSERT INTO group_roles (group_id, reference, role) VALUES ($1, $2, $3)",
            vec![id.into(), reference.clone().into(), (*role).into()],
        )
        .await?;
    }
    Ok(())
}

/// Returns a group's members.
pub async fn group_members<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct P {
        principal: String,
    }
    let rows: Vec<P> = all(
        db,
        "SELECT principal FROM group_members WHERE group_id = $1 ORDER BY principal",
        vec![id.into()],
    )
    .await?;
    Ok(rows.into_iter().map(|p| p.principal).collect())
}

/// Adds a member to a group; returns false when it was in it already.
pub async fn add_group_member<C: ConnectionTrait>(
    db: &C,
    id: &str,
    bn9: &str,
    principal: &str,
) -> Result<bool, DbErr> {
    Ok(exec(
        db,
        "INSERT INTO group_members (group_id, bn9, principal) VALUES ($1, $2, $3)
         ON CONFLICT (group_id, principal) DO NOTHING",
        vec![id.into(), bn9.into(), principal.into()],
    )
    .await?
        > 0)
}

/// Removes a member from a group; returns false when it was not in it.
pub async fn remove_group_member<C: ConnectionTrait>(
    db: &C,
    id: &str,
    principal: &str,
) -> Result<bool, DbErr> {
    Ok(exec(
        db,
        "DELETE FROM group_members WHERE group_id = $1 AND principal = $2",
        vec![id.into(), principal.into()],
    )
    .await?
        > 0)
}

// ---------------------------------------------------------------- employee requests

/// An employee access request.
#[derive(Debug, Clone, FromQueryResult)]
pub struct RequestRow {
    /// Uuid.
    pub id: String,
    /// BN9.
    pub bn9: String,
    /// `person:<uuid>`.
    pub requester: String,
    /// Justification.
    pub note: String,
    /// State spelling.
    pub state: String,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Expires.
    pub expire_time: DateTime<Utc>,
    /// Decided.
    pub decide_time: Option<DateTime<Utc>>,
    /// Decided by.
    pub decided_by: String,
    /// Rejection reason.
    pub reject_reason: String,
    /// Granted roles as JSON (`{}` when none).
    pub granted_json: String,
}

const REQUEST_COLS: &str = "id, bn9, requester, note, state, create_time, expire_time, decide_time, decided_by, reject_reason, granted_json";

/// Inserts a request (the partial unique index refuses a second pending one).
pub async fn insert_request<C: ConnectionTrait>(db: &C, r: &RequestRow) -> Result<(), DbErr> {
    exec(
        db,
        &format!(
            "INSERT INTO employee_requests ({REQUEST_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ),
        vec![
            r.id.clone().into(),
            r.bn9.clone().into(),
            r.requester.clone().into(),
            r.note.clone().into(),
            r.state.clone().into(),
            r.create_time.into(),
            r.expire_time.into(),
            r.decide_time.into(),
            r.decided_by.clone().into(),
            r.reject_reason.clone().into(),
            r.granted_json.clone().into(),
        ],
    )
    .await?;
    Ok(())
}

/// Records a decision on a pending request; returns false when it was no longer pending.
pub async fn decide_request<C: ConnectionTrait>(db: &C, r: &RequestRow) -> Result<bool, DbErr> {
    Ok(exec(
        db,
        "UPDATE employee_requests SET state = $1, decide_time = $2, decided_by = $3, reject_reason = $4,
         granted_json = $5 WHERE id = $6 AND state = 'PENDING'",
        vec![
            r.state.clone().into(),
            r.decide_time.into(),
            r.decided_by.clone().into(),
            r.reject_reason.clone().into(),
            r.granted_json.clone().into(),
            r.id.clone().into(),
        ],
    )
    .await?
        > 0)
}

/// Returns a request of a business.
pub async fn request<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    id: &str,
) -> Result<Option<RequestRow>, DbErr> {
    one(
        db,
        &format!("SELECT {REQUEST_COLS} FROM employee_requests WHERE bn9 = $1 AND id = $2"),
        vec![bn9.into(), id.into()],
    )
    .await
}

/// Lists requests of a business (oldest first) or of a requester (newest first).
pub async fn list_requests<C: ConnectionTrait>(
    db: &C,
    by_business: Option<&str>,
    by_requester: Option<&str>,
    state: Option<&str>,
    after: Option<(DateTime<Utc>, String)>,
    limit: u64,
) -> Result<Vec<RequestRow>, DbErr> {
    let mut sql = format!("SELECT {REQUEST_COLS} FROM employee_requests WHERE 1 = 1");
    let mut vals: Vec<Value> = Vec::new();
    let next = |v: Value, vals: &mut Vec<Value>| {
        vals.push(v);
        format!("${}", vals.len())
    };
    let newest_first = by_requester.is_some();
    if let Some(b) = by_business {
        let m = next(b.into(), &mut vals);
        sql.push_str(&format!(" AND bn9 = {m}"));
    }
    if let Some(r) = by_requester {
        let m = next(r.into(), &mut vals);
        sql.push_str(&format!(" AND requester = {m}"));
    }
    if let Some(s) = state {
        let m = next(s.into(), &mut vals);
        sql.push_str(&format!(" AND state = {m}"));
    }
    if let Some((t, id)) = after {
        let a = next(t.into(), &mut vals);
        let b = next(id.into(), &mut vals);
        let op = if newest_first { "<" } else { ">" };
        sql.push_str(&format!(
            " AND (create_time {op} {a} OR (create_time = {a} AND id {op} {b}))"
        ));
    }
    let l = next((limit as i64).into(), &mut vals);
    let dir = if newest_first { "DESC" } else { "ASC" };
    sql.push_str(&format!(" ORDER BY create_time {dir}, id {dir} LIMIT {l}"));
    all(db, &sql, vals).await
}

/// Returns pending requests whose expiry has passed.
pub async fn expired_pending<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<RequestRow>, DbErr> {
    all(
        db,
        &format!(
            "SELECT {REQUEST_COLS} FROM employee_requests WHERE state = 'PENDING' AND expire_time <= $1
             ORDER BY expire_time, id LIMIT $2"
        ),
        vec![now.into(), (limit as i64).into()],
    )
    .await
}

// ---------------------------------------------------------------- registration lockout

/// Returns when registration of a BN9 is locked until, if it is locked at `now`.
pub async fn locked_until<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    #[derive(FromQueryResult)]
    struct L {
        locked_until: DateTime<Utc>,
    }
    let l: Option<L> = one(
        db,
        "SELECT locked_until FROM registration_locks WHERE bn9 = $1 AND locked_until > $2",
        vec![bn9.into(), now.into()],
    )
    .await?;
    Ok(l.map(|l| l.locked_until))
}

/// Records a failed registration attempt and returns the failures since `since`.
pub async fn record_failure<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    principal: &str,
    now: DateTime<Utc>,
    since: DateTime<Utc>,
) -> Result<i64, DbErr> {
    exec(
        db,
        "INSERT INTO registration_failures (id, bn9, principal, time) VALUES ($1, $2, $3, $4)",
        vec![
            uuid::Uuid::now_v7().to_string().into(),
            bn9.into(),
            principal.into(),
            now.into(),
        ],
    )
    .await?;
    let c: Option<Count> = one(
        db,
        "SELECT COUNT(*) AS n FROM registration_failures WHERE bn9 = $1 AND time > $2",
        vec![bn9.into(), since.into()],
    )
    .await?;
    Ok(c.map_or(0, |c| c.n))
}

/// Locks registration of a BN9 until `until` and clears its counted failures.
pub async fn lock_registration<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
    until: DateTime<Utc>,
) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO registration_locks (bn9, locked_until) VALUES ($1, $2)
         ON CONFLICT (bn9) DO UPDATE SET locked_until = excluded.locked_until",
        vec![bn9.into(), until.into()],
    )
    .await?;
    exec(
        db,
        "DELETE FROM registration_failures WHERE bn9 = $1",
        vec![bn9.into()],
    )
    .await?;
    Ok(())
}

fn in_list(first: usize, items: &[String], vals: &mut Vec<Value>) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vals.push(p.clone().into());
            format!("${}", first + i)
        })
        .collect::<Vec<_>>()
        .join(", ")
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
    let mut vals: Vec<Value> = vec![bn9.into()];
    let marks = in_list(2, principals, &mut vals);
    all(
        db,
        &format!(
            "SELECT principal, reference, role FROM member_roles WHERE bn9 = $1 AND principal IN ({marks})"
        ),
        vals,
    )
    .await
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
    let marks = in_list(2, principals, &mut vals);
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

/// One row of a business's facts: a program account (`kind` = `P`) or a BAM (`M`).
#[derive(Debug, Clone, FromQueryResult)]
pub struct BusinessFactsRow {
    /// `P` for a program reference, `M` for a BAM principal.
    pub kind: String,
    /// The reference or the principal.
    pub value: String,
    /// Legal name.
    pub legal_name: String,
    /// When it registered.
    pub register_time: DateTime<Utc>,
    /// The business's revision counter.
    pub revision: i64,
}

/// Returns a registered business's program accounts and BAMs in ONE query
/// (empty when it is not registered; a registered business always has both).
pub async fn business_facts<C: ConnectionTrait>(
    db: &C,
    bn9: &str,
) -> Result<Vec<BusinessFactsRow>, DbErr> {
    all(
        db,
        "SELECT 'P' AS kind, p.reference AS value, b.legal_name, b.register_time,
                COALESCE(r.counter, 0) AS revision
         FROM businesses b
         JOIN program_accounts p ON p.bn9 = b.bn9
         LEFT JOIN revisions r ON r.scope = b.bn9
         WHERE b.bn9 = $1
         UNION ALL
         SELECT 'M' AS kind, m.principal AS value, b.legal_name, b.register_time,
                COALESCE(r.counter, 0) AS revision
         FROM businesses b
         JOIN members m ON m.bn9 = b.bn9 AND m.business_manager = $2
         LEFT JOIN revisions r ON r.scope = b.bn9
         WHERE b.bn9 = $1
         ORDER BY kind, value",
        vec![bn9.into(), true.into()],
    )
    .await
}
