//! Profiles and the federated identities that map an issuer's subject to a person.

use ccp_platform::db::{corrupt, decode_enum, from_micros, to_micros};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::{federated_identity, profile};
use crate::domain::profile::{Profile, ProfileFields};

/// Returns the person an external (issuer, subject) maps to.
pub async fn find_person<C: ConnectionTrait>(
    db: &C,
    issuer: &str,
    subject: &str,
) -> Result<Option<Uuid>, DbErr> {
    let row = federated_identity::Entity::find_by_id((issuer.to_owned(), subject.to_owned()))
        .one(db)
        .await?;
    row.map(|r| parse_uuid(&r.person_id, "federated_identities", "person_id"))
        .transpose()
}

/// Maps (issuer, subject) to a new person. Fails with a unique violation when
/// a concurrent first sign-in won.
pub async fn insert_identity<C: ConnectionTrait>(
    db: &C,
    issuer: &str,
    subject: &str,
    person: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    federated_identity::Entity::insert(federated_identity::ActiveModel {
        issuer: Set(issuer.to_owned()),
        subject: Set(subject.to_owned()),
        person_id: Set(person.to_string()),
        create_us: Set(to_micros(now)),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Returns a person's profile.
pub async fn get<C: ConnectionTrait>(db: &C, person: Uuid) -> Result<Option<Profile>, DbErr> {
    profile::Entity::find_by_id(person.to_string())
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Returns the profiles among `ids`, in one query.
pub async fn get_many<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<Vec<Profile>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    profile::Entity::find()
        .filter(profile::Column::Id.is_in(ids.iter().map(Uuid::to_string)))
        .all(db)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

/// Inserts a profile. Fails with a unique violation when it exists.
pub async fn insert<C: ConnectionTrait>(db: &C, p: &Profile) -> Result<(), DbErr> {
    let f = &p.fields;
    profile::Entity::insert(profile::ActiveModel {
        id: Set(p.id.to_string()),
        legal_name: Set(f.legal_name.clone()),
        email: Set(f.email.clone()),
        phone: Set(f.phone.clone()),
        preferred_language: Set(f.preferred_language.code().to_owned()),
        email_notifications: Set(f.email_notifications),
        notification_choices: Set(encode_choices(f)?),
        create_us: Set(to_micros(p.create_time)),
        update_us: Set(to_micros(p.update_time)),
        version: Set(p.version),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Stores `next` over the profile whose version is `next.version - 1`;
/// returns false when it moved meanwhile.
pub async fn update<C: ConnectionTrait>(db: &C, next: &Profile) -> Result<bool, DbErr> {
    let f: &ProfileFields = &next.fields;
    let result = profile::Entity::update_many()
        .col_expr(
            profile::Column::LegalName,
            Expr::value(f.legal_name.clone()),
        )
        .col_expr(profile::Column::Email, Expr::value(f.email.clone()))
        .col_expr(profile::Column::Phone, Expr::value(f.phone.clone()))
        .col_expr(
            profile::Column::PreferredLanguage,
            Expr::value(f.preferred_language.code()),
        )
        .col_expr(
            profile::Column::EmailNotifications,
            Expr::value(f.email_notifications),
        )
        .col_expr(
            profile::Column::NotificationChoices,
            Expr::value(encode_choices(f)?),
        )
        .col_expr(
            profile::Column::UpdateUs,
            Expr::value(to_micros(next.update_time)),
        )
        .col_expr(profile::Column::Version, Expr::value(next.version))
        .filter(profile::Column::Id.eq(next.id.to_string()))
        .filter(profile::Column::Version.eq(next.version - 1))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Returns the stored form of the choices per kind of notice: a JSON object.
fn encode_choices(f: &ProfileFields) -> Result<String, DbErr> {
    serde_json::to_string(&f.notification_choices).map_err(|e| DbErr::Custom(e.to_string()))
}

fn decode(m: profile::Model) -> Result<Profile, DbErr> {
    const T: &str = "profiles";
    Ok(Profile {
        id: parse_uuid(&m.id, T, "id")?,
        fields: ProfileFields {
            legal_name: m.legal_name,
            email: m.email,
            phone: m.phone,
            preferred_language: decode_enum(&m.preferred_language, T, "preferred_language")?,
            email_notifications: m.email_notifications,
            notification_choices: serde_json::from_str(&m.notification_choices)
                .map_err(|_| corrupt(T, "notification_choices", "not a JSON object of booleans"))?,
        },
        create_time: from_micros(m.create_us, T, "create_us")?,
        update_time: from_micros(m.update_us, T, "update_us")?,
        version: m.version,
    })
}

/// Parses a stored uuid, naming its table and column when it is not one.
pub(super) fn parse_uuid(text: &str, table: &str, column: &str) -> Result<Uuid, DbErr> {
    Uuid::parse_str(text).map_err(|_| corrupt(table, column, "a malformed uuid"))
}
