//! Queries of the identity tables (sea-query, portable between SQLite and PostgreSQL).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::{from_us, us};
use crate::domain::profile::{Language, ProfileFields};

fn t(name: &str) -> Alias {
    Alias::new(name)
}

async fn one<R: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    q: &sea_orm::sea_query::SelectStatement,
) -> Result<Option<R>, DbErr> {
    let stmt = db.get_database_backend().build(q);
    R::find_by_statement(stmt).one(db).await
}

async fn all<R: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    q: &sea_orm::sea_query::SelectStatement,
) -> Result<Vec<R>, DbErr> {
    let stmt = db.get_database_backend().build(q);
    R::find_by_statement(stmt).all(db).await
}

// ---------------------------------------------------------------- identities

/// Returns the person an external (issuer, subject) maps to.
pub async fn find_person<C: ConnectionTrait>(
    db: &C,
    issuer: &str,
    subject: &str,
) -> Result<Option<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        person_id: String,
    }
    let q = Query::select()
        .column(t("person_id"))
        .from(t("federated_identities"))
        .and_where(Expr::col(t("issuer")).eq(issuer))
        .and_where(Expr::col(t("subject")).eq(subject))
        .to_owned();
    Ok(one::<Row, _>(db, &q).await?.map(|r| r.person_id))
}

/// Maps (issuer, subject) to a new person. Fails with a unique violation when
/// a concurrent first sign-in won.
pub async fn insert_identity<C: ConnectionTrait>(
    db: &C,
    issuer: &str,
    subject: &str,
    person_id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let q = Query::insert()
        .into_table(t("federated_identities"))
        .columns([t("issuer"), t("subject"), t("person_id"), t("create_us")])
        .values_panic([
            issuer.into(),
            subject.into(),
            person_id.into(),
            us(now).into(),
        ])
        .to_owned();
    db.execute(&q).await?;
    Ok(())
}

// ---------------------------------------------------------------- profiles

/// A stored profile.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ProfileRow {
    /// The person's uuid.
    pub id: String,
    /// Legal name.
    pub legal_name: String,
    /// E-mail.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// `en` or `fr`.
    pub preferred_language: String,
    /// Opt-in.
    pub email_notifications: bool,
    /// Created (µs).
    pub create_us: i64,
    /// Updated (µs).
    pub update_us: i64,
    /// Update counter (the etag).
    pub version: i64,
}

impl ProfileRow {
    /// Returns the editable fields.
    pub fn fields(&self) -> ProfileFields {
        ProfileFields {
            legal_name: self.legal_name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            preferred_language: Language::from_code(&self.preferred_language)
                .unwrap_or(Language::En),
            email_notifications: self.email_notifications,
        }
    }

    /// Returns the creation instant.
    pub fn create_time(&self) -> DateTime<Utc> {
        from_us(self.create_us)
    }

    /// Returns the update instant.
    pub fn update_time(&self) -> DateTime<Utc> {
        from_us(self.update_us)
    }
}

const PROFILE_COLUMNS: [&str; 9] = [
    "id",
    "legal_name",
    "email",
    "phone",
    "preferred_language",
    "email_notifications",
    "create_us",
    "update_us",
    "version",
];

/// Returns a profile by person id.
pub async fn get_profile<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<ProfileRow>, DbErr> {
    let q = Query::select()
        .columns(PROFILE_COLUMNS.map(t))
        .from(t("profiles"))
        .and_where(Expr::col(t("id")).eq(id))
        .to_owned();
    one(db, &q).await
}

/// Returns the profiles among `ids`, in one query.
pub async fn get_profiles<C: ConnectionTrait>(
    db: &C,
    ids: &[String],
) -> Result<Vec<ProfileRow>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let q = Query::select()
        .columns(PROFILE_COLUMNS.map(t))
        .from(t("profiles"))
        .and_where(Expr::col(t("id")).is_in(ids.iter().cloned()))
        .to_owned();
    all(db, &q).await
}

/// Inserts a profile (version 1). Fails with a unique violation when it exists.
pub async fn insert_profile<C: ConnectionTrait>(
    db: &C,
    id: &str,
    f: &ProfileFields,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let q = Query::insert()
        .into_table(t("profiles"))
        .columns(PROFILE_COLUMNS.map(t))
        .values_panic([
            id.into(),
            f.legal_name.clone().into(),
            f.email.clone().into(),
            f.phone.clone().into(),
            f.preferred_language.code().into(),
            f.email_notifications.into(),
            us(now).into(),
            us(now).into(),
            1i64.into(),
        ])
        .to_owned();
    db.execute(&q).await?;
    Ok(())
}

/// Updates a profile whose version is `version`; returns false when it moved.
pub async fn update_profile<C: ConnectionTrait>(
    db: &C,
    id: &str,
    f: &ProfileFields,
    version: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let q = Query::update()
        .table(t("profiles"))
        .value(t("legal_name"), f.legal_name.clone())
        .value(t("email"), f.email.clone())
        .value(t("phone"), f.phone.clone())
        .value(t("preferred_language"), f.preferred_language.code())
        .value(t("email_notifications"), f.email_notifications)
        .value(t("update_us"), us(now))
        .value(t("version"), version + 1)
        .and_where(Expr::col(t("id")).eq(id))
        .and_where(Expr::col(t("version")).eq(version))
        .to_owned();
    Ok(db.execute(&q).await?.rows_affected() == 1)
}

// ---------------------------------------------------------------- sessions

/// A session family (the refresh tokens of one sign-in).
#[derive(Debug, Clone, FromQueryResult)]
pub struct FamilyRow {
    /// Family id (the access tokens' `sid`).
    pub id: String,
    /// The person.
    pub person_id: String,
    /// The issuer signed in through.
    pub issuer: String,
    /// Created (µs).
    pub create_us: i64,
    /// Expires (µs).
    pub expire_us: i64,
    /// Revoked (µs).
    pub revoke_us: Option<i64>,
}

/// Inserts a session family.
pub async fn insert_family<C: ConnectionTrait>(
    db: &C,
    id: &str,
    person_id: &str,
    issuer: &str,
    now: DateTime<Utc>,
    expire: DateTime<Utc>,
) -> Result<(), DbErr> {
    let q = Query::insert()
        .into_table(t("session_families"))
        .columns([
            t("id"),
            t("person_id"),
            t("issuer"),
            t("create_us"),
            t("expire_us"),
        ])
        .values_panic([
            id.into(),
            person_id.into(),
            issuer.into(),
            us(now).into(),
            us(expire).into(),
        ])
        .to_owned();
    db.execute(&q).await?;
    Ok(())
}

/// Returns a session family.
pub async fn get_family<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<FamilyRow>, DbErr> {
    let q = Query::select()
        .columns(
            [
                "id",
                "person_id",
                "issuer",
                "create_us",
                "expire_us",
                "revoke_us",
            ]
            .map(t),
        )
        .from(t("session_families"))
        .and_where(Expr::col(t("id")).eq(id))
        .to_owned();
    one(db, &q).await
}

/// Revokes a family unless already revoked; returns true when this call revoked it.
pub async fn revoke_family<C: ConnectionTrait>(
    db: &C,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let q = Query::update()
        .table(t("session_families"))
        .value(t("revoke_us"), us(now))
        .value(t("revoke_reason"), reason)
        .and_where(Expr::col(t("id")).eq(id))
        .and_where(Expr::col(t("revoke_us")).is_null())
        .to_owned();
    Ok(db.execute(&q).await?.rows_affected() == 1)
}

/// A stored refresh token (by hash).
#[derive(Debug, Clone, FromQueryResult)]
pub struct RefreshRow {
    /// The family.
    pub family_id: String,
    /// Expires (µs).
    pub expire_us: i64,
    /// Used (rotated) at (µs).
    pub used_us: Option<i64>,
}

/// Stores a refresh token's hash.
pub async fn insert_refresh<C: ConnectionTrait>(
    db: &C,
    hash: &str,
    family: &str,
    now: DateTime<Utc>,
    expire: DateTime<Utc>,
) -> Result<(), DbErr> {
    let q = Query::insert()
        .into_table(t("refresh_tokens"))
        .columns([
            t("token_hash"),
            t("family_id"),
            t("create_us"),
            t("expire_us"),
        ])
        .values_panic([
            hash.into(),
            family.into(),
            us(now).into(),
            us(expire).into(),
        ])
        .to_owned();
    db.execute(&q).await?;
    Ok(())
}

/// Returns a refresh token by hash.
pub async fn get_refresh<C: ConnectionTrait>(
    db: &C,
    hash: &str,
) -> Result<Option<RefreshRow>, DbErr> {
    let q = Query::select()
        .columns(["family_id", "expire_us", "used_us"].map(t))
        .from(t("refresh_tokens"))
        .and_where(Expr::col(t("token_hash")).eq(hash))
        .to_owned();
    one(db, &q).await
}

/// Marks a refresh token used, once: returns false when it was used already
/// (a concurrent or repeated presentation).
pub async fn use_refresh<C: ConnectionTrait>(
    db: &C,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let q = Query::update()
        .table(t("refresh_tokens"))
        .value(t("used_us"), us(now))
        .and_where(Expr::col(t("token_hash")).eq(hash))
        .and_where(Expr::col(t("used_us")).is_null())
        .to_owned();
    Ok(db.execute(&q).await?.rows_affected() == 1)
}

// ---------------------------------------------------------------- credentials

/// A stored machine credential.
#[derive(Debug, Clone, FromQueryResult)]
pub struct CredentialRow {
    /// Credential uuid (also the client id).
    pub id: String,
    /// BN9.
    pub business: String,
    /// Label.
    pub display_name: String,
    /// argon2id PHC string of the secret.
    pub secret_hash: String,
    /// Creator principal.
    pub creator: String,
    /// Created (µs).
    pub create_us: i64,
    /// Expires (µs).
    pub expire_us: i64,
    /// Revoked (µs).
    pub revoke_us: Option<i64>,
    /// Revocation reason.
    pub revoke_reason: Option<String>,
    /// Update counter (the etag).
    pub version: i64,
}

const CREDENTIAL_COLUMNS: [&str; 10] = [
    "id",
    "business",
    "display_name",
    "secret_hash",
    "creator",
    "create_us",
    "expire_us",
    "revoke_us",
    "revoke_reason",
    "version",
];

/// Inserts a credential.
pub async fn insert_credential<C: ConnectionTrait>(db: &C, c: &CredentialRow) -> Result<(), DbErr> {
    let q = Query::insert()
        .into_table(t("machine_credentials"))
        .columns(CREDENTIAL_COLUMNS.map(t))
        .values_panic([
            c.id.clone().into(),
            c.business.clone().into(),
            c.display_name.clone().into(),
            c.secret_hash.clone().into(),
            c.creator.clone().into(),
            c.create_us.into(),
            c.expire_us.into(),
            c.revoke_us.into(),
            c.revoke_reason.clone().into(),
            c.version.into(),
        ])
        .to_owned();
    db.execute(&q).await?;
    Ok(())
}

/// Returns a credential by id.
pub async fn get_credential<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<CredentialRow>, DbErr> {
    let q = Query::select()
        .columns(CREDENTIAL_COLUMNS.map(t))
        .from(t("machine_credentials"))
        .and_where(Expr::col(t("id")).eq(id))
        .to_owned();
    one(db, &q).await
}

/// Lists a business's credentials oldest first (ids are UUIDv7), after `after_id`.
pub async fn list_credentials<C: ConnectionTrait>(
    db: &C,
    business: &str,
    after_id: Option<&str>,
    active_at: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<CredentialRow>, DbErr> {
    let mut q = Query::select();
    q.columns(CREDENTIAL_COLUMNS.map(t))
        .from(t("machine_credentials"))
        .and_where(Expr::col(t("business")).eq(business))
        .order_by(t("id"), Order::Asc)
        .limit(limit);
    if let Some(after) = after_id {
        q.and_where(Expr::col(t("id")).gt(after));
    }
    if let Some(now) = active_at {
        q.and_where(Expr::col(t("revoke_us")).is_null())
            .and_where(Expr::col(t("expire_us")).gt(us(now)));
    }
    all(db, &q).await
}

/// Revokes a credential unless already revoked; returns true when this call revoked it.
pub async fn revoke_credential<C: ConnectionTrait>(
    db: &C,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let q = Query::update()
        .table(t("machine_credentials"))
        .value(t("revoke_us"), us(now))
        .value(t("revoke_reason"), reason)
        .value(t("version"), Expr::col(t("version")).add(1))
        .and_where(Expr::col(t("id")).eq(id))
        .and_where(Expr::col(t("revoke_us")).is_null())
        .to_owned();
    Ok(db.execute(&q).await?.rows_affected() == 1)
}

/// The bad-secret counter of one client id after counting an attempt.
#[derive(Debug, Clone, Copy, FromQueryResult)]
pub struct AttemptRow {
    /// Attempts counted in the current window, this one included.
    pub failures: i64,
    /// Locked until (µs), when locked.
    pub locked_until_us: Option<i64>,
}

/// Counts an attempt for `client_id` before its secret is checked, in one
/// atomic statement (so concurrent attempts are all counted): a window older
/// than `window_us` restarts at 1.
pub async fn count_attempt<C: ConnectionTrait>(
    db: &C,
    client_id: &str,
    now: DateTime<Utc>,
    window_us: i64,
) -> Result<AttemptRow, DbErr> {
    let now_us = us(now);
    let stale = Expr::col((t("credential_attempts"), t("window_start_us"))).lt(now_us - window_us);
    let q = Query::insert()
        .into_table(t("credential_attempts"))
        .columns([t("client_id"), t("failures"), t("window_start_us")])
        .values_panic([client_id.into(), 1i64.into(), now_us.into()])
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
    AttemptRow::find_by_statement(stmt)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::Custom("attempt upsert returned no row".to_owned()))
}

/// Locks a client id until `until` and restarts its window.
pub async fn lock_client<C: ConnectionTrait>(
    db: &C,
    client_id: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let q = Query::update()
        .table(t("credential_attempts"))
        .value(t("locked_until_us"), us(until))
        .value(t("failures"), 0i64)
        .value(t("window_start_us"), us(now))
        .and_where(Expr::col(t("client_id")).eq(client_id))
        .to_owned();
    db.execute(&q).await?;
    Ok(())
}

/// Uncounts one attempt of `client_id` (its secret was right).
pub async fn forgive_attempt<C: ConnectionTrait>(db: &C, client_id: &str) -> Result<(), DbErr> {
    let q = Query::update()
        .table(t("credential_attempts"))
        .value(t("failures"), Expr::col(t("failures")).sub(1))
        .and_where(Expr::col(t("client_id")).eq(client_id))
        .and_where(Expr::col(t("failures")).gt(0))
        .to_owned();
    db.execute(&q).await?;
    Ok(())
}
