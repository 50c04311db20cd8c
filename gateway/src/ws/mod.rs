//! `GET /ws`: authentication, origin and capacity checks before the upgrade.

pub mod close;
pub mod context;
pub mod error;
pub mod inbound;
pub mod session;
pub mod writer;

use std::net::IpAddr;

use axum::{
    extract::{State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

pub use self::context::Sessions;
use crate::{
    delivery::caps::{CapExceeded, ConnPermit},
    domain::{Error, tokens::Identity},
    http::{
        error::{ApiError, ErrorBody},
        extract::{ApiQuery, ClientIp, bearer},
    },
};

/// How a browser authenticates: `ticket` (one-time, from `POST /api/ws-ticket`)
/// keeps tokens out of URLs; `token` still works for old clients.
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
    match admit(&sessions, &headers, ip, query, ws.as_ref().err()).await {
        Ok((identity, permit)) => match ws {
            Ok(ws) => ws
                .read_buffer_size(READ_BUFFER)
                .write_buffer_size(WRITE_BUFFER)
                // Frames over MAX_FRAME_BYTES get a `too_large` answer; four
                // times that closes the socket (1009) without buffering it.
                .max_message_size(sessions.settings.max_frame_bytes * 4)
                .max_frame_size(sessions.settings.max_frame_bytes * 4)
                .on_upgrade(move |socket| async move {
                    session::spawn(socket, sessions, identity, permit)
                })
                .into_response(),
            Err(rejection) => ApiError(not_an_upgrade(&rejection)).into_response(),
        },
        Err(e) => ApiError(e).into_response(),
    }
}

/// Every check before the upgrade, in the documented order; a ticket is
/// spent only once all of them passed, so a refused upgrade never burns it.
async fn admit(
    sessions: &Sessions,
    headers: &HeaderMap,
    ip: IpAddr,
    query: WsQuery,
    rejection: Option<&WebSocketUpgradeRejection>,
) -> Result<(Identity, ConnPermit), Error> {
    let (identity, ticket) = match (bearer(headers).or(query.token.as_deref()), &query.ticket) {
        (Some(token), _) => (sessions.tokens.verify(token)?, None),
        (None, Some(ticket)) => (sessions.tickets.peek(ticket).await?, Some(ticket)),
        (None, None) => return Err(Error::Unauthorized("missing token or ticket".into())),
    };
    if identity.expires_at <= chat_model::time::now_ms() {
        return Err(Error::Unauthorized("token expired".into()));
    }
    sessions.tokens.check_live(&identity.session).await?;
    let user = &identity.user;
    let origins = &sessions.settings.origins;
    if !origins.is_empty()
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
        if !origins.iter().any(|o| o == origin) {
            return Err(Error::Forbidden(format!("origin {origin} is not allowed")));
        }
    }
    if sessions.shutdown.is_triggered() {
        return Err(Error::Busy("gateway is shutting down".into()));
    }
    if sessions.hub.connections() >= sessions.settings.max_connections {
        metrics::counter!("gateway_rejected_connections_total").increment(1);
        return Err(Error::Busy("gateway is at its connection limit".into()));
    }
    let permit = sessions.caps.acquire(user, ip).map_err(|cap| {
        metrics::counter!("gateway_rejected_connections_total").increment(1);
        let message = match cap {
            CapExceeded::User => "too many open sockets for this user",
            CapExceeded::Ip => "too many open sockets from this address",
        };
        Error::Limited {
            message: message.into(),
            retry_after_secs: 5,
        }
    })?;
    if let Some(rejection) = rejection {
        return Err(not_an_upgrade(rejection));
    }
    if let Some(ticket) = ticket {
        sessions.tickets.redeem(ticket, user).await?;
    }
    Ok((identity, permit))
}

fn not_an_upgrade(rejection: &WebSocketUpgradeRejection) -> Error {
    Error::Invalid(format!("expected a WebSocket upgrade: {rejection}"))
}
