//! Relationships (`relationships`) and their reminder schedule.

use ccp_platform::db::{corrupt, decode_enum, from_micros};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::relationship::{ActiveModel, Column, Entity, Model};
use super::{encode_list, list, opt_instant, opt_us, spelled_list, us};
use crate::domain::{EndReason, Party, Relationship, Visibility};

const TABLE: &str = "relationships";

/// Decodes a recorded ending: both columns or neither.
pub(super) fn ending(
    end_us: Option<i64>,
    end_reason: Option<&str>,
    table: &str,
) -> Result<Option<(DateTime<Utc>, EndReason)>, DbErr> {
    match (end_us, end_reason) {
        (Some(at), Some(reason)) => Ok(Some((
            from_micros(at, table, "end_us")?,
            decode_enum(reason, table, "end_reason")?,
        ))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(corrupt(
            table,
            "end_reason",
            "nothing for an ended relationship",
        )),
        (None, Some(_)) => Err(corrupt(table, "end_us", "nothing for an end reason")),
    }
}

fn decode(m: Model) -> Result<Relationship, DbErr> {
    Ok(Relationship {
        level: decode_enum(&m.level, TABLE, "level")?,
        program_accounts: list(&m.program_accounts, TABLE, "program_accounts")?,
        visibility: spelled_list(&m.visibility, TABLE, "visibility")?,
        start_time: from_micros(m.start_us, TABLE, "start_us")?,
        expire_time: from_micros(m.expire_us, TABLE, "expire_us")?,
        ended: ending(m.end_us, m.end_reason.as_deref(), TABLE)?,
        update_time: from_micros(m.update_us, TABLE, "update_us")?,
        reminders: [
            opt_instant(m.remind_30_us, TABLE, "remind_30_us")?,
            opt_instant(m.remind_7_us, TABLE, "remind_7_us")?,
            opt_instant(m.remind_1_us, TABLE, "remind_1_us")?,
        ],
        id: m.id,
        provider: m.provider,
        client: m.client,
        request_id: m.request_id,
        ended_by: m.ended_by,
        end_note: m.end_note,
        version: m.version,
    })
}

fn decode_all(models: Vec<Model>) -> Result<Vec<Relationship>, DbErr> {
    models.into_iter().map(decode).collect()
}

fn visibility_text(items: &[Visibility]) -> Result<String, DbErr> {
    encode_list(
        &items
            .iter()
            .map(|v| v.as_str().to_owned())
            .collect::<Vec<_>>(),
    )
}

fn active_model(r: &Relationship) -> Result<ActiveModel, DbErr> {
    Ok(ActiveModel {
        id: Set(r.id.clone()),
        provider: Set(r.provider.clone()),
        client: Set(r.client.clone()),
        request_id: Set(r.request_id.clone()),
        level: Set(r.level.as_str().to_owned()),
        program_accounts: Set(encode_list(&r.program_accounts)?),
        visibility: Set(visibility_text(&r.visibility)?),
        start_us: Set(us(r.start_time)),
        expire_us: Set(us(r.expire_time)),
        end_us: Set(r.ended.map(|(at, _)| us(at))),
        end_reason: Set(r.ended.map(|(_, why)| why.as_str().to_owned())),
        ended_by: Set(r.ended_by.clone()),
        end_note: Set(r.end_note.clone()),
        update_us: Set(us(r.update_time)),
        version: Set(r.version),
        remind_30_us: Set(opt_us(r.reminders[0])),
        remind_7_us: Set(opt_us(r.reminders[1])),
        remind_1_us: Set(opt_us(r.reminders[2])),
    })
}

/// Inserts a relationship (a unique violation when the pair has an unended one).
pub async fn insert_relationship<C: ConnectionTrait>(
    db: &C,
    r: &Relationship,
) -> Result<(), DbErr> {
    Entity::insert(active_model(r)?)
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Rewrites a relationship's mutable fields, guarded by its version; returns
/// false when the version moved.
pub async fn save_relationship<C: ConnectionTrait>(
    db: &C,
    r: &Relationship,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let m = active_model(r)?;
    let done = Entity::update_many()
        .set(ActiveModel {
            level: m.level,
            program_accounts: m.program_accounts,
            visibility: m.visibility,
            expire_us: m.expire_us,
            end_us: m.end_us,
            end_reason: m.end_reason,
            ended_by: m.ended_by,
            end_note: m.end_note,
            update_us: m.update_us,
            version: m.version,
            remind_30_us: m.remind_30_us,
            remind_7_us: m.remind_7_us,
            remind_1_us: m.remind_1_us,
            ..Default::default()
        })
        .filter(Column::Id.eq(r.id.as_str()))
        .filter(Column::Version.eq(expected_version))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Returns a relationship by id.
pub async fn get_relationship<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<Relationship>, DbErr> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Returns the pair's relationship with no recorded ending, if any.
pub async fn unended_relationship_of_pair<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    client: &str,
) -> Result<Option<Relationship>, DbErr> {
    Entity::find()
        .filter(Column::Provider.eq(provider))
        .filter(Column::Client.eq(client))
        .filter(Column::EndUs.is_null())
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Which relationships to list.
#[derive(Debug, Clone)]
pub struct RelationshipFilter {
    /// The business.
    pub business: String,
    /// As client, as provider, or either (None).
    pub side: Option<Party>,
    /// Only active (Some(true)), only ended (Some(false)), or all.
    pub active: Option<bool>,
    /// Now.
    pub now: DateTime<Utc>,
    /// Continue after this id.
    pub after: Option<String>,
    /// At most this many.
    pub limit: u64,
}

/// Lists relationships oldest first (by id, a uuid v7).
pub async fn list_relationships<C: ConnectionTrait>(
    db: &C,
    f: &RelationshipFilter,
) -> Result<Vec<Relationship>, DbErr> {
    let bn = f.business.as_str();
    let now = us(f.now);
    let mut q = Entity::find().filter(Column::Id.gt(f.after.clone().unwrap_or_default()));
    q = match f.side {
        Some(Party::Client) => q.filter(Column::Client.eq(bn)),
        Some(Party::Provider) => q.filter(Column::Provider.eq(bn)),
        None => q.filter(
            Condition::any()
                .add(Column::Client.eq(bn))
                .add(Column::Provider.eq(bn)),
        ),
    };
    q = match f.active {
        Some(true) => q
            .filter(Column::EndUs.is_null())
            .filter(Column::ExpireUs.gt(now)),
        Some(false) => q.filter(
            Condition::any()
                .add(Column::EndUs.is_not_null())
                .add(Column::ExpireUs.lte(now)),
        ),
        None => q,
    };
    decode_all(q.order_by_asc(Column::Id).limit(f.limit).all(db).await?)
}

/// Returns relationships past their expiry with no recorded ending.
pub async fn lapsed_relationships<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Relationship>, DbErr> {
    decode_all(
        Entity::find()
            .filter(Column::EndUs.is_null())
            .filter(Column::ExpireUs.lte(us(now)))
            .order_by_asc(Column::ExpireUs)
            .limit(limit)
            .all(db)
            .await?,
    )
}

/// Returns unended, unexpired relationships with a reminder due at `now`,
/// after `after_id` (by id): the first `limit` of the three reminders'
/// queries merged (each one range of its own index).
pub async fn due_reminders<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    after_id: &str,
    limit: u64,
) -> Result<Vec<Relationship>, DbErr> {
    let mut rows: Vec<Model> = Vec::new();
    for column in REMINDER_COLUMNS {
        rows.extend(
            due_reminders_query(column, now, after_id, limit)
                .all(db)
                .await?,
        );
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.dedup_by(|a, b| a.id == b.id);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    decode_all(rows)
}

/// The reminder columns: 30, 7 and 1 days before expiry.
pub const REMINDER_COLUMNS: [Column; 3] =
    [Column::Remind30Us, Column::Remind7Us, Column::Remind1Us];

/// The query of one reminder `column` for [`due_reminders`]: the unended,
/// unexpired relationships whose reminder in `column` is due, meant as one
/// range of that column's index (end_us, remind_…_us) (m0004). SQLite without
/// statistics does not always prefer it to the expiry index (an EXPLAIN test
/// flapped between the two), so the plan is the scale bench's to prove.
pub fn due_reminders_query(
    column: Column,
    now: DateTime<Utc>,
    after_id: &str,
    limit: u64,
) -> sea_orm::Select<Entity> {
    let now = us(now);
    Entity::find()
        .filter(Column::EndUs.is_null())
        .filter(column.lte(now))
        // Unary `+`: not a term the expiry index (end_us, expire_us) can
        // serve, so the query is not read through it (every active relationship).
        .filter(sea_orm::sea_query::ExprTrait::gt(
            Expr::cust("+expire_us"),
            now,
        ))
        .filter(Column::Id.gt(after_id))
        .order_by_asc(Column::Id)
        .limit(limit)
}

/// Clears the reminder columns given (emitted or skipped), guarded by their
/// current values so two sweepers never both emit; returns false when another
/// sweeper got there first.
pub async fn clear_reminders<C: ConnectionTrait>(
    db: &C,
    r: &Relationship,
    clear: [bool; 3],
) -> Result<bool, DbErr> {
    let columns = [Column::Remind30Us, Column::Remind7Us, Column::Remind1Us];
    let mut update = Entity::update_many().filter(Column::Id.eq(r.id.as_str()));
    let mut any = false;
    for i in 0..3 {
        if clear[i] {
            any = true;
            update = update
                .col_expr(columns[i], Expr::value(Option::<i64>::None))
                .filter(columns[i].eq(opt_us(r.reminders[i])));
        }
    }
    if !any {
        return Ok(true);
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}
