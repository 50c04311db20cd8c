//! One WebSocket session: a writer task that drains the outbound queue (feed a
//! batch, flush once) and pings, and a reader loop that handles client frames.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use common::{
    model::{EntryKind, INGRESS_FIELD, IngressEntry},
    protocol::{ErrorCode, ServerFrame},
    shutdown::Shutdown,
};
use futures::{SinkExt, StreamExt, stream::SplitSink};
use proto::history::{internal::v1 as ipb, v1 as hpb};

use super::{
    caps::ConnPermit,
    close,
    inbound::{self, ClientFrame, FrameError},
    ratelimit::TokenBucket,
};
use crate::{
    api::conversations::fetch_page,
    backpressure,
    outbox::{Close, Next, Outbox},
    state::AppState,
};

/// Bad or rate-limited frames in a row before the socket is closed (1008).
const MAX_STRIKES: u32 = 50;
/// Most frames written between two flushes.
const WRITE_BATCH: usize = 256;
/// How long the close frame may wait for a peer that is not reading.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Runs one socket; `_permit` holds its place under the per-user and
/// per-address caps until the session ends.
pub async fn run(socket: WebSocket, state: AppState, user: String, _permit: ConnPermit) {
    let outbox = Arc::new(Outbox::bounded(
        state.config.outbound_queue,
        state.config.outbound_queue_bytes,
    ));
    let reg = state.hub.register(&user, outbox.clone());
    metrics::counter!("gateway_sessions_total").increment(1);
    state.presence.changed(&user).await;
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbox.clone(),
        state.shutdown.clone(),
        state.config.heartbeat(),
    ));
    let mut session = Session {
        bucket: TokenBucket::new(state.config.rate_per_sec, state.config.rate_burst),
        state,
        user,
        conn: reg.id,
        outbox,
        offline: None,
        strikes: 0,
    };
    // Boxed, like frame handling below: their gRPC futures are large, and an
    // idle session should not carry their space for its whole life.
    Box::pin(session.greet()).await;
    let ended = session.read_loop(&mut stream, &mut writer).await;

    let Session {
        state,
        user,
        outbox,
        ..
    } = session;
    state.hub.unregister(reg.id);
    state.presence.changed_later(&user);
    outbox.finish();
    if ended != Ended::WriterDone {
        // The writer sends what is queued and its close frame, then ends.
        if tokio::time::timeout(CLOSE_WAIT + Duration::from_secs(1), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
    if ended != Ended::PeerClosed {
        // The closing handshake: wait (bounded) for the peer's close before
        // dropping the connection, so it reads our close frame and code.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Why a session's read loop ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The peer closed, or the connection broke.
    PeerClosed,
    /// The server decided to close (idle, abuse, oversize); a close is queued.
    ByServer,
    /// The writer ended (slow consumer, shutdown, write error).
    WriterDone,
}

struct Session {
    state: AppState,
    user: String,
    conn: u64,
    outbox: Arc<Outbox>,
    /// The last `offline` batch sent: (id of its last message, dropped count).
    offline: Option<(String, u64)>,
    bucket: TokenBucket,
    strikes: u32,
}

impl Session {
    fn frame(&self, frame: &ServerFrame<'_>) {
        self.outbox.push(Utf8Bytes::from(frame.to_json()));
    }

    fn error(&self, code: ErrorCode, message: &str, reference: Option<&str>) {
        self.error_retry(code, message, reference, None);
    }

    fn error_retry(
        &self,
        code: ErrorCode,
        message: &str,
        reference: Option<&str>,
        retry_after_ms: Option<u64>,
    ) {
        metrics::counter!("gateway_error_frames_total", "code" => code.as_str()).increment(1);
        self.frame(&ServerFrame::Error {
            code,
            message,
            reference,
            retry_after_ms,
        });
    }

    /// `hello`, then always `offline` (possibly empty).
    async fn greet(&mut self) {
        let config = &self.state.config;
        self.frame(&ServerFrame::Hello {
            user: &self.user,
            gateway: &config.gateway_id,
            heartbeat_ms: config.heartbeat_ms,
        });
        let reply = self
            .state
            .history
            .clone()
            .list_offline(hpb::ListOfflineRequest {
                username: self.user.clone(),
            })
            .await;
        match reply {
            Ok(reply) => {
                let reply = reply.into_inner();
                let messages: Vec<_> = reply
                    .messages
                    .into_iter()
                    .filter_map(|m| common::convert::from_pb(m).ok())
                    .collect();
                if !messages.is_empty() || reply.dropped > 0 {
                    let last = messages.last().map(|m| m.id.clone()).unwrap_or_default();
                    self.offline = Some((last, reply.dropped));
                }
                self.frame(&ServerFrame::Offline {
                    messages: &messages,
                    truncated: reply.truncated,
                });
            }
            Err(status) => {
                tracing::warn!(error = %status, "offline queue unavailable");
                self.frame(&ServerFrame::Offline {
                    messages: &[],
                    truncated: false,
                });
                self.error(
                    ErrorCode::Unavailable,
                    "offline messages are unavailable now; they stay queued for the next connect",
                    None,
                );
            }
        }
    }

    /// Reads until the client leaves, the socket fails, the writer ends, or
    /// the server closes the session.
    async fn read_loop(
        &mut self,
        stream: &mut futures::stream::SplitStream<WebSocket>,
        writer: &mut tokio::task::JoinHandle<()>,
    ) -> Ended {
        let idle = self.state.config.idle_timeout();
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(idle, stream.next()) => next,
                _ = &mut *writer => return Ended::WriterDone,
            };
            let message = match next {
                Err(_) => {
                    self.outbox.close(close::IDLE);
                    return Ended::ByServer;
                }
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return Ended::PeerClosed,
                Ok(Some(Err(e))) => {
                    let text = e.to_string();
                    if text.contains("Space limit") || text.contains("too long") {
                        self.outbox.close(close::TOO_BIG);
                        return Ended::ByServer;
                    }
                    return Ended::PeerClosed;
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => Box::pin(self.handle_text(text.as_str())).await,
                Message::Binary(_) => {
                    self.strikes += 1;
                    self.error(
                        ErrorCode::BadRequest,
                        "binary frames are not supported",
                        None,
                    );
                }
                // tungstenite answers pings itself; both count as activity.
                Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
            }
            if self.strikes >= MAX_STRIKES {
                self.outbox.close(close::POLICY);
                return Ended::ByServer;
            }
        }
    }

    async fn handle_text(&mut self, text: &str) {
        let max = self.state.config.max_frame_bytes;
        if text.len() > max {
            self.strikes += 1;
            self.error(
                ErrorCode::TooLarge,
                &format!("frame is over {max} bytes"),
                None,
            );
            return;
        }
        let frame = match inbound::parse(text, common::limits::MAX_BODY) {
            Ok(frame) => frame,
            Err(FrameError {
                code,
                message,
                reference,
            }) => {
                self.strikes += 1;
                self.error(code, &message, reference.as_deref());
                return;
            }
        };
        if !matches!(frame, ClientFrame::Ping | ClientFrame::OfflineAck) && !self.bucket.try_take()
        {
            self.strikes += 1;
            let reference = match &frame {
                ClientFrame::Send { client_id, .. } => Some(client_id.as_str()),
                ClientFrame::History { reference, .. } => Some(reference.as_str()),
                _ => None,
            };
            self.error(ErrorCode::RateLimited, "slow down", reference);
            return;
        }
        self.strikes = 0;
        match frame {
            ClientFrame::Send {
                client_id,
                to,
                body,
            } => {
                self.enqueue(EntryKind::Send, client_id, to.to_string(), body)
                    .await;
            }
            ClientFrame::Typing { to } => {
                self.enqueue(
                    EntryKind::Typing,
                    String::new(),
                    to.to_string(),
                    String::new(),
                )
                .await;
            }
            ClientFrame::History {
                reference,
                conversation,
                before,
                after,
                limit,
            } => {
                let conv = conversation.to_string();
                match fetch_page(&self.state, &self.user, &conv, before, after, limit).await {
                    Ok((messages, has_more)) => self.frame(&ServerFrame::History {
                        reference: &reference,
                        conversation: &conv,
                        messages: &messages,
                        has_more,
                    }),
                    Err(e) => self.error(e.ws_code(), &e.to_string(), Some(&reference)),
                }
            }
            ClientFrame::OfflineAck => self.ack_offline().await,
            ClientFrame::Ping => self.frame(&ServerFrame::Pong),
        }
    }

    /// Puts a send or typing notice on the ingress stream, unless the stream's
    /// backlog is over its limit: then a send is refused with a retry hint and
    /// a typing notice (worthless later) is dropped.
    async fn enqueue(&mut self, kind: EntryKind, client_id: String, to: String, body: String) {
        let state = &self.state;
        if backpressure::over_limit(&state.ingress_backlog, state.config.ingress_backlog_limit) {
            metrics::counter!("gateway_backpressure_total").increment(1);
            if kind == EntryKind::Send {
                self.error_retry(
                    ErrorCode::Unavailable,
                    "the system is busy; retry with the same client_id",
                    Some(&client_id),
                    Some(backpressure::RETRY_AFTER_MS),
                );
            }
            return;
        }
        let entry = IngressEntry {
            kind,
            user: self.user.clone(),
            gw: self.state.config.gateway_id.clone(),
            conn: self.conn,
            client_id,
            to,
            body,
        };
        let json = serde_json::to_string(&entry).unwrap_or_default();
        let mut redis = self.state.redis.clone();
        let added: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(self.state.keys.ingress())
            .arg("*")
            .arg(INGRESS_FIELD)
            .arg(json)
            .query_async(&mut redis)
            .await;
        if let Err(e) = added {
            tracing::warn!(error = %e, "ingress XADD failed");
            let reference = (kind == EntryKind::Send).then_some(entry.client_id.as_str());
            self.error(
                ErrorCode::Unavailable,
                "message not accepted; retry with the same client_id",
                reference,
            );
        } else {
            metrics::counter!("gateway_ingress_total").increment(1);
        }
    }

    async fn ack_offline(&mut self) {
        let Some((last_id, dropped)) = self.offline.take() else {
            return;
        };
        let acked = self
            .state
            .history_internal
            .clone()
            .ack_offline(ipb::AckOfflineRequest {
                username: self.user.clone(),
                last_id: last_id.clone(),
                dropped,
            })
            .await;
        if let Err(status) = acked {
            tracing::warn!(error = %status, "offline ack failed");
            self.offline = Some((last_id, dropped));
            self.error(
                ErrorCode::Unavailable,
                "offline_ack not recorded; send it again",
                None,
            );
        }
    }
}

type Sink = SplitSink<WebSocket, Message>;

/// Writes queued frames (feeding up to WRITE_BATCH, then one flush), pings
/// every heartbeat, and closes the socket on a close request, a slow-consumer
/// flag, shutdown (1012), or when every sender is gone.
async fn write_loop(mut sink: Sink, outbox: Arc<Outbox>, shutdown: Shutdown, heartbeat: Duration) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let reason = loop {
        let next = tokio::select! {
            biased;
            () = outbox.overflowed() => break close::SLOW_CONSUMER,
            () = &mut stop => break close::RESTART,
            next = outbox.next() => Some(next),
            _ = ping.tick() => None,
        };
        // A write blocks while the peer does not read; the slow-consumer flag
        // and shutdown must still get through, so they race the write.
        let write = async {
            match next {
                Some(Next::Frame(frame)) => write_batch(&mut sink, &outbox, frame).await,
                Some(Next::Close(close)) => Ok(Some(close)),
                Some(Next::Finished) => Ok(Some(close::NORMAL)),
                None => sink
                    .send(Message::Ping(Default::default()))
                    .await
                    .map(|()| None),
            }
        };
        tokio::select! {
            biased;
            () = outbox.overflowed() => break close::SLOW_CONSUMER,
            () = &mut stop => break close::RESTART,
            written = write => match written {
                Ok(None) => {}
                Ok(Some(reason)) => break reason,
                Err(_) => return,
            },
        }
    };
    if reason == close::SLOW_CONSUMER {
        metrics::counter!("gateway_closed_total", "reason" => "slow_consumer").increment(1);
    }
    // The close frame waits behind what the peer has not read yet; give it a
    // bounded time, then drop the connection.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: reason.0,
                reason: Utf8Bytes::from_static(reason.1),
            })))
            .await;
        let _ = sink.close().await;
    })
    .await;
}

/// Feeds `first` and whatever else is queued (up to WRITE_BATCH), then
/// flushes once. Returns a close request if one came up.
async fn write_batch(
    sink: &mut Sink,
    outbox: &Outbox,
    first: Utf8Bytes,
) -> Result<Option<Close>, axum::Error> {
    sink.feed(Message::Text(first)).await?;
    for _ in 1..WRITE_BATCH {
        match outbox.try_next() {
            Some(Next::Frame(frame)) => sink.feed(Message::Text(frame)).await?,
            Some(Next::Close(close)) => {
                sink.flush().await?;
                return Ok(Some(close));
            }
            Some(Next::Finished) => {
                sink.flush().await?;
                return Ok(Some(close::NORMAL));
            }
            None => break,
        }
    }
    sink.flush().await?;
    Ok(None)
}
