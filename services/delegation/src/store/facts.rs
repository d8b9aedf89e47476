//! The facts the gateway asks for, each one set-based query over several
//! tables with a revision counter joined in; kept as SQL (`ccp_platform::db`).

use ccp_platform::db::{all, decode_enum, from_micros};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::relationships::ending;
use super::{list, spelled_list};
use crate::domain::{AssignmentFact, RelationshipFact};

const TABLE: &str = "relationships";

/// A relationship row with the revision counter of a scope.
#[derive(Debug, Clone, FromQueryResult)]
struct FactRow {
    rev: Option<i64>,
    id: Option<String>,
    client: Option<String>,
    level: Option<String>,
    program_accounts: Option<String>,
    visibility: Option<String>,
    start_us: Option<i64>,
    expire_us: Option<i64>,
    end_us: Option<i64>,
    end_reason: Option<String>,
}

/// Returns the scope's revision and the relationships of the rows (a row
/// without a relationship, from the outer join, carries the revision only).
fn decode_facts(rows: Vec<FactRow>) -> Result<(i64, Vec<RelationshipFact>), DbErr> {
    let revision = rows.first().and_then(|r| r.rev).unwrap_or(0);
    let mut facts = Vec::with_capacity(rows.len());
    for r in rows {
        let (Some(id), Some(client), Some(level), Some(start_us), Some(expire_us)) =
            (r.id, r.client, r.level, r.start_us, r.expire_us)
        else {
            continue;
        };
        facts.push(RelationshipFact {
            id,
            client,
            level: decode_enum(&level, TABLE, "level")?,
            program_accounts: list(
                r.program_accounts.as_deref().unwrap_or("[]"),
                TABLE,
                "program_accounts",
            )?,
            visibility: spelled_list(r.visibility.as_deref().unwrap_or("[]"), TABLE, "visibility")?,
            start_time: from_micros(start_us, TABLE, "start_us")?,
            expire_time: from_micros(expire_us, TABLE, "expire_us")?,
            ended: ending(r.end_us, r.end_reason.as_deref(), TABLE)?,
        });
    }
    Ok((revision, facts))
}

/// Returns the pair scope's revision and the pair's relationships, newest first.
pub async fn pair_facts<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    client: &str,
    scope: &str,
) -> Result<(i64, Vec<RelationshipFact>), DbErr> {
    // SQL: the revision and the relationships in one indexed round trip (outer joins from a one-row table).
    let rows: Vec<FactRow> = all(
        db,
        "SELECT rv.counter AS rev, r.id, r.client, r.level, r.program_accounts, r.visibility, \
         r.start_us, r.expire_us, r.end_us, r.end_reason \
         FROM (SELECT 1 AS one) s \
         LEFT JOIN revisions rv ON rv.scope = $3 \
         LEFT JOIN relationships r ON r.provider = $1 AND r.client = $2 \
         ORDER BY r.start_us DESC, r.id DESC",
        vec![provider.into(), client.into(), scope.into()],
    )
    .await?;
    decode_facts(rows)
}

/// Returns the provider's revision and the relationships of its next `limit`
/// clients after `after`, by client then newest first.
pub async fn client_facts<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    after: &str,
    limit: u64,
) -> Result<(i64, Vec<RelationshipFact>), DbErr> {
    // SQL: a page of distinct clients and all their relationships, with the revision, in one query.
    let rows: Vec<FactRow> = all(
        db,
        &format!(
            "SELECT rv.counter AS rev, r.id, r.client, r.level, r.program_accounts, \
             r.visibility, r.start_us, r.expire_us, r.end_us, r.end_reason \
             FROM (SELECT 1 AS one) s \
             LEFT JOIN revisions rv ON rv.scope = $1 \
             LEFT JOIN relationships r ON r.provider = $1 AND r.client IN \
               (SELECT DISTINCT c.client FROM relationships c \
                WHERE c.provider = $1 AND c.client > $2 ORDER BY c.client LIMIT {limit}) \
             ORDER BY r.client, r.start_us DESC, r.id DESC"
        ),
        vec![provider.into(), after.into()],
    )
    .await?;
    decode_facts(rows)
}

#[derive(Debug, Clone, FromQueryResult)]
struct AssignmentFactRow {
    provider: String,
    client: Option<String>,
    role: String,
    group_id: Option<String>,
    rev: Option<i64>,
}

fn decode_assignments(rows: Vec<AssignmentFactRow>) -> Result<Vec<AssignmentFact>, DbErr> {
    rows.into_iter()
        .map(|r| {
            Ok(AssignmentFact {
                role: decode_enum(&r.role, "assignments", "role")?,
                provider: r.provider,
                client: r.client,
                group_id: r.group_id,
                revision: r.rev.unwrap_or(0),
            })
        })
        .collect()
}

/// Returns what a principal is assigned to, directly and through live
/// groups, with each provider's revision.
pub async fn assignment_facts<C: ConnectionTrait>(
    db: &C,
    principal: &str,
) -> Result<Vec<AssignmentFact>, DbErr> {
    // SQL: assignments, live groups, their members and revisions joined in one indexed query.
    let rows: Vec<AssignmentFactRow> = all(
        db,
        "SELECT a.provider, COALESCE(a.client, gc.client) AS client, a.role, a.group_id, \
         rv.counter AS rev \
         FROM assignments a \
         LEFT JOIN client_groups g ON g.id = a.group_id AND g.delete_us IS NULL \
         LEFT JOIN client_group_clients gc ON gc.group_id = g.id \
         LEFT JOIN revisions rv ON rv.scope = a.provider \
         WHERE a.assignee = $1 \
         ORDER BY a.provider, COALESCE(a.client, gc.client)",
        vec![principal.into()],
    )
    .await?;
    decode_assignments(rows)
}

/// Returns a principal's assignments through `provider` for its next `limit`
/// clients after `after` (directly or through a live group), by client: a
/// page of what [`assignment_facts`] returns for the whole principal.
pub async fn assigned_clients<C: ConnectionTrait>(
    db: &C,
    principal: &str,
    provider: &str,
    after: &str,
    limit: u64,
) -> Result<Vec<AssignmentFact>, DbErr> {
    // SQL: the page's distinct clients (direct and group branches each an index
    // range after the cursor), then their assignment rows, in one query.
    let rows: Vec<AssignmentFactRow> = all(
        db,
        &format!(
            "SELECT a.provider, u.client, a.role, a.group_id, rv.counter AS rev \
             FROM (SELECT DISTINCT c.client FROM ( \
                     SELECT d.client AS client FROM assignments d \
                     WHERE d.assignee = $1 AND d.provider = $2 AND d.client > $3 \
                     UNION ALL \
                     SELECT gc.client FROM assignments ga \
                     JOIN client_groups g ON g.id = ga.group_id AND g.delete_us IS NULL \
                     JOIN client_group_clients gc ON gc.group_id = g.id AND gc.client > $3 \
                     WHERE ga.assignee = $1 AND ga.provider = $2) c \
                   ORDER BY c.client LIMIT {limit}) u \
             JOIN assignments a ON a.assignee = $1 AND a.provider = $2 \
             LEFT JOIN client_groups g ON g.id = a.group_id AND g.delete_us IS NULL \
             LEFT JOIN client_group_clients gc ON gc.group_id = g.id AND gc.client = u.client \
             LEFT JOIN revisions rv ON rv.scope = a.provider \
             WHERE a.client = u.client OR gc.client = u.client \
             ORDER BY u.client, a.group_id"
        ),
        vec![principal.into(), provider.into(), after.into()],
    )
    .await?;
    decode_assignments(rows)
}

/// Returns the provider's revision and the relationships of its pairs with
/// `clients`, by client then newest first (ListAssignedClients' page).
pub async fn clients_facts<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    clients: &[String],
) -> Result<(i64, Vec<RelationshipFact>), DbErr> {
    if clients.is_empty() {
        return Ok((0, Vec::new()));
    }
    let list = (2..2 + clients.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut values: Vec<sea_orm::Value> = vec![provider.into()];
    values.extend(clients.iter().map(|c| c.clone().into()));
    // SQL: the revision and the relationships of a set of pairs in one indexed round trip.
    let rows: Vec<FactRow> = all(
        db,
        &format!(
            "SELECT rv.counter AS rev, r.id, r.client, r.level, r.program_accounts, \
             r.visibility, r.start_us, r.expire_us, r.end_us, r.end_reason \
             FROM (SELECT 1 AS one) s \
             LEFT JOIN revisions rv ON rv.scope = $1 \
             LEFT JOIN relationships r ON r.provider = $1 AND r.client IN ({list}) \
             ORDER BY r.client, r.start_us DESC, r.id DESC"
        ),
        values,
    )
    .await?;
    decode_facts(rows)
}

/// Returns the principals a provider assigned to a client, directly or
/// through a live client group (the principals a pair change affects).
pub async fn assignees_of_pair<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    client: &str,
) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        assignee: String,
    }
    // SQL: direct and group assignments of one client, deduplicated, in one query.
    let rows: Vec<Row> = all(
        db,
        "SELECT DISTINCT a.assignee FROM assignments a \
         LEFT JOIN client_groups g ON g.id = a.group_id AND g.delete_us IS NULL \
         LEFT JOIN client_group_clients gc ON gc.group_id = g.id AND gc.client = $2 \
         WHERE a.provider = $1 AND (a.client = $2 OR gc.client = $2) \
         ORDER BY a.assignee",
        vec![provider.into(), client.into()],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.assignee).collect())
}
