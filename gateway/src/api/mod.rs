//! The REST facade (docs/protocol.md, HTTP API), over user-service and
//! history-service.

pub mod access;
pub mod accounts;
pub mod conversations;
pub mod error;
pub mod extract;
pub mod limits;
pub mod rooms;
pub mod tickets;

use axum::{
    Router,
    routing::{get, post},
};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/register", post(accounts::register))
        .route("/api/login", post(accounts::login))
        .route("/api/me", get(accounts::me))
        .route("/api/ws-ticket", post(tickets::issue))
        .route("/api/rooms", get(rooms::list).post(rooms::create))
        .route("/api/rooms/{name}/join", post(rooms::join))
        .route("/api/rooms/{name}/leave", post(rooms::leave))
        .route("/api/rooms/{name}/members", get(rooms::members))
        .route("/api/conversations", get(conversations::list))
        .route(
            "/api/conversations/{id}/messages",
            get(conversations::messages),
        )
}
