//! The message model and every format it travels in, for all the services:
//! names and ids (`ids`), the message and its edit and delete events, with
//! the rule that applies them (`message`), the protocol's server frames and
//! error codes (`protocol`), the internal JSON formats that cross Redis with
//! their versions (`message`: ingress entries, deliveries, archive
//! entries), their gRPC form (`convert`), the conversation list's preview
//! (`preview`), and the limits and paging rules every surface checks
//! (`limits`, `paging`).
//!
//! What belongs here: data and the pure rules on it, nothing that does I/O.
//! Anything that talks to Redis is `chat_redis`; anything a service binary
//! is made of (settings, telemetry, listeners, gRPC plumbing) is
//! `service_kit`.

pub mod convert;
pub mod ids;
pub mod limits;
pub mod message;
pub mod paging;
pub mod preview;
pub mod protocol;
pub mod time;
