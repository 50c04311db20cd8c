//! Test support for the integration tests: fresh, isolated storage per test
//! (Redis prefix, PostgreSQL database, MongoDB database), waiting on a
//! condition with a deadline instead of sleeping, and small WebSocket and HTTP
//! clients. Real servers only; where they are is read from the environment
//! that `scripts/test` sets up.

pub mod config;
pub mod http_link;
pub mod layers;
pub mod link;
pub mod mongo_server;
pub mod otlp;
pub mod ports;
pub mod proxy;
pub mod recovery;
pub mod redis;
pub mod sse;
pub mod storage;
pub mod wait;
pub mod ws;

pub use http_link::StreamLink;
pub use link::{Link, Transport};
pub use ports::free_port;
pub use redis::{redis_cluster, redis_url};
pub use storage::{Storage, mongodb_uri};
pub use wait::{eventually, within};
pub use ws::WsClient;

/// The JWT secret tests share with the services they start.
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef";
/// A session id for tokens a test mints itself (never revoked).
pub const TEST_SESSION: &str = "0123456789abcdef0123456789abcdef";
/// The service token tests share with the services they start.
pub const SERVICE_TOKEN: &str = "test-service-token-0123456789abcdef";
