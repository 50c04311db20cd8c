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
use proto::history::v1 as hpb;
use tokio::sync::{Notify, mpsc};

use super::{
    close,
    inbound::{self, ClientFrame, FrameError},
    ratelimit::TokenBucket,
};
use crate::{api::conversations::fetch_page, hub::Outbound, state::AppState};

/// Bad or rate-limited frames in a row before the socket is closed (1008).
const MAX_STRIKES: u32 = 50;
/// Most frames written between two flushes.
const WRITE_BATCH: usize = 256;
/// How long the close frame may wait for a peer that is not reading.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub async fn run(socket: WebSocket, state: AppState, user: String) {
    let (tx, rx) = mpsc::channel(state.config.outbound_queue);
    let slow = Arc::new(Notify::new());
    let reg = state.hub.register(&user, tx.clone(), slow.clone());
    metrics::counter!("gateway_sessions_total").increment(1);
    if let Err(e) = state.presence.connected(&user).await {
        tracing::warn!(error = %e, %user, "presence update failed");
    }
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(
        sink,
        rx,
        slow.clone(),
        state.shutdown.clone(),
        state.config.heartbeat(),
    ));
    let mut session = Session {
        bucket: TokenBucket::new(state.config.rate_per_sec, state.config.rate_burst),
        state,
        user,
        conn: reg.id,
        tx,
        slow,
        offline: None,
        strikes: 0,
    };
    // Boxed, like frame handling below: their gRPC futures are large, and an
    // idle session should not carry their space for its whole life.
    Box::pin(session.greet()).await;
    let ended = session.read_loop(&mut stream, &mut writer).await;

    let Session {
        state, user, tx, ..
    } = session;
    state.hub.unregister(reg.id);
    // Presence counts sockets, so every disconnect decrements.
    if let Err(e) = state.presence.disconnected(&user).await {
        tracing::warn!(error = %e, %user, "presence update failed");
    }
    drop(tx);
    if ended != Ended::WriterDone {
        // The writer sends its close frame and ends once the queue is dropped.
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
    tx: mpsc::Sender<Outbound>,
    slow: Arc<Notify>,
    /// The last `offline` batch sent: (id of its last message, dropped count).
    offline: Option<(String, u64)>,
    bucket: TokenBucket,
    strikes: u32,
}

impl Session {
    fn push(&self, out: Outbound) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(out) {
            self.slow.notify_one();
        }
    }

    fn frame(&self, frame: &ServerFrame<'_>) {
        self.push(Outbound::Frame(Utf8Bytes::from(frame.to_json())));
    }

    fn error(&self, code: ErrorCode, message: &str, reference: Option<&str>) {
        metrics::counter!("gateway_error_frames_total", "code" => code.as_str()).increment(1);
        self.frame(&ServerFrame::Error {
            code,
            message,
            reference,
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
                    self.push(Outbound::Close(close::IDLE.0, close::IDLE.1));
                    return Ended::ByServer;
                }
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return Ended::PeerClosed,
                Ok(Some(Err(e))) => {
                    let text = e.to_string();
                    if text.contains("Space limit") || text.contains("too long") {
                        self.push(Outbound::Close(close::TOO_BIG.0, close::TOO_BIG.1));
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
                self.push(Outbound::Close(close::POLICY.0, close::POLICY.1));
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

    /// Puts a send or typing notice on the ingress stream.
    async fn enqueue(&mut self, kind: EntryKind, client_id: String, to: String, body: String) {
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
            .history
            .clone()
            .ack_offline(hpb::AckOfflineRequest {
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
async fn write_loop(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Outbound>,
    slow: Arc<Notify>,
    shutdown: Shutdown,
    heartbeat: Duration,
) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let reason = loop {
        let next = tokio::select! {
            biased;
            () = slow.notified() => break close::SLOW_CONSUMER,
            () = &mut stop => break close::RESTART,
            out = rx.recv() => match out {
                Some(out) => Some(out),
                None => break close::NORMAL,
            },
            _ = ping.tick() => None,
        };
        // A write blocks while the peer does not read; the slow-consumer flag
        // and shutdown must still get through, so they race the write.
        let write = async {
            match next {
                Some(out) => write_batch(&mut sink, &mut rx, out).await,
                None => sink
                    .send(Message::Ping(Default::default()))
                    .await
                    .map(|()| None),
            }
        };
        tokio::select! {
            biased;
            () = slow.notified() => break close::SLOW_CONSUMER,
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

/// Feeds `first` and whatever else is queued (up to WRITE_BATCH), then flushes.
/// Returns a close request if one was queued.
async fn write_batch(
    sink: &mut Sink,
    rx: &mut mpsc::Receiver<Outbound>,
    first: Outbound,
) -> Result<Option<(u16, &'static str)>, axum::Error> {
    let mut next = Some(first);
    let mut written = 0;
    while let Some(out) = next.take() {
        match out {
            Outbound::Frame(frame) => sink.feed(Message::Text(frame)).await?,
            Outbound::Close(code, reason) => {
                sink.flush().await?;
                return Ok(Some((code, reason)));
            }
        }
        written += 1;
        if written < WRITE_BATCH {
            next = rx.try_recv().ok();
        }
    }
    sink.flush().await?;
    Ok(None)
}
