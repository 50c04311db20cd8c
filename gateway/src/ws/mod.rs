//! `GET /ws`: authentication, origin and capacity checks before the upgrade.

pub mod close;
pub mod inbound;
pub mod ratelimit;
pub mod session;

use axum::{
    extract::{State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use crate::{
    api::{
        error::ApiError,
        extract::{ApiQuery, verify},
    },
    state::AppState,
};

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

/// Small WebSocket buffers keep an idle socket cheap: tungstenite allocates
/// its whole read buffer on the first read (128 KiB by default). Chat frames
/// are small; larger ones are read in several chunks.
const READ_BUFFER: usize = 1024;
const WRITE_BUFFER: usize = 4 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match admit(&state, &headers, query) {
        Ok(user) => match ws {
            Ok(ws) => ws
                .read_buffer_size(READ_BUFFER)
                .write_buffer_size(WRITE_BUFFER)
                // Frames over MAX_FRAME_BYTES get a `too_large` answer; four
                // times that closes the socket (1009) without buffering it.
                .max_message_size(state.config.max_frame_bytes * 4)
                .max_frame_size(state.config.max_frame_bytes * 4)
                .on_upgrade(move |socket| session::run(socket, state, user))
                .into_response(),
            Err(rejection) => {
                ApiError::BadRequest(format!("expected a WebSocket upgrade: {rejection}"))
                    .into_response()
            }
        },
        Err(e) => e.into_response(),
    }
}

fn admit(state: &AppState, headers: &HeaderMap, query: WsQuery) -> Result<String, ApiError> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = from_header
        .or(query.token.as_deref())
        .ok_or_else(|| ApiError::Unauthorized("missing token".into()))?;
    let user = verify(state, token)?;
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
    Ok(user)
}
