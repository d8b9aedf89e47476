//! The `ccp-identity` binary's command line: help, version and usage errors,
//! never a server started by `--help`.

#[test]
fn ccp_identity_help_and_version_answer_without_serving() {
    ccp_platform::testing::check_service_binary(env!("CARGO_BIN_EXE_ccp-identity"), "ccp-identity");
}
