//! Messages that name what is wrong, from the built `ccp`: a business number
//! whose check digit is wrong is refused as such before any call; a
//! misspelt `CCP_…` variable names the closest key; an unknown environment
//! names the key `environment`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// Runs `ccp <args>` with `env` and no suite to find; returns (code, stderr).
fn ccp(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ccp"))
        .args(args)
        .current_dir(dir.path())
        .env("CCP_STATE_DIR", dir.path().join("state"))
        .env("CCP_SESSION", dir.path().join("session.json"))
        .env("CCP_GATEWAY_URL", "http://127.0.0.1:1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_business_number_with_a_wrong_check_digit_says_so() {
    let (code, err) = ccp(&["business", "show", "999999999"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("check digit"), "{err}");
    let (code, err) = ccp(&["business", "show", "12345"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("9 digits"), "{err}");
    // A well-formed number passes; then the session is what is missing.
    let (code, err) = ccp(&["business", "show", "123456782"], &[]);
    assert_eq!(code, 4, "{err}");
}

#[test]
fn a_gateway_that_is_not_there_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token.jwt");
    std::fs::write(&token, "a.b.c\n").unwrap();
    let (code, err) = ccp(&["login", "--id-token-file", token.to_str().unwrap()], &[]);
    assert_eq!(code, 8, "{err}");
    assert!(
        err.contains("cannot reach the gateway at http://127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn a_misspelt_ccp_variable_names_the_closest_key() {
    let (code, err) = ccp(
        &["business", "list"],
        &[("CCP_GATEWAY__SERVER__LISTN", "127.0.0.1:0")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CCP_GATEWAY__SERVER__LISTN"), "{err}");
    assert!(err.contains("CCP_GATEWAY__SERVER__LISTEN"), "{err}");
    let (code, err) = ccp(&["up"], &[("CCP_ENVIRONMNT", "test")]);
    assert_ne!(code, 0);
    assert!(err.contains("CCP_ENVIRONMENT"), "{err}");
}

#[test]
fn an_unknown_environment_names_the_key_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ccp.toml");
    std::fs::write(&file, "environment = \"prod\"\n").unwrap();
    let (code, err) = ccp(
        &["--config", file.to_str().unwrap(), "business", "list"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`environment`"), "{err}");
    let (code, err) = ccp(&["up"], &[("CCP_ENVIRONMENT", "prod")]);
    assert_ne!(code, 0);
    assert!(err.contains("`environment` (env CCP_ENVIRONMENT)"), "{err}");
}
