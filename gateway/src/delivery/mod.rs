//! The delivery floor: frames out to this gateway's sessions, whatever
//! their transport. The delivery subscription (`pubsub.rs`) hands each
//! delivery to the hub (`hub.rs`), which offers its frames to the sessions'
//! bounded outboxes (`outbox.rs`) without ever waiting; each outbox hands a
//! message once (`seen.rs`). The revocations subscription closes signed-out
//! sessions' sockets (`revocations.rs`). `caps.rs` counts sessions per user
//! and address.

pub mod caps;
pub mod hub;
pub mod outbox;
pub mod pubsub;
pub mod revocations;
pub mod seen;
