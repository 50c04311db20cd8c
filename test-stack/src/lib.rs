//! The upstreams of chat-service and the gateway, started in-process on port 0
//! against a test's own storage, for those services' integration tests.
//! Their configurations are parsed as production parses them
//! (`testkit::config`): only what a test needs differs from the defaults.

use testkit::{
    Storage,
    config::{Setting, base_with_jwt, parse, settings},
};

/// Starts user-service on `storage`'s PostgreSQL database; returns its URL.
pub async fn user_service(storage: &Storage) -> String {
    user_service_with(storage, &[]).await
}

/// As [`user_service`], with `more` settings (TOKEN_TTL_SECS…).
pub async fn user_service_with(storage: &Storage, more: &[Setting]) -> String {
    let mut s = base_with_jwt(storage);
    s.extend(settings(&[
        ("DATABASE_URL", storage.database_url()),
        // Tests outlast the 15-minute default token on a loaded machine.
        ("TOKEN_TTL_SECS", "3600".into()),
        ("DB_MAX_CONNECTIONS", "5".into()),
    ]));
    s.extend(more.iter().cloned());
    let app = user_service::startup::Application::build(parse("user-service", &s))
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
    history_service_with(storage, user_url, &[]).await
}

/// As [`history_service`], with `more` settings (GRPC_MAX_MESSAGE_BYTES…).
pub async fn history_service_with(storage: &Storage, user_url: &str, more: &[Setting]) -> String {
    let mut s = base_with_jwt(storage);
    s.extend(settings(&[
        ("MONGODB_URI", testkit::mongodb_uri()),
        ("MONGODB_DATABASE", storage.mongodb_database.clone()),
        ("INTERNAL_ADDR", "127.0.0.1:0".into()),
        ("USER_SERVICE_URL", user_url.to_owned()),
        ("ARCHIVE_BATCH", "200".into()),
        ("INSTANCE_ID", format!("history-{}", storage.id)),
    ]));
    s.extend(more.iter().cloned());
    let app = history_service::startup::Application::build(parse("history-service", &s))
        .await
        .expect("history-service starts");
    let url = format!("http://127.0.0.1:{}", app.internal_port());
    tokio::spawn(app.run_until(std::future::pending()));
    url
}
