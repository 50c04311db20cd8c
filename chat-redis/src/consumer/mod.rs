//! One consumer-group runtime for every Redis stream the system works: the
//! chat-service's ingress and the history-service's archive backlog.
//!
//! A [`Group`] names the stream, the group and this consumer, and builds the
//! pipeline commands a handler finishes entries with (acknowledge and delete,
//! dead-letter). A [`Consumer`] owns the blocking connection and does the
//! reads: its own pending entries first (a restart finishes its work), then
//! new ones, and now and then it claims entries a dead consumer left pending.
//! [`run`] is the loop around a [`Handler`]; see `runtime.rs`.
//!
//! A handler finishes its entries (acknowledges, deletes, dead-letters) in
//! [`Consumer::finish`], a pipeline sent ahead of the consumer's next read or
//! claim on the same connection: the acknowledgement of one batch and the
//! read of the next cost one round trip, not two. Nothing is acknowledged
//! any earlier or later than before in Redis's order of events: the finish
//! goes out as soon as the handler returns, it only no longer waits alone.

mod group;
mod runtime;

pub use group::{Consumer, Group};
pub use runtime::{Handler, run};
