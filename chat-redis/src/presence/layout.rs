//! The constants of the presence layout (the module doc of `presence`
//! draws it), shared by the writer and the lookups.

use std::time::Duration;

/// Heartbeat period; well inside the liveness window.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How stale a heartbeat may be before its gateway counts as dead.
pub const DEFAULT_GATEWAY_TTL_MS: u64 = 15_000;

/// A field no username can be (names are `[a-z0-9_]`), with a value longer
/// than `hash-max-listpack-value` (64 bytes by default), so Redis keeps the
/// user hash as a real hash table. As a listpack (up to 128 or 512 entries,
/// by config) every field of chat-service's HMGET is a linear scan: a
/// 500-member room over a 250-user gateway cost 210 µs of Redis per lookup.
pub const TABLE_FIELD: &str = "!table";
pub(super) const TABLE_VALUE: &str = "keeps this hash a hash table: as a listpack, HMGET of k names over n entries costs k*n comparisons";
