//! The chat-service binary: a worker of the ingress streams' consumer
//! groups. Everything is in the library; see `startup.rs`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::service::main::<chat_service::startup::Application>().await
}
