//! Ports for servers that must be restarted on the same address.

use std::net::TcpListener;

/// Below Linux's default ephemeral range (32768–60999), so the outgoing
/// connections of tests running in parallel never take a port picked here;
/// picks between tests are random and checked by binding.
const RANGE: std::ops::Range<u16> = 20_000..32_000;

/// A port that is free now and outside the ephemeral range. Prefer port 0
/// and reading the bound address back; use this only where a server has to
/// come back on the same port after a restart.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let seed = uuid::Uuid::new_v4().as_u128();
        let port = RANGE.start + (seed % u128::from(RANGE.end - RANGE.start)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {RANGE:?}");
}
