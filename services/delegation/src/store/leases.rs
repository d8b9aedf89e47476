//! Leases on background jobs (`sweep_leases`): taken, renewed and released
//! each with one conditional statement, so two replicas can never both hold
//! one (the same upsert on SQLite and PostgreSQL).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::entity::sweep_lease::{ActiveModel, Column, Entity};
use super::us;

/// Takes or renews the lease `name` for `holder` until `until`: succeeds
/// (true) when nobody holds it, `holder` already does, or the holder's lease
/// lapsed at or before `now`; false when another holder's lease runs.
pub async fn take_lease<C: ConnectionTrait>(
    db: &C,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let taken = Entity::insert(ActiveModel {
        name: Set(name.to_owned()),
        holder: Set(holder.to_owned()),
        until_us: Set(us(until)),
    })
    .on_conflict(
        OnConflict::column(Column::Name)
            .update_columns([Column::Holder, Column::UntilUs])
            .action_and_where(
                Expr::col((Entity, Column::Holder))
                    .eq(holder)
                    .or(Expr::col((Entity, Column::UntilUs)).lte(us(now))),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(taken == 1)
}

/// Gives the lease `name` up at `now` when `holder` holds it, so another
/// replica may take it without waiting for it to lapse.
pub async fn release_lease<C: ConnectionTrait>(
    db: &C,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::UntilUs, Expr::value(us(now)))
        .filter(Column::Name.eq(name))
        .filter(Column::Holder.eq(holder))
        .exec(db)
        .await
        .map(|_| ())
}
