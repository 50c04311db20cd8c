//! `GET /ws`: authentication, origin and capacity checks before the upgrade.

pub mod writer;

use axum::{
    extract::{State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use futures::StreamExt;

use crate::{
    domain::Error,
    http::{
        error::{ApiError, ErrorBody},
        extract::{ApiQuery, ClientIp},
    },
    session::{
        self, Sessions,
        admit::{Credentials, admit},
        run::Transport,
    },
};

/// How a browser authenticates: `ticket` (one-time, from `POST /api/ws-ticket`)
/// keeps tokens out of URLs; `token` still works for old clients.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// An access token (prefer `Authorization: Bearer` or a ticket).
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
/// `?ticket=`. The first frames are `hello`, then `offline`. The socket
/// belongs to the token's session: before the token expires it gets a
/// `refresh` frame (answer with `auth`), and it is closed with 4001 when
/// the session is signed out, or 4002 when the token expires.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "service",
    params(WsQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade, or a bad query", body = ErrorBody),
        (status = 401, description = "Missing or bad token or ticket, or a signed-out session", body = ErrorBody),
        (status = 403, description = "Origin not allowed", body = ErrorBody),
        (status = 429, description = "Too many sockets for this user or address", body = ErrorBody),
        (status = 503, description = "At the connection limit, or shutting down", body = ErrorBody),
    )
)]
pub async fn upgrade(
    State(sessions): State<Sessions>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let credentials = Credentials::of(&headers, query.token, query.ticket);
    let not_upgrade = if sessions.settings.websocket {
        ws.as_ref().err().map(not_an_upgrade)
    } else {
        Some(Error::Forbidden(
            "WebSockets are turned off on this gateway (TRANSPORTS): use /api/stream".into(),
        ))
    };
    match admit(&sessions, &headers, ip, credentials, not_upgrade).await {
        Ok((identity, permit)) => match ws {
            Ok(ws) => ws
                .read_buffer_size(READ_BUFFER)
                .write_buffer_size(WRITE_BUFFER)
                // Frames over MAX_FRAME_BYTES get a `too_large` answer; four
                // times that closes the socket (1009) without buffering it.
                .max_message_size(sessions.settings.max_frame_bytes * 4)
                .max_frame_size(sessions.settings.max_frame_bytes * 4)
                .on_upgrade(move |socket| async move { spawn(socket, sessions, identity, permit) })
                .into_response(),
            Err(rejection) => ApiError(not_an_upgrade(&rejection)).into_response(),
        },
        Err(e) => ApiError(e).into_response(),
    }
}

fn not_an_upgrade(rejection: &WebSocketUpgradeRejection) -> Error {
    Error::Invalid(format!("expected a WebSocket upgrade: {rejection}"))
}

/// Starts one socket's session as a task of its own, and returns.
///
/// Why not run it in the upgrade task: an idle socket's memory is mostly its
/// tasks' futures, and a future keeps its arguments for its whole life. The
/// upgrade task's future holds axum's upgrade state and the unsplit socket
/// (2 KiB together); this one holds the split halves only.
fn spawn(
    socket: axum::extract::ws::WebSocket,
    ctx: Sessions,
    identity: crate::domain::tokens::Identity,
    permit: crate::delivery::caps::ConnPermit,
) {
    let (sink, stream) = socket.split();
    let outbox = session::run::outbox(&ctx);
    let writer = tokio::spawn(writer::write_loop(
        sink,
        outbox.clone(),
        ctx.shutdown.clone(),
        ctx.settings.heartbeat(),
    ));
    let transport = Transport {
        input: stream,
        writer,
        handshake: true,
    };
    tokio::spawn(session::run::run(transport, outbox, ctx, identity, permit));
}
