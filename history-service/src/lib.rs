//! history-service: owns message storage. Offline queues and the recent window
//! of each conversation live in Redis; every message is archived to MongoDB in
//! batches, at least once. Serves the public `chat.history.v1` gRPC API.

pub mod archive;
mod archive_status;
pub mod auth;
pub mod config;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod mongo;
pub mod query;
mod servers;
pub mod startup;
pub mod store;
