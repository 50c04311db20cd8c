//! The real grpcurl binary (GRPCURL, or `grpcurl` on PATH).

use std::process::Command;

pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn grpcurl(args: &[&str]) -> Output {
    let bin = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    let out = Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run grpcurl ({bin}): {e}; scripts/test installs it"));
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
