//! One-time WebSocket tickets. A browser cannot set headers on a WebSocket, so
//! it would put its 24-hour token in the URL, where proxies and access logs
//! keep it. Instead it trades the token (in a header) for a ticket that opens
//! one socket, on any gateway, within 30 seconds, and is then gone.

use std::fmt::Write;

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::{error::ApiError, extract::AuthUser};
use crate::state::AppState;

/// How long a ticket stays valid.
pub const TICKET_TTL_SECS: u64 = 30;
/// A ticket is 32 random bytes in hex.
const TICKET_LEN: usize = 64;

/// `POST /api/ws-ticket`: a ticket for the caller.
pub async fn issue(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"ticket": ticket, "expires_in": TICKET_TTL_SECS}),
    ))
}

/// Spends a ticket: the user it admits, once.
pub async fn redeem(state: &AppState, ticket: &str) -> Result<String, ApiError> {
    let refused = || ApiError::Unauthorized("invalid, expired or used ticket".into());
    if ticket.len() != TICKET_LEN || !ticket.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused());
    }
    let mut redis = state.redis.clone();
    let user: Option<String> = redis::cmd("GETDEL")
        .arg(state.keys.ws_ticket(ticket))
        .query_async(&mut redis)
        .await?;
    user.ok_or_else(refused)
}
