//! The `ccp-notifications` binary's command line: `--help`, `--version`, a usage error.

#[test]
fn the_binary_has_help_a_version_and_refuses_unknown_flags() {
    ccp_platform::testing::check_service_binary(
        env!("CARGO_BIN_EXE_ccp-notifications"),
        "ccp-notifications",
    );
}
