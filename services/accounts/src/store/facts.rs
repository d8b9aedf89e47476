//! The facts the gateway asks for, each in ONE set-based statement (kept as
//! SQL: joins over members, the `role_sources` view, program accounts and
//! the revision counters).

use ccp_platform::db::all;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

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
    // SQL: memberships joined with their business, revision and role sources.
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
    // SQL: a group joined with its roles.
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
    // SQL: a union of program accounts and BAMs with the revision counter.
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

/// One row of several businesses' facts: [`BusinessFactsRow`] with its BN9.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ManyBusinessFactsRow {
    /// The business.
    pub bn9: String,
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

/// Returns the program accounts and BAMs of the registered ones among
/// `bn9s`, by BN9, in ONE query (`business_facts` for many).
pub async fn business_facts_many<C: ConnectionTrait>(
    db: &C,
    bn9s: &[String],
) -> Result<Vec<ManyBusinessFactsRow>, DbErr> {
    if bn9s.is_empty() {
        return Ok(Vec::new());
    }
    // `$2`…: the BN9s (bounded by the caller); `$1` is the BAM flag.
    let list = placeholders(2, bn9s.len());
    let mut values: Vec<sea_orm::Value> = vec![true.into()];
    values.extend(bn9s.iter().map(|b| b.clone().into()));
    // SQL: business_facts' union over a set of BN9s.
    all(
        db,
        &format!(
            "SELECT b.bn9 AS bn9, 'P' AS kind, p.reference AS value, b.legal_name, b.register_time,
                    COALESCE(r.counter, 0) AS revision
             FROM businesses b
             JOIN program_accounts p ON p.bn9 = b.bn9
             LEFT JOIN revisions r ON r.scope = b.bn9
             WHERE b.bn9 IN ({list})
             UNION ALL
             SELECT b.bn9 AS bn9, 'M' AS kind, m.principal AS value, b.legal_name, b.register_time,
                    COALESCE(r.counter, 0) AS revision
             FROM businesses b
             JOIN members m ON m.bn9 = b.bn9 AND m.business_manager = $1
             LEFT JOIN revisions r ON r.scope = b.bn9
             WHERE b.bn9 IN ({list})
             ORDER BY bn9, kind, value"
        ),
        values,
    )
    .await
}

/// Returns the revision counters of the scopes that have one, in ONE query.
pub async fn revisions_of<C: ConnectionTrait>(
    db: &C,
    scopes: &[String],
) -> Result<Vec<(String, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        scope: String,
        counter: i64,
    }
    if scopes.is_empty() {
        return Ok(Vec::new());
    }
    let list = placeholders(1, scopes.len());
    // SQL: the revisions table by a set of scopes.
    let rows: Vec<Row> = all(
        db,
        &format!("SELECT scope, counter FROM revisions WHERE scope IN ({list})"),
        scopes.iter().map(|s| s.clone().into()).collect(),
    )
    .await?;
    Ok(rows.into_iter().map(|r| (r.scope, r.counter)).collect())
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
