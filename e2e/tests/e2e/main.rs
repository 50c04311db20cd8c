//! End-to-end: the real binaries (2 gateways, 2 chat-service workers,
//! history-service, user-service) on free ports with fresh storage, driven by
//! real WebSocket clients, HTTP, and the real grpcurl binary.

mod abuse;
mod browser;
mod chat_client;
mod config;
mod delivery_loss;
mod deploy;
mod helpers;
mod k8s;
mod layers;
mod metrics;
mod moderation;
mod nginx;
mod openapi;
mod path;
mod resilience;
mod security;
mod servers;
mod shutdown;
mod tracing;
mod transports;
