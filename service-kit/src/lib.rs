//! What every service binary is made of: settings from flags and the
//! environment, validated at start with one line and exit 2 for a bad one
//! (`config`), the startup skeleton with its listeners, ready file and
//! startup error (`service`), logs, metrics and spans (`telemetry`,
//! `metrics_catalog`, `trace`), the ops endpoints (`ops`), shutdown on a
//! signal (`shutdown`), retry backoff (`backoff`), secrets that never
//! print (`secret`), and gRPC plumbing:
//! lazily connected channels, the service token and callers, reflection
//! (`grpc`, `auth`), with the user tokens user-service signs (`jwt`).
//!
//! What belongs here: what a service needs to start, be observed and stop,
//! whatever it does. The message model is `chat_model`; Redis is
//! `chat_redis`.

pub mod auth;
pub mod backoff;
pub mod config;
pub mod error;
pub mod grpc;
pub mod jwt;
pub mod metrics_catalog;
pub mod ops;
pub mod ready;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod trace;
