//! The gateway binary: the public edge (WebSocket, HTTP API, web client).
//! Everything is in the library; see `startup.rs`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::service::main::<gateway::startup::Application>().await
}
