//! user-service: users, rooms and memberships in PostgreSQL, behind an internal
//! gRPC API; issues the JWTs that gateways verify.

pub mod config;
pub mod error;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod password;
pub mod startup;
pub mod store;
