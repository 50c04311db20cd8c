//! Phase hooks: with LOADGEN_PHASE_HOOK set, the command runs (through
//! `sh -c`) with `start` once every client is set up and about to send, and
//! with `end <messages>` when the step is over, so a cost report measures
//! the load alone, not the registrations and connects before it
//! (scripts/bench: scripts/lib/cost-report).

use std::process::Command;

pub fn phase(args: &str) {
    let Ok(hook) = std::env::var("LOADGEN_PHASE_HOOK") else {
        return;
    };
    match Command::new("sh")
        .arg("-c")
        .arg(format!("{hook} {args}"))
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("LOADGEN_PHASE_HOOK {args}: {status}"),
        Err(e) => eprintln!("LOADGEN_PHASE_HOOK {args}: {e}"),
    }
}
