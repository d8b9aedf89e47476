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
