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

/// Returns a principal's assignments to `client`, directly and through live
/// groups, with each provider's revision: what one Check needs, however many
/// clients the principal's groups hold.
pub async fn assignment_facts<C: ConnectionTrait>(
    db: &C,
    principal: &str,
    client: &str,
) -> Result<Vec<AssignmentFact>, DbErr> {
    // SQL: the direct assignments to the client (one range of (assignee, client)), then the
    // principal's group assignments (the range (assignee, NULL): a few groups) whose live group
    // holds the client (a point of client_group_clients' key), each with its provider's revision.
    let rows: Vec<AssignmentFactRow> = all(
        db,
        "SELECT a.provider, a.client, a.role, a.group_id, rv.counter AS rev \
         FROM assignments a \
         LEFT JOIN revisions rv ON rv.scope = a.provider \
         WHERE a.assignee = $1 AND a.client = $2 \
         UNION ALL \
         SELECT a.provider, gc.client, a.role, a.group_id, rv.counter AS rev \
         FROM assignments a \
         JOIN client_groups g ON g.id = a.group_id AND g.delete_us IS NULL \
         JOIN client_group_clients gc ON gc.group_id = g.id AND gc.client = $2 \
         LEFT JOIN revisions rv ON rv.scope = a.provider \
         WHERE a.assignee = $1 AND a.client IS NULL \
         ORDER BY provider",
        vec![principal.into(), client.into()],
    )
    .await?;
    decode_assignments(rows)
}

/// Returns a principal's assignments through `provider` for its next `limit`
/// clients after `after` (directly or through a live group), by client: a
/// page of the principal's clients, each as [`assignment_facts`] answers it.
///
/// Each source is read as one index range of at most `limit` clients after
/// the cursor — the direct assignments, then each live group the principal
/// is assigned through (few) by `client_group_clients`' primary key — and
/// the first `limit` clients of their union are kept: every row of those
/// clients is in their sources' first `limit`, so a page costs O(page), not
/// O(clients after the cursor).
pub async fn assigned_clients<C: ConnectionTrait>(
    db: &C,
    principal: &str,
    provider: &str,
    after: &str,
    limit: u64,
) -> Result<Vec<AssignmentFact>, DbErr> {
    #[derive(FromQueryResult)]
    struct GroupRow {
        group_id: String,
        role: String,
    }
    #[derive(FromQueryResult)]
    struct ClientRow {
        client: String,
    }
    let revision = ccp_platform::store::current_revision(db, provider).await?;
    // SQL: the direct assignments after the cursor, by client.
    let direct: Vec<AssignmentFactRow> = all(
        db,
        &format!(
            "SELECT a.provider, a.client, a.role, a.group_id, NULL AS rev FROM assignments a \
             WHERE a.assignee = $1 AND a.provider = $2 AND a.client IS NOT NULL \
             AND a.client > $3 ORDER BY a.client LIMIT {limit}"
        ),
        vec![principal.into(), provider.into(), after.into()],
    )
    .await?;
    let mut rows = decode_assignments(direct)?;
    // SQL: the live groups the principal is assigned through.
    let groups: Vec<GroupRow> = all(
        db,
        "SELECT a.group_id, a.role FROM assignments a \
         JOIN client_groups g ON g.id = a.group_id AND g.delete_us IS NULL \
         WHERE a.assignee = $1 AND a.provider = $2 ORDER BY a.group_id",
        vec![principal.into(), provider.into()],
    )
    .await?;
    for group in groups {
        // SQL: one group's clients after the cursor, a primary-key range.
        let clients: Vec<ClientRow> = all(
            db,
            &format!(
                "SELECT client FROM client_group_clients \
                 WHERE group_id = $1 AND client > $2 ORDER BY client LIMIT {limit}"
            ),
            vec![group.group_id.clone().into(), after.into()],
        )
        .await?;
        let role = decode_enum(&group.role, "assignments", "role")?;
        rows.extend(clients.into_iter().map(|c| AssignmentFact {
            provider: provider.to_owned(),
            client: Some(c.client),
            role,
            group_id: Some(group.group_id.clone()),
            revision,
        }));
    }
    rows.sort_by(|a, b| a.client.cmp(&b.client));
    let mut kept = 0u64;
    let mut last: Option<String> = None;
    rows.retain(|r| {
        if last.as_deref() != r.client.as_deref() {
            kept += 1;
            last.clone_from(&r.client);
        }
        kept <= limit
    });
    for r in &mut rows {
        r.revision = revision;
    }
    Ok(rows)
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
