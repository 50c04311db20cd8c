//! Long-polling, the last resort, for clients that can hold neither a
//! WebSocket nor an event stream: `POST /api/poll` opens a connection (its
//! token, as a stream's); `GET /api/poll/{conn}?cursor=` answers the server
//! frames after the cursor, or waits for some; frames go in by
//! `POST /api/stream/{conn}`, as on a stream.
//!
//! No sticky sessions here either: the holding gateway's writer (`pump`)
//! moves its session's outbox into a Redis stream (`{poll:<gw>.<id>}`),
//! which a poll on any gateway reads after its cursor. A poll trims what
//! its cursor acknowledges; one whose answer was lost repeats its cursor
//! and gets the same frames again. The outbox bound holds in Redis: past
//! OUTBOUND_QUEUE frames waiting, the session closes as a slow consumer
//! (4008). A waiting poll is woken when its frames are written (`wake.rs`),
//! and otherwise reads the stream once a second, without blocking a shared
//! connection.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use service_kit::shutdown::Shutdown;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::registry::{Handed, INBOUND_FRAMES, Streams};
use crate::{
    delivery::outbox::{Close, Next, Outbox},
    domain::Error,
    http::{
        error::{ApiError, ErrorBody},
        extract::{ApiQuery, Authed, ClientIp},
    },
    session::{
        Sessions,
        admit::{Credentials, admit},
        close, run,
    },
};

/// The longest a poll waits for frames.
pub const MAX_WAIT_MS: u64 = 25_000;
/// Frames one poll answers at most.
const POLL_FRAMES: usize = 256;
/// How often a waiting poll looks without being woken (`wake.rs`).
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How often a waiting poll on another gateway asks whether the holder is up.
const ALIVE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a finished connection's frames stay for a last poll.
const LINGER_SECS: i64 = 60;

/// A new long-poll connection.
#[derive(Serialize, ToSchema)]
pub struct Opened {
    /// The connection token, for polls and `POST /api/stream/{conn}`.
    pub conn: String,
    /// The cursor of the first poll.
    pub cursor: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// The `cursor` of the last answer (or of the opening one).
    cursor: Option<String>,
    /// How long to wait for frames, 0 to 25000 ms (default 25000).
    wait_ms: Option<u64>,
}

/// Open a long-poll connection (docs/protocol.md, Long-polling).
#[utoipa::path(
    post,
    path = "/api/poll",
    tag = "service",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The connection", body = Opened),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 403, description = "Origin not allowed, or long-polling turned off (TRANSPORTS)", body = ErrorBody),
        (status = 429, description = "Too many connections for this user or address", body = ErrorBody),
        (status = 503, description = "At the connection limit, or shutting down", body = ErrorBody),
    )
)]
pub async fn open(
    State(sessions): State<Sessions>,
    State(streams): State<Streams>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Json<Opened>, ApiError> {
    let off = (!sessions.settings.polling).then(|| {
        Error::Forbidden("long-polling is turned off on this gateway (TRANSPORTS)".into())
    });
    let credentials = Credentials::of(&headers, None, None);
    let (identity, permit) = admit(&sessions, &headers, ip, credentials, off).await?;
    let outbox = run::outbox(&sessions);
    let (frames, inbound) = mpsc::channel::<String>(INBOUND_FRAMES);
    let registration = streams.register(&identity.user, frames);
    let key = streams
        .keys()
        .poll_queue(streams.gateway(), registration.id());
    let conn = registration.token();
    let writer = tokio::spawn(pump(
        streams.clone(),
        registration.id(),
        key,
        outbox.clone(),
        sessions.shutdown.clone(),
        sessions.settings.outbound_queue,
        sessions.settings.idle_timeout,
    ));
    super::spawn_session(
        &sessions,
        inbound,
        writer,
        outbox,
        identity,
        permit,
        registration,
    );
    metrics::counter!("gateway_polls_opened_total").increment(1);
    Ok(Json(Opened {
        conn,
        cursor: "0-0".into(),
    }))
}

/// The server frames after `cursor`, waiting up to `wait_ms` for some.
///
/// Answers `{"frames": [...], "cursor": "<next>", "close": null}`; pass
/// `cursor` back in the next poll (repeating one gets the same frames
/// again). The last answer carries `close`, `{"code", "reason"}`. Any
/// gateway answers.
#[utoipa::path(
    get,
    path = "/api/poll/{conn}",
    tag = "service",
    security(("bearer" = [])),
    params(("conn" = String, Path, description = "The `conn` of `POST /api/poll`"), PollQuery),
    responses(
        (status = 200, description = "Frames, possibly none", content_type = "application/json"),
        (status = 400, description = "Bad cursor or wait", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 403, description = "The connection is another user's", body = ErrorBody),
        (status = 404, description = "No such connection (it ended)", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn poll(
    State(streams): State<Streams>,
    Authed(me): Authed,
    Path(conn): Path<String>,
    ApiQuery(query): ApiQuery<PollQuery>,
) -> Result<Response, ApiError> {
    let (gateway, id) = match streams.check(&conn, &me.user) {
        Ok(found) => found,
        Err(Handed::NotYours) => return Err(Error::Forbidden("not your connection".into()).into()),
        Err(_) => return Err(Error::NotFound("no such connection".into()).into()),
    };
    let cursor = query.cursor.unwrap_or_else(|| "0-0".into());
    let after = parse_id(&cursor).ok_or_else(|| ApiError::bad_request("bad cursor"))?;
    let wait = query.wait_ms.unwrap_or(MAX_WAIT_MS);
    if wait > MAX_WAIT_MS {
        return Err(ApiError::bad_request(format!(
            "wait_ms must be 0 to {MAX_WAIT_MS}"
        )));
    }
    let key = streams.keys().poll_queue(gateway, id);
    let mut redis = streams.redis().clone();
    // What the cursor acknowledges is gone for good.
    let _: redis::RedisResult<i64> = redis::cmd("XTRIM")
        .arg(&key)
        .arg("MINID")
        .arg(format!("{}-{}", after.0, after.1 + 1))
        .query_async(&mut redis)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
    let mut next_alive_check = tokio::time::Instant::now();
    let mut waiting: Option<super::wake::Waiting> = None;
    loop {
        // Armed before the read: a wake-up sent after a read that saw
        // nothing is not missed.
        let notify = waiting.as_ref().map(|w| w.notify.clone());
        let notified = notify.as_ref().map(|n| n.notified());
        tokio::pin!(notified);
        if let Some(n) = notified.as_mut().as_pin_mut() {
            n.enable();
        }
        let reply: redis::streams::StreamReadReply = redis
            .xread_options(
                &[&key],
                &[&cursor],
                &redis::streams::StreamReadOptions::default().count(POLL_FRAMES),
            )
            .await
            .map_err(Error::redis("reading a poll queue"))?;
        let entries: Vec<redis::streams::StreamId> =
            reply.keys.into_iter().flat_map(|k| k.ids).collect();
        if !entries.is_empty() {
            return Ok(answer(entries, &cursor));
        }
        let exists: bool = redis
            .exists(&key)
            .await
            .map_err(Error::redis("reading a poll queue"))?;
        if !exists && after != (0, 0) {
            return Err(Error::NotFound("no such connection (it ended)".into()).into());
        }
        // A killed holder never writes its close: its queue would just
        // expire, minutes later. Its client learns at once instead.
        if tokio::time::Instant::now() >= next_alive_check {
            if !streams.holder_alive(gateway).await? {
                return Err(
                    Error::NotFound("no such connection (its gateway is gone)".into()).into(),
                );
            }
            next_alive_check = tokio::time::Instant::now() + ALIVE_CHECK_EVERY;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(answer(Vec::new(), &cursor));
        }
        if waiting.is_none() {
            // Leave word where to wake this poll, then read once more: a
            // frame written before the word was left woke nobody.
            waiting = Some(streams.waiters().wait(gateway, id));
            let _: redis::RedisResult<()> = redis::cmd("SET")
                .arg(super::wake::waiter_key(&key))
                .arg(streams.gateway())
                .arg("PX")
                .arg((deadline - now).as_millis() as u64 + 1000)
                .query_async(&mut redis)
                .await;
            continue;
        }
        let nap = LOOK_EVERY.min(deadline - now);
        match notified.as_mut().as_pin_mut() {
            Some(n) => {
                let _ = tokio::time::timeout(nap, n).await;
            }
            None => tokio::time::sleep(nap).await,
        }
    }
}

/// `{"frames":[…],"cursor":"…","close":…}`, the frames as they are stored
/// (each a server frame's JSON).
fn answer(entries: Vec<redis::streams::StreamId>, cursor: &str) -> Response {
    let mut frames = Vec::with_capacity(entries.len());
    let mut close = "null".to_owned();
    let mut next = cursor.to_owned();
    for entry in entries {
        next = entry.id.clone();
        if let Some(frame) = entry.get::<String>("f") {
            frames.push(frame);
        } else if let Some(c) = entry.get::<String>("c") {
            close = c;
        }
    }
    let body = format!(
        r#"{{"frames":[{}],"cursor":"{next}","close":{close}}}"#,
        frames.join(",")
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A stream entry id, `<ms>-<seq>`.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The writer of a long-poll connection: the outbox into its Redis stream,
/// in batches; past `max_frames` waiting, a slow consumer.
pub async fn pump(
    streams: Streams,
    id: u64,
    key: String,
    outbox: Arc<Outbox>,
    shutdown: Shutdown,
    max_frames: usize,
    idle: Duration,
) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut redis = streams.redis().clone();
    let waiter = super::wake::waiter_key(&key);
    let ttl_ms = (idle.as_millis() as i64 * 2).max(LINGER_SECS * 1000);
    let reason: Close = loop {
        let first = tokio::select! {
            biased;
            () = outbox.overflowed() => break close::SLOW_CONSUMER,
            () = &mut stop => break close::RESTART,
            next = outbox.next() => next,
        };
        let mut batch = Vec::new();
        let mut ended = None;
        let mut next = Some(first);
        while let Some(n) = next.take() {
            match n {
                Next::Frame(frame) => batch.push(frame),
                Next::Close(close) => ended = Some(close),
                Next::Finished => ended = Some(close::NORMAL),
            }
            if ended.is_some() || batch.len() >= POLL_FRAMES {
                break;
            }
            next = outbox.try_next();
        }
        if !batch.is_empty() {
            let mut pipe = redis::pipe();
            for frame in &batch {
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("f")
                    .arg(frame.as_str())
                    .ignore();
            }
            pipe.pexpire(&key, ttl_ms).ignore();
            pipe.xlen(&key);
            pipe.get(&waiter);
            match pipe
                .query_async::<(usize, Option<String>)>(&mut redis)
                .await
            {
                Ok((waiting, _)) if waiting > max_frames => break close::SLOW_CONSUMER,
                Ok((_, Some(poller))) => streams.wake(&poller, streams.gateway(), id).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "poll queue unwritable; the connection ends");
                    return;
                }
            }
        }
        if let Some(close) = ended {
            break close;
        }
    };
    if reason == close::SLOW_CONSUMER {
        metrics::counter!("gateway_closed_total", "reason" => "slow_consumer").increment(1);
    }
    let close = format!(r#"{{"code":{},"reason":"{}"}}"#, reason.0, reason.1);
    let closed = redis::pipe()
        .cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("c")
        .arg(close)
        .ignore()
        .pexpire(&key, LINGER_SECS * 1000)
        .ignore()
        .get(&waiter)
        .query_async::<(Option<String>,)>(&mut redis)
        .await;
    if let Ok((Some(poller),)) = closed {
        streams.wake(&poller, streams.gateway(), id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_stream_ids() {
        assert_eq!(parse_id("0-0"), Some((0, 0)));
        assert_eq!(parse_id("1732550400123-7"), Some((1_732_550_400_123, 7)));
        for bad in ["", "0", "a-1", "1-", "-1", "1-2-3"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
