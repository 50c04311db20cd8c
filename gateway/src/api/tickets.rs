//! `POST /api/ws-ticket`: a one-time WebSocket ticket
//! (`crate::domain::tickets` says why).

use axum::{Json, extract::State};

use super::schema::{ErrorBody, Ticket};
use crate::{
    domain::tickets::{TICKET_TTL_SECS, Tickets},
    http::{error::ApiError, extract::Authed},
};

/// A one-time WebSocket ticket for the caller.
///
/// Open `GET /ws?ticket=<ticket>` on any gateway within `expires_in`
/// seconds; the ticket then is gone. Keeps the token out of URLs. The
/// socket belongs to the token's session: it is closed when the session is
/// signed out, and asked for a fresh token before this token expires.
#[utoipa::path(
    post,
    path = "/api/ws-ticket",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket", body = Ticket),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 429, description = "Too many tickets minted (TICKETS_PER_USER)", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn issue(
    State(tickets): State<Tickets>,
    Authed(me): Authed,
) -> Result<Json<Ticket>, ApiError> {
    Ok(Json(Ticket {
        ticket: tickets.issue(&me).await?,
        expires_in: TICKET_TTL_SECS,
    }))
}
