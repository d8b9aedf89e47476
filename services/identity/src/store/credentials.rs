//! Machine credentials and the bad-secret counters of their client ids.

use ccp_platform::db::{from_micros, to_micros};
use ccp_types::Bn9;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entity::{credential_attempt, machine_credential};
use super::optional_micros;
use super::profiles::parse_uuid;
use crate::domain::credential::MachineCredential;

const T: &str = "machine_credentials";

/// Inserts a credential.
pub async fn insert<C: ConnectionTrait>(db: &C, c: &MachineCredential) -> Result<(), DbErr> {
    machine_credential::Entity::insert(machine_credential::ActiveModel {
        id: Set(c.id.to_string()),
        business: Set(c.business.to_string()),
        display_name: Set(c.display_name.clone()),
        secret_hash: Set(c.secret_hash.clone()),
        creator: Set(c.creator.clone()),
        create_us: Set(to_micros(c.create_time)),
        expire_us: Set(to_micros(c.expire_time)),
        revoke_us: Set(c.revoke_time.map(to_micros)),
        revoke_reason: Set(c.revoke_reason.clone()),
        expiry_reminder_us: Set(None),
        version: Set(c.version),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Returns a credential by id.
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<MachineCredential>, DbErr> {
    machine_credential::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Lists a business's credentials oldest first (ids are UUIDv7), after
/// `after_id`, only those active at `active_at` when given.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    business: &Bn9,
    after_id: Option<&str>,
    active_at: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<MachineCredential>, DbErr> {
    use machine_credential::Column;
    let mut q = machine_credential::Entity::find()
        .filter(Column::Business.eq(business.as_str()))
        .order_by_asc(Column::Id)
        .limit(limit);
    if let Some(after) = after_id {
        q = q.filter(Column::Id.gt(after));
    }
    if let Some(now) = active_at {
        q = q
            .filter(Column::RevokeUs.is_null())
            .filter(Column::ExpireUs.gt(to_micros(now)));
    }
    q.all(db).await?.into_iter().map(decode).collect()
}

/// Revokes a credential unless already revoked; returns true when this call revoked it.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use machine_credential::Column;
    let result = machine_credential::Entity::update_many()
        .col_expr(Column::RevokeUs, Expr::value(to_micros(now)))
        .col_expr(Column::RevokeReason, Expr::value(reason))
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::RevokeUs.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Returns, oldest first after `after_id`, at most `limit` credentials whose expiry reminder
/// is due at `now`: not revoked, not expired, expiring at most `lead` after `now`, and not
/// reminded yet.
pub async fn due_expiry_reminders<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    lead: chrono::Duration,
    after_id: &str,
    limit: u64,
) -> Result<Vec<MachineCredential>, DbErr> {
    use machine_credential::Column;
    machine_credential::Entity::find()
        .filter(Column::RevokeUs.is_null())
        .filter(Column::ExpiryReminderUs.is_null())
        .filter(Column::ExpireUs.gt(to_micros(now)))
        .filter(Column::ExpireUs.lte(to_micros(now + lead)))
        .filter(Column::Id.gt(after_id))
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

/// Marks credential `id` as reminded at `now` unless it was reminded or revoked meanwhile;
/// returns true when this call marked it. In the transaction that records the reminder, this
/// conditional UPDATE is what makes replicas sweeping at once emit one: the second waits for
/// the first's row lock (PostgreSQL) or write lock (SQLite), then finds the row marked.
pub async fn mark_expiry_reminded<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use machine_credential::Column;
    let result = machine_credential::Entity::update_many()
        .col_expr(Column::ExpiryReminderUs, Expr::value(to_micros(now)))
        .filter(Column::Id.eq(id.to_string()))
        .filter(Column::ExpiryReminderUs.is_null())
        .filter(Column::RevokeUs.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

fn decode(m: machine_credential::Model) -> Result<MachineCredential, DbErr> {
    Ok(MachineCredential {
        id: parse_uuid(&m.id, T, "id")?,
        business: Bn9::try_new(&m.business)
            .ok_or_else(|| ccp_platform::db::corrupt(T, "business", "an invalid BN9"))?,
        display_name: m.display_name,
        secret_hash: m.secret_hash,
        creator: m.creator,
        create_time: from_micros(m.create_us, T, "create_us")?,
        expire_time: from_micros(m.expire_us, T, "expire_us")?,
        revoke_time: optional_micros(m.revoke_us, T, "revoke_us")?,
        revoke_reason: m.revoke_reason,
        version: m.version,
    })
}

/// The bad-secret counter of one client id after counting an attempt.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// Attempts counted in the current window, this one included.
    pub failures: i64,
    /// Locked until, when locked.
    pub locked_until: Option<DateTime<Utc>>,
}

/// Counts an attempt for `client_id` before its secret is checked, in one
/// atomic statement (so concurrent attempts are all counted): a window older
/// than `window_us` restarts at 1.
pub async fn count_attempt<C: ConnectionTrait>(
    db: &C,
    client_id: Uuid,
    now: DateTime<Utc>,
    window_us: i64,
) -> Result<Attempt, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        failures: i64,
        locked_until_us: Option<i64>,
    }
    // An upsert with a conditional counter: a set-based statement the entity
    // API cannot express, and it must be one statement to count concurrent
    // guesses.
    let t = |name: &str| Alias::new(name);
    let now_us = to_micros(now);
    let stale = Expr::col((t("credential_attempts"), t("window_start_us"))).lt(now_us - window_us);
    let q = Query::insert()
        .into_table(t("credential_attempts"))
        .columns([t("client_id"), t("failures"), t("window_start_us")])
        .values_panic([client_id.to_string().into(), 1i64.into(), now_us.into()])
        .on_conflict(
            OnConflict::column(t("client_id"))
                .value(
                    t("failures"),
                    Expr::case(stale.clone(), 1i64)
                        .finally(Expr::col((t("credential_attempts"), t("failures"))).add(1)),
                )
                .value(
                    t("window_start_us"),
                    Expr::case(stale, now_us)
                        .finally(Expr::col((t("credential_attempts"), t("window_start_us")))),
                )
                .to_owned(),
        )
        .returning(Query::returning().columns([t("failures"), t("locked_until_us")]))
        .to_owned();
    let stmt = db.get_database_backend().build(&q);
    let row = Row::find_by_statement(stmt)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::Custom("attempt upsert returned no row".to_owned()))?;
    Ok(Attempt {
        failures: row.failures,
        locked_until: optional_micros(
            row.locked_until_us,
            "credential_attempts",
            "locked_until_us",
        )?,
    })
}

/// Locks a client id until `until` and restarts its window.
pub async fn lock_client<C: ConnectionTrait>(
    db: &C,
    client_id: Uuid,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    use credential_attempt::Column;
    credential_attempt::Entity::update_many()
        .col_expr(Column::LockedUntilUs, Expr::value(to_micros(until)))
        .col_expr(Column::Failures, Expr::value(0i64))
        .col_expr(Column::WindowStartUs, Expr::value(to_micros(now)))
        .filter(Column::ClientId.eq(client_id.to_string()))
        .exec(db)
        .await?;
    Ok(())
}

/// Uncounts one attempt of `client_id` (its secret was right).
pub async fn forgive_attempt<C: ConnectionTrait>(db: &C, client_id: Uuid) -> Result<(), DbErr> {
    use credential_attempt::Column;
    credential_attempt::Entity::update_many()
        .col_expr(Column::Failures, Expr::col(Column::Failures).sub(1))
        .filter(Column::ClientId.eq(client_id.to_string()))
        .filter(Column::Failures.gt(0))
        .exec(db)
        .await?;
    Ok(())
}
