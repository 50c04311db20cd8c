//! Runs the real service binaries as processes on free ports, each with its own
//! log file, so end-to-end tests exercise exactly what operators run.

pub mod grpcurl;
pub mod process;
pub mod stack;

pub use process::{Service, bin_path};
pub use stack::{Stack, StackOptions};
