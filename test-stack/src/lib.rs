//! The upstreams of chat-service and the gateway, started in-process on port 0
//! against a test's own storage, for those services' integration tests.

use service_kit::{
    config::{JwtSecretArg, ServiceTokenArg},
    telemetry::LogFormat,
};
use testkit::{JWT_SECRET, SERVICE_TOKEN, Storage};

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// Starts user-service on `storage`'s PostgreSQL database; returns its URL.
pub async fn user_service(storage: &Storage) -> String {
    let app = user_service::startup::Application::build(user_service::config::Config {
        database_url: storage.database_url(),
        redis: chat_redis::config::RedisArgs::new(testkit::redis_url(), testkit::redis_cluster()),
        redis_prefix: storage.redis_prefix.clone(),
        database_password_file: None,
        jwt: JwtSecretArg::inline(JWT_SECRET),
        service_token: ServiceTokenArg::inline(SERVICE_TOKEN),
        hash_concurrency: 2,
        hash_queue: 512,
        listen_addr: local(),
        ops_addr: local(),
        ready_file: None,
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

/// Starts history-service on `storage`'s Redis prefix and MongoDB database,
/// asking `user_url` about memberships; returns its internal URL (what the
/// gateway and chat-service call).
pub async fn history_service(storage: &Storage, user_url: &str) -> String {
    history_service_with(storage, user_url, 4 << 20).await
}

/// As [`history_service`], accepting gRPC messages of at most `max_message_bytes`.
pub async fn history_service_with(
    storage: &Storage,
    user_url: &str,
    max_message_bytes: usize,
) -> String {
    let app = history_service::startup::Application::build(history_service::config::Config {
        redis: chat_redis::config::RedisArgs::new(testkit::redis_url(), testkit::redis_cluster()),
        mongodb_uri: testkit::mongodb_uri(),
        mongodb_database: storage.mongodb_database.clone(),
        redis_prefix: storage.redis_prefix.clone(),
        listen_addr: local(),
        internal_addr: local(),
        jwt: JwtSecretArg::inline(JWT_SECRET),
        service_token: ServiceTokenArg::inline(SERVICE_TOKEN),
        operator_token: String::new(),
        operator_token_file: None,
        user_service_url: user_url.to_owned(),
        ops_addr: local(),
        ready_file: None,
        offline_limit: 100,
        offline_ttl_secs: 30 * 86_400,
        recent_limit: 500,
        archive_batch: 200,
        archive_partitions: 1,
        instance_id: format!("history-{}", storage.id),
        grpc_max_message_bytes: max_message_bytes,
        log_format: LogFormat::Pretty,
    })
    .await
    .expect("history-service starts");
    let url = format!("http://127.0.0.1:{}", app.internal_port());
    tokio::spawn(app.run_until(std::future::pending()));
    url
}
