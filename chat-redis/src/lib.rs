//! Everything the services keep in Redis, and how they reach it: the
//! connection to one node or a cluster (`connection`: pipelines split per
//! slot, scripts, timeouts), every key name (`keys`), the consumer-group
//! runtime both streams run on (`consumer`), presence (`presence`), the
//! numbered publish to gateways (`publish`), the conversation list's
//! summaries (`summary`) and read markers (`read`), revoked sessions
//! (`sessions`), and the settings that
//! say where Redis is (`config`).
//!
//! What belongs here: the layout of Redis and the code that reads and
//! writes it for more than one service. A Lua script lives beside the code
//! that calls it; every script's key set is one cluster slot (its test is
//! `tests/api/slots.rs`).

pub mod config;
pub mod connection;
pub mod consumer;
pub mod keys;
pub mod presence;
pub mod publish;
pub mod read;
pub mod sessions;
pub mod summary;
