//! Presence: which users have a socket on which live gateway. One module
//! owns the layout, both sides use it: gateways write ([`GatewayPresence`]),
//! chat-service and the gateways' REST view read ([`Lookup`]).
//!
//! Layout (under the deployment's `REDIS_PREFIX`):
//! - `gateways`: a sorted set of gateway id → time of its last heartbeat
//!   (every [`HEARTBEAT`]);
//! - `gw:<id>:users`: a hash of username → that user's socket count on the
//!   gateway, plus [`TABLE_FIELD`].
//!
//! A gateway whose heartbeat is older than `GATEWAY_TTL_MS` (default
//! [`DEFAULT_GATEWAY_TTL_MS`]) is dead and its users count as offline, so the
//! users of a crashed gateway fall offline within that bound.

mod gateway;
mod lookup;

use std::time::Duration;

pub use gateway::{GatewayPresence, Roster, Writer};
pub use lookup::{Lookup, Online, Reach};

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
const TABLE_VALUE: &str = "keeps this hash a hash table: as a listpack, HMGET of k names over n entries costs k*n comparisons";
