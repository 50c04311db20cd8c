//! The history-service binary: message storage (offline queues and recent
//! windows in Redis, the archive in MongoDB) and the public gRPC history.
//! Everything is in the library; see `startup.rs`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::service::main::<history_service::startup::Application>().await
}
