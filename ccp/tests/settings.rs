//! The suite's configuration tree: the shipped example configuration loads,
//! and the embedded defaults put every service on its documented port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use ccp::settings::SuiteSettings;

#[test]
fn the_example_distributed_configuration_loads_with_a_key_from_the_environment() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ccp.example.toml");
    let env = HashMap::from([
        (
            "CCP_INTERNAL_AUTH__KEY".to_owned(),
            "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".to_owned(),
        ),
        (
            "CCP_IDENTITY__KEY_ENCRYPTION_KEY".to_owned(),
            "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".to_owned(),
        ),
    ]);
    let settings: SuiteSettings =
        ccp_platform::config::load_with_env("", Some(&file), env).unwrap();
    assert_eq!(
        settings.identity.issuers.len(),
        2,
        "GCKey and a Sign-in Partner"
    );
    assert_eq!(settings.identity.issuers[0].name, "gckey");
    assert_eq!(settings.gateway.server.listen, "0.0.0.0:50050");
    assert!(settings.accounts.database.is_postgres());
    assert!(!settings.identity.database.migrate_on_start);
}

#[test]
fn production_without_an_internal_key_names_the_key() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ccp.example.toml");
    let err = ccp_platform::config::load_with_env::<SuiteSettings>("", Some(&file), HashMap::new())
        .unwrap_err();
    assert_eq!(err.key, "internal_auth.key");
    assert_eq!(err.env_name(), "CCP_INTERNAL_AUTH__KEY");
}

#[test]
fn production_requires_identitys_key_encryption_key_where_identity_runs_only() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ccp.example.toml");
    let env = HashMap::from([(
        "CCP_INTERNAL_AUTH__KEY".to_owned(),
        "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".to_owned(),
    )]);
    // The other services' processes (and `ccp migrate accounts`) load without it...
    let settings =
        ccp_platform::config::load_with_env::<SuiteSettings>("", Some(&file), env).unwrap();
    // ...and identity refuses to run without it, naming the key.
    let err = settings
        .identity
        .validate_for(settings.common.environment)
        .unwrap_err();
    assert_eq!(err.key, "identity.key_encryption_key");
    assert_eq!(err.env_name(), "CCP_IDENTITY__KEY_ENCRYPTION_KEY");
}

#[test]
fn embedded_defaults_use_the_documented_ports_and_data_directory() {
    let settings: SuiteSettings =
        ccp_platform::config::load_with_env("", None, HashMap::new()).unwrap();
    assert_eq!(settings.gateway.server.listen, "127.0.0.1:50050");
    assert_eq!(settings.identity.server.listen, "127.0.0.1:50051");
    assert_eq!(settings.accounts.server.listen, "127.0.0.1:50052");
    assert_eq!(settings.delegation.server.listen, "127.0.0.1:50053");
    assert_eq!(settings.notifications.server.listen, "127.0.0.1:50054");
    let embedded = settings.with_embedded_databases();
    let url = secrecy::ExposeSecret::expose_secret(&embedded.accounts.database.url).to_owned();
    assert!(url.starts_with("sqlite://.ccp/accounts.sqlite"), "{url}");
}

#[test]
fn a_wrong_port_in_the_environment_names_the_key() {
    let env = HashMap::from([(
        "CCP_GATEWAY__SERVER__LISTEN".to_owned(),
        "not-an-address".to_owned(),
    )]);
    let err = ccp_platform::config::load_with_env::<SuiteSettings>("", None, env).unwrap_err();
    assert_eq!(err.key, "gateway.server.listen");
}

/// Returns every key the README's configuration tables name (`| \`key\` | \`CCP_…\` |`).
fn readme_keys() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    readme
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let key = cells
                .next()?
                .strip_prefix('`')?
                .split('`')
                .next()?
                .to_owned();
            let env = cells.next()?;
            env.starts_with("`CCP_").then_some(key)
        })
        .collect()
}

#[test]
fn every_documented_key_is_known_so_a_misspelt_variable_can_be_refused() {
    use ccp_platform::config::Validate as _;
    let known = SuiteSettings::known_keys();
    let documented = readme_keys();
    assert!(documented.len() > 50, "{documented:?}");
    let missing: Vec<_> = documented.iter().filter(|k| !known.contains(k)).collect();
    assert!(missing.is_empty(), "keys the walk missed: {missing:?}");
}

#[test]
fn an_unknown_ccp_variable_names_the_closest_key() {
    let env = HashMap::from([("CCP_GATEWAY__SERVER__LISTN".to_owned(), "x".to_owned())]);
    let err = ccp_platform::config::load_with_env::<SuiteSettings>("", None, env).unwrap_err();
    assert_eq!(err.key, "gateway.server.listn");
    assert!(
        err.to_string().contains("CCP_GATEWAY__SERVER__LISTEN"),
        "{err}"
    );
    // The command's own variables are not configuration keys.
    let env = HashMap::from([
        ("CCP_SESSION".to_owned(), "s.json".to_owned()),
        (
            "CCP_GATEWAY_URL".to_owned(),
            "http://127.0.0.1:1".to_owned(),
        ),
        ("CCP_STATE_DIR".to_owned(), "state".to_owned()),
        (
            "CCP_TEST_DATABASE_URL".to_owned(),
            "postgres://x".to_owned(),
        ),
    ]);
    ccp_platform::config::load_with_env::<SuiteSettings>("", None, env).unwrap();
}

#[test]
fn an_unknown_environment_names_the_key_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ccp.toml");
    std::fs::write(&file, "environment = \"prod\"\n").unwrap();
    let err = ccp_platform::config::load_with_env::<SuiteSettings>("", Some(&file), HashMap::new())
        .unwrap_err();
    assert_eq!(err.key, "environment", "{err}");
    assert!(err.to_string().contains("production"), "{err}");
}
