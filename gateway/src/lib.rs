//! gateway: the public edge. WebSocket sessions and the REST facade; inbound
//! messages go onto the Redis ingress stream, deliveries come back over one
//! Redis pub/sub channel per gateway.

pub mod access_log;
pub mod api;
pub mod backpressure;
pub mod config;
pub mod history;
pub mod hub;
pub mod metrics;
pub mod outbox;
pub mod pubsub;
pub mod reads;
pub mod seen;
pub mod startup;
pub mod state;
pub mod ws;
