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

    const HISTORY: &str = "proto/chat/history/v1/history.proto";
    const INTERNAL: &str = "proto/chat/history/internal/v1/internal.proto";
    const USER: &str = "proto/chat/user/v1/user.proto";
    // One descriptor set per listener's reflection: the public history port
    // advertises only the public file. The internal file imports it, so its
    // set holds both (the public module is generated twice, identically).
    for (files, descriptor) in [
        (&[HISTORY][..], "history_descriptor.bin"),
        (&[HISTORY, INTERNAL][..], "history_internal_descriptor.bin"),
        (&[USER][..], "user_descriptor.bin"),
    ] {
        for file in files {
            println!("cargo:rerun-if-changed={file}");
        }
        tonic_prost_build::configure()
            .file_descriptor_set_path(out.join(descriptor))
            .compile_protos(files, &["proto"])?;
    }
    Ok(())
}
