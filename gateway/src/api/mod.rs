//! The REST API (docs/protocol.md, HTTP API): a facade over the domain
//! floor, one module per resource, plus the web client and `/healthz`.
//! Each handler takes the domain handle it calls (`State<Rooms>`), never
//! the whole state; `crate::routes` registers them.

pub mod accounts;
pub mod blocks;
pub mod conversations;
pub mod invites;
pub mod links;
pub mod moderation;
pub mod rooms;
pub mod schema;
pub mod sessions;
pub mod site;
pub mod tickets;
