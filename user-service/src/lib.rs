//! user-service: users, rooms, memberships and sessions in PostgreSQL, behind
//! an internal gRPC API; issues the access tokens that gateways verify and
//! announces revoked sessions.

pub mod account_store;
pub mod accounts;
pub mod block_store;
pub mod blocks;
pub mod config;
pub mod error;
pub mod event_relay;
pub mod events;
pub mod grpc;
pub mod invite_store;
pub mod link_store;
pub mod links;
pub mod metrics;
pub mod moderation_store;
pub mod outbox;
pub mod password;
pub mod permissions;
pub mod room_admin;
pub mod secrets;
pub mod session_store;
pub mod sessions;
pub mod startup;
pub mod store;
