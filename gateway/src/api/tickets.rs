//! One-time WebSocket tickets. A browser cannot set headers on a WebSocket, so
//! it would put its 24-hour token in the URL, where proxies and access logs
//! keep it. Instead it trades the token (in a header) for a ticket that opens
//! one socket, on any gateway, within 30 seconds, and is then gone.

use std::fmt::Write;

use axum::{Json, extract::State};

use super::{
    error::ApiError,
    extract::AuthUser,
    schema::{ErrorBody, Ticket},
};
use crate::state::AppState;

/// How long a ticket stays valid.
pub const TICKET_TTL_SECS: u64 = 30;
/// A ticket is 32 random bytes in hex.
const TICKET_LEN: usize = 64;

/// A one-time WebSocket ticket for the caller.
///
/// Open `GET /ws?ticket=<ticket>` on any gateway within `expires_in`
/// seconds; the ticket then is gone. Keeps the long-lived token out of URLs.
#[utoipa::path(
    post,
    path = "/api/ws-ticket",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket", body = Ticket),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn issue(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Ticket>, ApiError> {
    super::limits::tickets(&state, &user).await?;
    let ticket =
        rand::random::<[u8; 32]>()
            .iter()
            .fold(String::with_capacity(TICKET_LEN), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
    let mut redis = state.redis.clone();
    let () = redis::cmd("SET")
        .arg(state.keys.ws_ticket(&ticket))
        .arg(&user)
        .arg("EX")
        .arg(TICKET_TTL_SECS)
        .query_async(&mut redis)
        .await?;
    Ok(Json(Ticket {
        ticket,
        expires_in: TICKET_TTL_SECS,
    }))
}

fn refused() -> ApiError {
    ApiError::Unauthorized("invalid, expired or used ticket".into())
}

/// The user a ticket admits, without spending it: the upgrade's other
/// checks come first, and a refused upgrade leaves the ticket usable.
pub async fn peek(state: &AppState, ticket: &str) -> Result<String, ApiError> {
    if ticket.len() != TICKET_LEN || !ticket.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused());
    }
    let mut redis = state.redis.clone();
    let user: Option<String> = redis::cmd("GET")
        .arg(state.keys.ws_ticket(ticket))
        .query_async(&mut redis)
        .await?;
    user.ok_or_else(refused)
}

/// Spends a ticket for the upgrade that passed every check: once, for the
/// user [`peek`] found (a racing upgrade with the same ticket gets 401).
pub async fn redeem(state: &AppState, ticket: &str, user: &str) -> Result<(), ApiError> {
    let mut redis = state.redis.clone();
    let spent: Option<String> = redis::cmd("GETDEL")
        .arg(state.keys.ws_ticket(ticket))
        .query_async(&mut redis)
        .await?;
    match spent {
        Some(u) if u == user => Ok(()),
        _ => Err(refused()),
    }
}
