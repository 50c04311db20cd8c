//! gateway: the public edge. WebSocket sessions and the REST facade; inbound
//! messages go onto the Redis ingress stream, deliveries come back over one
//! Redis pub/sub channel per gateway.
//!
//! Built in floors; each imports only the floors below it:
//! - `domain/`: what the gateway does for a user (access, accounts, rooms,
//!   conversations, history, read markers, tickets, limits, the offline
//!   queue), knowing nothing of axum, HTTP or WebSocket frames;
//! - `ingress/`: sends in, onto the ingress streams, with backpressure;
//! - `delivery/`: frames out, from the pub/sub subscription to each
//!   session's outbox;
//! - `http/`: what every HTTP route shares (errors, extractors, access log);
//! - `session/`: one client's session (admission, frames, its token),
//!   whatever transport carries it;
//! - `api/` (REST), `ws/` (WebSocket) and `stream/` (server-sent events with
//!   POSTed frames), the transports, side by side: none imports another;
//! - `routes`, `state` and `startup` put them together.
//!
//! gateway/tests/api/layers.rs checks that no module imports one that
//! imports it back, and that the domain stays free of transports.

pub mod api;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod http;
pub mod ingress;
pub mod metrics;
pub mod routes;
pub mod session;
pub mod startup;
pub mod state;
pub mod stream;
pub mod ws;
