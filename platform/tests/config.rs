//! Configuration precedence (compiled-in defaults < file < environment), key naming in errors,
//! and the validation of the shared sections, through `config::load_with_env` so that no test
//! touches the process environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use ccp_platform::auth::InternalTokens;
use ccp_platform::config::{ClockMode, ConfigError, Environment, Validate, load_with_env};
use ccp_platform::context::CommonSettings;
use ccp_platform::testing::tempfile_dir::TempDir;
use serde::Deserialize;

/// A small settings tree standing in for a service's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct TestSettings {
    svc: SvcSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct SvcSettings {
    listen: String,
    timeout_ms: u64,
    name: String,
}

impl Default for SvcSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:1".to_owned(),
            timeout_ms: 1,
            name: "builtin".to_owned(),
        }
    }
}

impl Validate for TestSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.svc
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::new("svc.listen", e.to_string()))?;
        Ok(())
    }
}

const DEFAULTS: &str = r#"
[svc]
listen = "127.0.0.1:7000"
timeout_ms = 100
name = "from-defaults"
"#;

/// A config file in a temporary directory (removed with the directory).
struct ConfigFile {
    _dir: TempDir,
    path: PathBuf,
}

fn config_file(contents: &str) -> ConfigFile {
    let dir = TempDir::new();
    let path = dir.path().join("ccp.toml");
    std::fs::write(&path, contents).expect("write the config file");
    ConfigFile { _dir: dir, path }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(file: Option<&ConfigFile>, vars: &[(&str, &str)]) -> Result<TestSettings, ConfigError> {
    load_with_env(DEFAULTS, file.map(|f| f.path.as_path()), env(vars))
}

#[test]
fn defaults_alone_are_loaded() {
    let s = load(None, &[]).unwrap();
    assert_eq!(s.svc.listen, "127.0.0.1:7000");
    assert_eq!(s.svc.timeout_ms, 100);
    assert_eq!(s.svc.name, "from-defaults");
}

#[test]
fn file_overrides_defaults() {
    let file = config_file("[svc]\ntimeout_ms = 200\n");
    let s = load(Some(&file), &[]).unwrap();
    assert_eq!(s.svc.timeout_ms, 200);
    // Keys the file does not set keep their defaults.
    assert_eq!(s.svc.listen, "127.0.0.1:7000");
    assert_eq!(s.svc.name, "from-defaults");
}

#[test]
fn environment_overrides_file_and_defaults_while_default_only_keys_survive() {
    let file = config_file("[svc]\ntimeout_ms = 200\nlisten = \"127.0.0.1:7001\"\n");
    let s = load(
        Some(&file),
        &[
            ("CCP_SVC__TIMEOUT_MS", "300"),
            // Variables without the prefix are ignored.
            ("SVC__NAME", "not-ours"),
            ("OTHER_SVC__NAME", "not-ours"),
        ],
    )
    .unwrap();
    assert_eq!(s.svc.timeout_ms, 300, "environment beats file and default");
    assert_eq!(s.svc.listen, "127.0.0.1:7001", "file beats default");
    assert_eq!(
        s.svc.name, "from-defaults",
        "a key set only by the defaults survives"
    );
}

#[test]
fn environment_overrides_defaults_without_a_file() {
    let s = load(None, &[("CCP_SVC__LISTEN", "127.0.0.1:7002")]).unwrap();
    assert_eq!(s.svc.listen, "127.0.0.1:7002");
    assert_eq!(s.svc.timeout_ms, 100);
}

#[test]
fn wrong_type_in_file_names_the_key() {
    let file = config_file("[svc]\ntimeout_ms = \"abc\"\n");
    let err = load(Some(&file), &[]).unwrap_err();
    assert_eq!(err.key, "svc.timeout_ms", "{err}");
    assert_eq!(err.env_name(), "CCP_SVC__TIMEOUT_MS");
}

#[test]
fn wrong_type_from_environment_names_the_key() {
    let err = load(None, &[("CCP_SVC__TIMEOUT_MS", "abc")]).unwrap_err();
    assert_eq!(err.key, "svc.timeout_ms", "{err}");
}

#[test]
fn validation_error_names_the_key() {
    let err = load(None, &[("CCP_SVC__LISTEN", "not an address")]).unwrap_err();
    assert_eq!(err.key, "svc.listen", "{err}");
    assert!(err.to_string().contains("CCP_SVC__LISTEN"), "{err}");
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = TempDir::new();
    let missing = dir.path().join("does-not-exist.toml");
    let err = load_with_env::<TestSettings>(DEFAULTS, Some(&missing), HashMap::new()).unwrap_err();
    assert!(err.message.contains("not found"), "{err}");
}

#[test]
fn env_name_follows_the_separator_convention() {
    assert_eq!(
        ConfigError::new("gateway.server.listen", "x").env_name(),
        "CCP_GATEWAY__SERVER__LISTEN"
    );
}

// ---------------------------------------------------------------------------------------------
// The shared sections every binary reads.

fn internal_key() -> String {
    InternalTokens::generate_key()
}

#[test]
fn production_without_an_internal_key_is_refused() {
    let err = load_with_env::<CommonSettings>("", None, env(&[("CCP_ENVIRONMENT", "production")]))
        .unwrap_err();
    assert_eq!(err.key, "internal_auth.key", "{err}");
}

#[test]
fn settable_clock_is_refused_in_production() {
    let key = internal_key();
    let err = load_with_env::<CommonSettings>(
        "",
        None,
        env(&[
            ("CCP_ENVIRONMENT", "production"),
            ("CCP_INTERNAL_AUTH__KEY", &key),
            ("CCP_REDIS__URL", "redis://127.0.0.1:6379"),
            ("CCP_CLOCK__MODE", "settable"),
        ]),
    )
    .unwrap_err();
    assert_eq!(err.key, "clock.mode", "{err}");
}

#[test]
fn settable_clock_is_accepted_in_test() {
    let s = load_with_env::<CommonSettings>(
        "",
        None,
        env(&[("CCP_ENVIRONMENT", "test"), ("CCP_CLOCK__MODE", "settable")]),
    )
    .unwrap();
    assert_eq!(s.environment, Environment::Test);
    assert_eq!(s.clock.mode, ClockMode::Settable);
    assert!(s.clock.build(s.environment).unwrap().is_settable());
}

#[test]
fn file_clock_is_refused_in_production_and_needs_a_readable_file() {
    let dir = TempDir::new();
    let file = dir.path().join("clock");
    std::fs::write(&file, "0\n").unwrap();
    let path = file.display().to_string();
    let key = internal_key();
    let err = load_with_env::<CommonSettings>(
        "",
        None,
        env(&[
            ("CCP_ENVIRONMENT", "production"),
            ("CCP_INTERNAL_AUTH__KEY", &key),
            ("CCP_REDIS__URL", "redis://127.0.0.1:6379"),
            ("CCP_CLOCK__MODE", "file"),
            ("CCP_CLOCK__FILE", &path),
        ]),
    )
    .unwrap_err();
    assert_eq!(err.key, "clock.mode", "{err}");
    assert!(err.to_string().contains("file clock"), "{err}");

    let missing = dir.path().join("absent").display().to_string();
    let garbled = dir.path().join("garbled");
    std::fs::write(&garbled, "tomorrow").unwrap();
    let garbled = garbled.display().to_string();
    for (vars, key) in [
        (vec![], "clock.file"),
        (vec![("CCP_CLOCK__FILE", missing.as_str())], "clock.file"),
        (vec![("CCP_CLOCK__FILE", garbled.as_str())], "clock.file"),
        (
            vec![
                ("CCP_CLOCK__FILE", path.as_str()),
                ("CCP_CLOCK__POLL_MS", "0"),
            ],
            "clock.poll_ms",
        ),
    ] {
        let mut all = vec![("CCP_ENVIRONMENT", "test"), ("CCP_CLOCK__MODE", "file")];
        all.extend(vars.iter().copied());
        let err = load_with_env::<CommonSettings>("", None, env(&all)).unwrap_err();
        assert_eq!(err.key, key, "{vars:?}: {err}");
    }

    let s = load_with_env::<CommonSettings>(
        "",
        None,
        env(&[
            ("CCP_ENVIRONMENT", "demo"),
            ("CCP_CLOCK__MODE", "file"),
            ("CCP_CLOCK__FILE", &path),
            ("CCP_CLOCK__POLL_MS", "20"),
        ]),
    )
    .unwrap();
    assert_eq!(s.clock.mode, ClockMode::File);
    assert_eq!(s.clock.poll_ms, 20);
    let clock = s.clock.build(s.environment).unwrap();
    assert!(clock.follows_file() && !clock.is_settable());
}

#[test]
fn production_with_a_key_and_redis_loads() {
    let key = internal_key();
    let s = load_with_env::<CommonSettings>(
        "",
        None,
        env(&[
            ("CCP_ENVIRONMENT", "production"),
            ("CCP_INTERNAL_AUTH__KEY", &key),
            ("CCP_REDIS__URL", "redis://127.0.0.1:6379"),
        ]),
    )
    .unwrap();
    assert_eq!(s.environment, Environment::Production);
    assert_eq!(
        s.internal_auth.key_bytes().unwrap().map(|k| k.len()),
        Some(32)
    );
}

#[test]
fn redis_cluster_takes_a_seed_list_and_a_list_without_the_flag_is_refused() {
    use ccp_platform::redis_link::RedisTarget;
    let seeds = "redis://10.0.0.1:6379, redis://10.0.0.2:6379,redis://10.0.0.3:6379";
    let s = load_with_env::<CommonSettings>(
        "",
        None,
        env(&[("CCP_REDIS__URL", seeds), ("CCP_REDIS__CLUSTER", "true")]),
    )
    .unwrap();
    assert_eq!(
        s.redis.target().unwrap(),
        Some(RedisTarget::Cluster(vec![
            "redis://10.0.0.1:6379".into(),
            "redis://10.0.0.2:6379".into(),
            "redis://10.0.0.3:6379".into(),
        ]))
    );
    let one = load_with_env::<CommonSettings>(
        "",
        None,
        env(&[("CCP_REDIS__URL", "redis://10.0.0.1:6379")]),
    )
    .unwrap();
    assert_eq!(
        one.redis.target().unwrap(),
        Some(RedisTarget::Server("redis://10.0.0.1:6379".into()))
    );

    for (vars, key) in [
        (vec![("CCP_REDIS__URL", seeds)], "redis.url"),
        (vec![("CCP_REDIS__CLUSTER", "true")], "redis.url"),
        (
            vec![
                ("CCP_REDIS__URL", "redis://10.0.0.1:6379,http://10.0.0.2"),
                ("CCP_REDIS__CLUSTER", "true"),
            ],
            "redis.url",
        ),
        (
            vec![
                ("CCP_REDIS__URL", "redis://10.0.0.1:6379"),
                ("CCP_REDIS__KEY_PREFIX", "ccp:{all}:"),
            ],
            "redis.key_prefix",
        ),
    ] {
        let err = load_with_env::<CommonSettings>("", None, env(&vars)).unwrap_err();
        assert_eq!(err.key, key, "{vars:?}: {err}");
    }
}
