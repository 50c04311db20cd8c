//! Generates the gRPC code with a vendored protoc, so no system protoc is needed,
//! and writes one file descriptor set per package for server reflection.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // `set_var` is unsafe in edition 2024 because other threads may read the
    // environment; a build script runs on one thread.
    #[allow(unsafe_code)]
    unsafe {
        env::set_var("PROTOC", protoc);
    }
    let out = PathBuf::from(env::var("OUT_DIR")?);

    for (file, descriptor) in [
        (
            "proto/chat/history/v1/history.proto",
            "history_descriptor.bin",
        ),
        ("proto/chat/user/v1/user.proto", "user_descriptor.bin"),
    ] {
        println!("cargo:rerun-if-changed={file}");
        tonic_prost_build::configure()
            .file_descriptor_set_path(out.join(descriptor))
            .compile_protos(&[file], &["proto"])?;
    }
    Ok(())
}
