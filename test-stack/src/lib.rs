//! The upstreams of chat-service and the gateway, started in-process on port 0
//! against a test's own storage, for those services' integration tests.

use common::telemetry::LogFormat;
use testkit::{JWT_SECRET, Storage};

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// Starts user-service on `storage`'s PostgreSQL database; returns its URL.
pub async fn user_service(storage: &Storage) -> String {
    let app = user_service::startup::Application::build(user_service::config::Config {
        database_url: storage.database_url(),
        redis_url: testkit::redis_url(),
        redis_prefix: storage.redis_prefix.clone(),
        jwt_secret: JWT_SECRET.into(),
        listen_addr: local(),
        ops_addr: local(),
        token_ttl_secs: 3600,
        db_max_connections: 5,
        log_format: LogFormat::Pretty,
    })
    .await
    .expect("user-service starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    url
}

/// Starts history-service on `storage`'s Redis prefix and MongoDB database;
/// returns its URL.
pub async fn history_service(storage: &Storage) -> String {
    let app = history_service::startup::Application::build(history_service::config::Config {
        redis_url: testkit::redis_url(),
        mongodb_uri: testkit::mongodb_uri(),
        mongodb_database: storage.mongodb_database.clone(),
        redis_prefix: storage.redis_prefix.clone(),
        listen_addr: local(),
        ops_addr: local(),
        offline_limit: 100,
        recent_limit: 500,
        archive_batch: 200,
        instance_id: format!("history-{}", storage.id),
        log_format: LogFormat::Pretty,
    })
    .await
    .expect("history-service starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    url
}
