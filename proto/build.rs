//! Compiles the v1 contracts into OUT_DIR with a descriptor set for reflection.
//!
//! protoc comes from `protoc-bin-vendored` unless `PROTOC` names another, so a
//! clean checkout builds without a system protoc.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "ccp/common/v1/common.proto",
    "ccp/identity/v1/identity.proto",
    "ccp/identity/v1/identity_internal.proto",
    "ccp/accounts/v1/accounts.proto",
    "ccp/accounts/v1/accounts_internal.proto",
    "ccp/delegation/v1/delegation.proto",
    "ccp/delegation/v1/delegation_internal.proto",
    "ccp/gateway/v1/gateway.proto",
    "ccp/notifications/v1/notifications.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Rather than mutate the environment (unsafe in edition 2024), the
    // vendored protoc is handed to prost-build directly.
    let protoc = match std::env::var_os("PROTOC") {
        Some(_) => None,
        None => Some(protoc_bin_vendored::protoc_bin_path()?),
    };
    compile(protoc)
}

fn compile(protoc: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    // `prost::Name` on every message: clients print any message as proto JSON by its full name.
    config.enable_type_names();
    if let Some(protoc) = protoc {
        config.protoc_executable(protoc);
    }
    tonic_prost_build::configure()
        .build_client(std::env::var_os("CARGO_FEATURE_CLIENT").is_some())
        .build_server(std::env::var_os("CARGO_FEATURE_SERVER").is_some())
        .generate_default_stubs(true)
        .file_descriptor_set_path(out_dir.join("ccp_descriptor.bin"))
        .compile_with_config(config, PROTOS, &["."])?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
