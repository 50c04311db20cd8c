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
mod layout;
mod lookup;

pub use gateway::{GatewayPresence, Roster, Writer};
pub use layout::{DEFAULT_GATEWAY_TTL_MS, HEARTBEAT, TABLE_FIELD};
pub use lookup::{Lookup, Reach, Whereabouts};
