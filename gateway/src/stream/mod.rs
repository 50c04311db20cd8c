//! The streaming transport, for clients whose WebSocket upgrade fails
//! (proxies that strip `Upgrade`, some carriers, HTTP-only edges): the same
//! protocol, server frames as server-sent events on `GET /api/stream`,
//! client frames as `POST /api/stream/{conn}` to any gateway.
//!
//! The session is the one a WebSocket gets (`crate::session`): hello and
//! the offline handshake, acks, re-sends, resync, the outbox bound, caps,
//! rate limits, token refresh and revocation. Only the carriage differs:
//! `pump.rs` writes the outbox as events; POSTs feed the session's inbound
//! queue through the registry (`registry.rs`), here or, forwarded through
//! Redis, on the gateway that holds the stream (`forward.rs`). No sticky
//! sessions are needed. Long-polling (`poll.rs`) is the same again, with
//! the outbox in Redis for polls on any gateway.

pub mod forward;
pub mod poll;
pub mod pump;
pub mod registry;
pub mod wake;

use std::{convert::Infallible, net::IpAddr};

use axum::{
    Json,
    extract::{Path, State, ws::Message},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response, Sse, sse::Event},
};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use self::registry::{Handed, INBOUND_FRAMES, Streams};
use crate::{
    domain::Error,
    http::{
        error::{ApiError, ErrorBody},
        extract::{ApiJson, ApiQuery, Authed, ClientIp},
    },
    session::{
        Sessions,
        admit::{Credentials, admit},
        run::{self, Transport},
    },
};

/// Most frames one POST may carry.
pub const MAX_POST_FRAMES: usize = 32;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// A one-time ticket from `POST /api/ws-ticket` (an EventSource cannot
    /// set headers); or send `Authorization: Bearer`.
    ticket: Option<String>,
}

/// How many frames a POST handed to its stream.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub accepted: usize,
}

/// Open a stream: the WebSocket protocol's server frames as server-sent
/// events (docs/protocol.md, Transports).
///
/// The first event is `connection`, whose data `{"conn": "<token>"}` names the
/// stream for `POST /api/stream/{conn}`. Then each server frame is one
/// `data:` event, from `hello` and `offline` on; a comment comes every
/// `heartbeat_ms`; the last event is `close`, with the code and reason a
/// WebSocket would get. Send a `ping` frame at least every `heartbeat_ms`,
/// or the stream closes as idle (4000).
#[utoipa::path(
    get,
    path = "/api/stream",
    tag = "service",
    params(StreamQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream"),
        (status = 401, description = "Missing or bad token or ticket, or a signed-out session", body = ErrorBody),
        (status = 403, description = "Origin not allowed, or streaming turned off (TRANSPORTS)", body = ErrorBody),
        (status = 429, description = "Too many connections for this user or address", body = ErrorBody),
        (status = 503, description = "At the connection limit, or shutting down", body = ErrorBody),
    )
)]
pub async fn open(
    State(sessions): State<Sessions>,
    State(streams): State<Streams>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let sse = start(&sessions, &streams, &headers, ip, query).await?;
    let mut response = sse.into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx: pass each event on at once.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

async fn start(
    sessions: &Sessions,
    streams: &Streams,
    headers: &HeaderMap,
    ip: IpAddr,
    query: StreamQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>, Error> {
    let off = (!sessions.settings.streaming)
        .then(|| Error::Forbidden("streaming is turned off on this gateway (TRANSPORTS)".into()));
    let credentials = Credentials::of(headers, None, query.ticket);
    let (identity, permit) = admit(sessions, headers, ip, credentials, off).await?;
    let outbox = run::outbox(sessions);
    let (frames, inbound) = mpsc::channel::<String>(INBOUND_FRAMES);
    let registration = streams.register(&identity.user, frames);
    let (events, body) = mpsc::channel(pump::EVENTS);
    let open = Event::default()
        .event("connection")
        .data(serde_json::json!({ "conn": registration.token() }).to_string());
    let _ = events.try_send(Ok(open));
    let writer = tokio::spawn(pump::pump(
        events,
        outbox.clone(),
        sessions.shutdown.clone(),
        sessions.settings.heartbeat(),
    ));
    spawn_session(
        sessions,
        inbound,
        writer,
        outbox,
        identity,
        permit,
        registration,
    );
    metrics::counter!("gateway_streams_total").increment(1);
    Ok(Sse::new(futures::stream::unfold(
        body,
        |mut body| async move { body.recv().await.map(|event| (event, body)) },
    )))
}

/// Runs the session of a stream or long-poll connection as a task: client
/// frames from the registry's queue `inbound` (what POSTs hand it), the
/// outbox out through `writer`; the stream leaves the registry with it.
fn spawn_session(
    sessions: &Sessions,
    inbound: mpsc::Receiver<String>,
    writer: tokio::task::JoinHandle<()>,
    outbox: std::sync::Arc<crate::delivery::outbox::Outbox>,
    identity: crate::domain::tokens::Identity,
    permit: crate::delivery::caps::ConnPermit,
    registration: registry::Registration,
) {
    let input = Box::pin(futures::stream::unfold(inbound, |mut inbound| async move {
        let text = inbound.recv().await?;
        Some((Ok::<_, axum::Error>(Message::Text(text.into())), inbound))
    }));
    let transport = Transport {
        input,
        writer,
        handshake: false,
    };
    let session = run::run(transport, outbox, sessions.clone(), identity, permit);
    tokio::spawn(async move {
        session.await;
        drop(registration);
    });
}

/// Send client frames to a stream, on any gateway.
///
/// The body is one client frame (docs/protocol.md) or an array of up to 32.
/// They are handed to the stream's session in order, as if they had come
/// on a WebSocket; every answer (`sent`, `error`, `history`…) comes on the
/// stream. The caller must be the stream's user.
#[utoipa::path(
    post,
    path = "/api/stream/{conn}",
    tag = "service",
    security(("bearer" = [])),
    params(("conn" = String, Path, description = "The `conn` of the stream's `open` event")),
    request_body(content = Object, description = "A client frame, or an array of up to 32"),
    responses(
        (status = 202, description = "Handed to the stream's session", body = Accepted),
        (status = 400, description = "Not a frame or an array of frames", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 403, description = "The stream is another user's", body = ErrorBody),
        (status = 404, description = "No such stream (it ended)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "The stream's session has too many frames waiting", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn post(
    State(streams): State<Streams>,
    Authed(me): Authed,
    Path(conn): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let frames = match body {
        Value::Array(frames) if frames.len() > MAX_POST_FRAMES => {
            return Err(ApiError::bad_request(format!(
                "at most {MAX_POST_FRAMES} frames per POST"
            )));
        }
        Value::Array(frames) => frames,
        frame @ Value::Object(_) => vec![frame],
        _ => {
            return Err(ApiError::bad_request(
                "expected a frame or an array of frames",
            ));
        }
    };
    if frames.is_empty() {
        return Err(ApiError::bad_request("no frames"));
    }
    // The session reads each frame as the text a WebSocket would carry
    // (its own checks apply: size, shape, rate).
    let frames: Vec<String> = frames.iter().map(Value::to_string).collect();
    match streams.hand(&conn, &me.user, frames).await? {
        Handed::Queued(accepted) => Ok((StatusCode::ACCEPTED, Json(Accepted { accepted }))),
        Handed::Unknown => Err(Error::NotFound("no such stream".into()).into()),
        Handed::NotYours => Err(Error::Forbidden("not your stream".into()).into()),
        Handed::Full => Err(Error::Limited {
            message: "the stream has too many frames waiting; slow down".into(),
            retry_after_secs: 1,
        }
        .into()),
    }
}
