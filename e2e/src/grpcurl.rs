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

impl Output {
    /// Asserts the call succeeded and its output names every one of `wanted`.
    pub fn assert_mentions(&self, wanted: &[&str]) {
        assert!(self.success, "{}", self.stderr);
        for w in wanted {
            assert!(self.stdout.contains(w), "no {w:?} in:\n{}", self.stdout);
        }
    }
}
