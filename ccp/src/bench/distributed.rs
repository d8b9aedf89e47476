//! The distributed variants: services on PostgreSQL (a schema per service
//! and run) and the gateway's cache and bus on Redis (a unique key prefix).
//! URLs come from `CCP_BENCH_DATABASE_URL` / `CCP_BENCH_REDIS_URL`, else the
//! test URLs (`CCP_TEST_DATABASE_URL` / `CCP_TEST_REDIS_URL`).

use ccp_platform::config::DatabaseSettings;
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

/// Points the suite's cache and bus at Redis under a unique prefix
/// (`test` environment, so a settable clock is allowed).
pub fn configure_redis(settings: &mut SuiteSettings) -> anyhow::Result<()> {
    let url = redis_url().ok_or_else(|| {
        anyhow::anyhow!("needs Redis: set CCP_BENCH_REDIS_URL (or CCP_TEST_REDIS_URL)")
    })?;
    settings.common.environment = ccp_platform::config::Environment::Test;
    settings.common.redis.url = url;
    settings.common.redis.key_prefix = format!("ccp-bench:{}:", uuid::Uuid::new_v4().simple());
    Ok(())
}

/// Configures PostgreSQL (a fresh schema per service) and Redis.
pub fn configure(settings: &mut SuiteSettings) -> anyhow::Result<()> {
    configure_redis(settings)?;
    let url = env(&["CCP_BENCH_DATABASE_URL", "CCP_TEST_DATABASE_URL"]).ok_or_else(|| {
        anyhow::anyhow!("--distributed needs PostgreSQL: set CCP_BENCH_DATABASE_URL")
    })?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let schema = |service: &str| DatabaseSettings {
        schema: Some(format!("bench_{}_{service}", &run[..12])),
        ..DatabaseSettings::postgres(&url)
    };
    settings.identity.database = schema("identity");
    settings.accounts.database = schema("accounts");
    settings.delegation.database = schema("delegation");
    settings.identity.key_encryption_key =
        SecretString::from(ccp_platform::auth::InternalTokens::generate_key());
    Ok(())
}
