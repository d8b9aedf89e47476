//! The distributed variants: services on PostgreSQL (a database per service
//! and run) and the gateway's cache and bus on Redis (a unique key prefix).
//! URLs come from `CCP_BENCH_DATABASE_URL` / `CCP_BENCH_REDIS_URL`, else the
//! test URLs (`CCP_TEST_DATABASE_URL` / `CCP_TEST_REDIS_URL`).
//!
//! Everything a run creates is removed when it ends, also when it fails: the
//! databases are dropped ([`BenchDatabases::drop_all`], or on drop as a last
//! resort) and the prefixed Redis keys deleted ([`RedisKeys::delete`]).

use std::time::Duration;

use ccp_platform::config::DatabaseSettings;
use sea_orm_migration::sea_orm::{
    ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection, DbErr,
};
use secrecy::SecretString;

use crate::settings::SuiteSettings;

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// Returns the Redis URL to use, if any.
pub fn redis_url() -> Option<String> {
    env(&["CCP_BENCH_REDIS_URL", "CCP_TEST_REDIS_URL"])
}

/// Returns the PostgreSQL URL to use: `explicit` (`--database-url`), else
/// `CCP_BENCH_DATABASE_URL`, else `CCP_TEST_DATABASE_URL`.
pub fn database_url(explicit: Option<&str>) -> Option<String> {
    explicit
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .or_else(|| env(&["CCP_BENCH_DATABASE_URL", "CCP_TEST_DATABASE_URL"]))
}

/// The Redis keys of one run (every key under one unique prefix).
#[derive(Debug, Clone)]
pub struct RedisKeys {
    url: String,
    prefix: String,
}

/// Upper bound on the SCAN round trips of one cleanup (1000 keys each).
const MAX_SCAN_ROUNDS: usize = 100_000;

impl RedisKeys {
    /// Deletes every key under the prefix (SCAN + UNLINK, bounded in rounds
    /// and time); returns how many were deleted.
    pub async fn delete(&self) -> anyhow::Result<u64> {
        let work = async {
            let client = redis::Client::open(self.url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let pattern = format!("{}*", self.prefix);
            let mut cursor: u64 = 0;
            let mut deleted = 0u64;
            for _ in 0..MAX_SCAN_ROUNDS {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    let n: u64 = redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await?;
                    deleted += n;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            anyhow::Ok(deleted)
        };
        tokio::time::timeout(Duration::from_secs(30), work)
            .await
            .map_err(|_| anyhow::anyhow!("deleting the bench's Redis keys timed out"))?
    }
}

/// Points the suite's cache and bus at Redis under a unique prefix
/// (`test` environment, so a settable clock is allowed); returns the keys to
/// delete when the run ends.
pub fn configure_redis(settings: &mut SuiteSettings) -> anyhow::Result<RedisKeys> {
    let url = redis_url().ok_or_else(|| {
        anyhow::anyhow!("needs Redis: set CCP_BENCH_REDIS_URL (or CCP_TEST_REDIS_URL)")
    })?;
    let prefix = format!("ccp-bench:{}:", uuid::Uuid::new_v4().simple());
    settings.common.environment = ccp_platform::config::Environment::Test;
    settings.common.redis.url = url.clone();
    settings.common.redis.key_prefix = prefix.clone();
    Ok(RedisKeys { url, prefix })
}

/// Returns `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host = base[scheme_end..]
        .find('/')
        .map_or(base, |i| &base[..scheme_end + i]);
    match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    }
}

/// PostgreSQL databases of one run, one per service
/// (`bench_<uuid>_<service>`), created on the server of an admin URL and
/// dropped by [`BenchDatabases::drop_all`] (or, as a last resort, on drop).
#[derive(Debug)]
pub struct BenchDatabases {
    admin_url: String,
    run: String,
    names: Vec<(String, String)>,
    dropped: bool,
}

impl BenchDatabases {
    /// Creates a fresh database per service on the server of `admin_url`.
    pub async fn create(admin_url: &str, services: &[&str]) -> anyhow::Result<Self> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut me = Self {
            admin_url: admin_url.to_owned(),
            run: run[..12].to_owned(),
            names: Vec::new(),
            dropped: false,
        };
        let admin = admin(admin_url, services.len())
            .await
            .map_err(|e| anyhow::anyhow!("PostgreSQL at the configured URL is unreachable: {e}"))?;
        // One statement per database, at once (each waits for a checkpoint).
        let names: Vec<(String, String)> = services
            .iter()
            .map(|s| ((*s).to_owned(), format!("bench_{}_{s}", me.run)))
            .collect();
        let created = futures::future::join_all(names.iter().map(|(_, name)| {
            let admin = admin.clone();
            async move {
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
            }
        }))
        .await;
        let _ = admin.close().await;
        let mut first_error = None;
        for (name, result) in names.into_iter().zip(created) {
            match result {
                Ok(_) => me.names.push(name),
                Err(err) => {
                    first_error.get_or_insert_with(|| {
                        anyhow::anyhow!("cannot create database {}: {err}", name.1)
                    });
                }
            }
        }
        if let Some(err) = first_error {
            me.drop_all().await?;
            return Err(err);
        }
        Ok(me)
    }

    /// Returns the database name of `service`.
    pub fn name(&self, service: &str) -> Option<&str> {
        self.names
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, n)| n.as_str())
    }

    /// Returns the URL of `service`'s database.
    pub fn url(&self, service: &str) -> anyhow::Result<String> {
        let name = self
            .name(service)
            .ok_or_else(|| anyhow::anyhow!("no bench database for {service}"))?;
        Ok(with_database(&self.admin_url, name))
    }

    /// Returns database settings for `service` (its own database, a schema
    /// named after the service, as the services use in tests).
    pub fn settings(&self, service: &str) -> anyhow::Result<DatabaseSettings> {
        Ok(DatabaseSettings {
            schema: Some(service.to_owned()),
            ..DatabaseSettings::postgres(&self.url(service)?)
        })
    }

    /// Drops every database of the run (terminating leftover connections).
    pub async fn drop_all(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        drop_databases(&self.admin_url, &self.names).await
    }
}

/// Connects to the admin database with `n` connections, statements unlogged.
async fn admin(admin_url: &str, n: usize) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(admin_url.to_owned());
    options
        .max_connections(u32::try_from(n.max(1)).unwrap_or(4))
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(60))
        .sqlx_logging(false);
    Database::connect(options).await
}

async fn drop_databases(admin_url: &str, names: &[(String, String)]) -> anyhow::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let work = async {
        let admin = admin(admin_url, names.len()).await?;
        let dropped = futures::future::join_all(names.iter().map(|(_, name)| {
            let admin = admin.clone();
            async move {
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|err| anyhow::anyhow!("dropping {name}: {err}"))
            }
        }))
        .await;
        let _ = admin.close().await;
        dropped
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    };
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .map_err(|_| anyhow::anyhow!("dropping the bench databases timed out"))?
}

impl Drop for BenchDatabases {
    fn drop(&mut self) {
        if self.dropped || self.names.is_empty() {
            return;
        }
        // A panic or an early return skipped `drop_all`: drop them on a
        // private runtime off the caller's.
        let (admin_url, names) = (self.admin_url.clone(), std::mem::take(&mut self.names));
        let handle = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(drop_databases(&admin_url, &names));
            }
        });
        let _ = handle.join();
    }
}

/// What a distributed run leaves to clean up.
#[derive(Debug)]
pub struct Cleanup {
    databases: Option<BenchDatabases>,
    redis: Option<RedisKeys>,
}

impl Cleanup {
    /// Drops the run's databases and deletes its Redis keys; logs and
    /// returns the first failure.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut first_error = None;
        if let Some(dbs) = self.databases
            && let Err(err) = dbs.drop_all().await
        {
            tracing::warn!(error = %err, "bench databases not dropped");
            first_error.get_or_insert(err);
        }
        if let Some(keys) = self.redis
            && let Err(err) = keys.delete().await
        {
            tracing::warn!(error = %err, "bench Redis keys not deleted");
            first_error.get_or_insert(err);
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Configures PostgreSQL (a fresh database per service) and Redis; the
/// returned [`Cleanup`] removes both when the run ends.
pub async fn configure(
    settings: &mut SuiteSettings,
    database_url_arg: Option<&str>,
) -> anyhow::Result<Cleanup> {
    let url = database_url(database_url_arg).ok_or_else(|| {
        anyhow::anyhow!(
            "--distributed needs PostgreSQL: pass --database-url or set CCP_BENCH_DATABASE_URL \
             (or CCP_TEST_DATABASE_URL), e.g. postgres://postgres@127.0.0.1:5432/postgres"
        )
    })?;
    let redis = configure_redis(settings)?;
    let databases = BenchDatabases::create(&url, &["identity", "accounts", "delegation"]).await?;
    settings.identity.database = databases.settings("identity")?;
    settings.accounts.database = databases.settings("accounts")?;
    settings.delegation.database = databases.settings("delegation")?;
    settings.identity.key_encryption_key =
        SecretString::from(ccp_platform::auth::InternalTokens::generate_key());
    Ok(Cleanup {
        databases: Some(databases),
        redis: Some(redis),
    })
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_database_url_names_the_bench_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b"),
            "postgres://u:p@h/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b"),
            "postgres://h:5432/b"
        );
    }
}
