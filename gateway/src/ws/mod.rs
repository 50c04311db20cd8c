//! `GET /ws`: authentication, origin and capacity checks before the upgrade.

pub mod appender;
pub mod caps;
pub mod close;
pub mod inbound;
pub mod ingress;
pub mod offline;
pub mod ratelimit;
pub mod session;
pub mod writer;

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use self::caps::{CapExceeded, ConnPermit};
use crate::{
    api::{
        error::ApiError,
        extract::{ApiQuery, verify},
        limits::client_ip,
        tickets,
    },
    state::AppState,
};

/// How a browser authenticates: `ticket` (one-time, from `POST /api/ws-ticket`)
/// keeps long-lived tokens out of URLs; `token` still works for old clients.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// A session token (prefer `Authorization: Bearer` or a ticket).
    token: Option<String>,
    /// A one-time ticket from `POST /api/ws-ticket`.
    ticket: Option<String>,
}

/// Small WebSocket buffers keep an idle socket cheap: tungstenite allocates
/// and zero-fills its whole read buffer on the first read (128 KiB by
/// default), and an idle socket keeps it. 256 bytes hold a typical `send`;
/// a longer frame grows the buffer to its size and is read 256 bytes per
/// call (measured: 1 KiB here cost 0.75 KiB more per idle socket).
const READ_BUFFER: usize = 256;
const WRITE_BUFFER: usize = 4 * 1024;

/// Open a WebSocket session (docs/protocol.md: frames, codes, limits).
///
/// Authenticate with `Authorization: Bearer <token>`, or in a browser with
/// `?ticket=`. The first frames are `hello`, then `offline`.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "service",
    params(WsQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade, or a bad query", body = crate::api::schema::ErrorBody),
        (status = 401, description = "Missing or bad token or ticket", body = crate::api::schema::ErrorBody),
        (status = 403, description = "Origin not allowed", body = crate::api::schema::ErrorBody),
        (status = 429, description = "Too many sockets for this user or address", body = crate::api::schema::ErrorBody),
        (status = 503, description = "At the connection limit, or shutting down", body = crate::api::schema::ErrorBody),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match admit(&state, &headers, peer, query, ws.as_ref().err()).await {
        Ok((user, permit)) => match ws {
            Ok(ws) => ws
                .read_buffer_size(READ_BUFFER)
                .write_buffer_size(WRITE_BUFFER)
                // Frames over MAX_FRAME_BYTES get a `too_large` answer; four
                // times that closes the socket (1009) without buffering it.
                .max_message_size(state.config.max_frame_bytes * 4)
                .max_frame_size(state.config.max_frame_bytes * 4)
                .on_upgrade(
                    move |socket| async move { session::spawn(socket, state, user, permit) },
                )
                .into_response(),
            Err(rejection) => {
                ApiError::BadRequest(format!("expected a WebSocket upgrade: {rejection}"))
                    .into_response()
            }
        },
        Err(e) => e.into_response(),
    }
}

/// Every check before the upgrade, in the documented order; a ticket is
/// spent only once all of them passed, so a refused upgrade never burns it.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    query: WsQuery,
    not_an_upgrade: Option<&WebSocketUpgradeRejection>,
) -> Result<(String, ConnPermit), ApiError> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let (user, ticket) = match (from_header.or(query.token.as_deref()), &query.ticket) {
        (Some(token), _) => (verify(state, token)?, None),
        (None, Some(ticket)) => (tickets::peek(state, ticket).await?, Some(ticket)),
        (None, None) => return Err(ApiError::Unauthorized("missing token or ticket".into())),
    };
    let origins = state.config.origins();
    if !origins.is_empty()
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
        if !origins.iter().any(|o| o == origin) {
            return Err(ApiError::Forbidden(format!(
                "origin {origin} is not allowed"
            )));
        }
    }
    if state.shutdown.is_triggered() {
        return Err(ApiError::Unavailable("gateway is shutting down".into()));
    }
    if state.hub.connections() >= state.config.max_connections {
        metrics::counter!("gateway_rejected_connections_total").increment(1);
        return Err(ApiError::Unavailable(
            "gateway is at its connection limit".into(),
        ));
    }
    let ip = client_ip(state, headers, peer);
    let permit = state.caps.acquire(&user, ip).map_err(|cap| {
        metrics::counter!("gateway_rejected_connections_total").increment(1);
        let message = match cap {
            CapExceeded::User => "too many open sockets for this user",
            CapExceeded::Ip => "too many open sockets from this address",
        };
        ApiError::RateLimited {
            message: message.into(),
            retry_after_secs: 5,
        }
    })?;
    if let Some(rejection) = not_an_upgrade {
        return Err(ApiError::BadRequest(format!(
            "expected a WebSocket upgrade: {rejection}"
        )));
    }
    if let Some(ticket) = ticket {
        tickets::redeem(state, ticket, &user).await?;
    }
    Ok((user, permit))
}
