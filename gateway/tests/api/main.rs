//! The gateway with real upstreams (user-service, history-service and
//! chat-service started in-process on port 0), real Redis, PostgreSQL and
//! MongoDB-wire storage, driven over real HTTP and WebSocket connections.

mod account_lifecycle;
mod appender;
mod blocks;
mod conversations;
mod deliveries;
mod edits;
mod helpers;
mod http_accounts;
mod http_links;
mod http_login_limits;
mod http_moderation;
mod http_rooms;
mod layers;
mod member_events;
mod numbers;
mod openapi;
mod polls;
mod presence;
mod races;
mod refs;
mod sessions;
mod streams;
mod ws_admission;
mod ws_auth;
mod ws_limits;
mod ws_membership;
mod ws_messaging;
mod ws_protocol;
