//! The user-service binary: users, rooms and memberships in PostgreSQL, and
//! the tokens users log in with. Everything is in the library; see
//! `startup.rs`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::service::main::<user_service::startup::Application>().await
}
