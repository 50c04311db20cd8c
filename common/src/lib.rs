//! Pieces every service of the chat system shares, and nothing else: startup
//! configuration helpers, telemetry, the shutdown signal, the ops endpoints
//! (`/healthz`, `/readyz`, `/metrics`), the message model and names, Redis key
//! names, and the JWT format the user-service issues and gateways verify.

pub mod auth;
pub mod backoff;
pub mod config;
pub mod consumer;
pub mod convert;
pub mod grpc;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod limits;
pub mod metrics_catalog;
pub mod model;
pub mod ops;
pub mod paging;
pub mod presence;
pub mod protocol;
pub mod publish;
pub mod read;
pub mod ready;
pub mod redis_conn;
pub mod shutdown;
pub mod summary;
pub mod telemetry;
pub mod time;
pub mod trace;
