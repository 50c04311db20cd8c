//! One session's life, whatever carries it (a WebSocket, a stream with
//! POSTs): register with the hub and presence, greet (`hello`, then the
//! offline handshake), read and dispatch client frames until the peer
//! leaves or the server closes, then unregister and let the writer finish.
//! The session lives on its access token (`auth.rs`). The transport's
//! writer task owns the sending side; sends go to the ingress floor
//! (`crate::ingress`).

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes};
use chat_model::{
    ids::ConversationId,
    message::EntryKind,
    protocol::{ErrorCode, ServerFrame},
};
use futures::{Stream, StreamExt};
use tracing::Instrument;

use super::{
    Sessions,
    auth::Auth,
    close,
    inbound::{self, ClientFrame, FrameError},
};
use crate::{
    delivery::{caps::ConnPermit, hub::session_key, outbox::Outbox, seen},
    domain::{Error, offline, tokens::Identity},
    ingress::{Item, Produced, ratelimit::TokenBucket},
};

/// Bad or rate-limited frames in a row before the session is closed (1008).
const MAX_STRIKES: u32 = 50;
/// How long a close may wait for a peer that is not reading.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What carries a session: where its client frames come from, and the task
/// that writes its outbox to the client.
pub struct Transport<S> {
    pub input: S,
    pub writer: tokio::task::JoinHandle<()>,
    /// After the server's close, wait (bounded) for the peer's: the
    /// WebSocket closing handshake.
    pub handshake: bool,
}

/// A session's outbound queue, bounded as the settings say.
pub fn outbox(ctx: &Sessions) -> Arc<Outbox> {
    Arc::new(Outbox::bounded(
        ctx.settings.outbound_queue,
        ctx.settings.outbound_queue_bytes,
    ))
}

/// Runs one session; `_permit` holds its place under the per-user and
/// per-address caps until the session ends.
pub async fn run<S>(
    transport: Transport<S>,
    outbox: Arc<Outbox>,
    ctx: Sessions,
    identity: Identity,
    _permit: ConnPermit,
) where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
{
    let Transport {
        input: mut stream,
        mut writer,
        handshake,
    } = transport;
    let Identity {
        user,
        session,
        expires_at,
    } = identity;
    let settings = &ctx.settings;
    // Registered before the offline queue is read, so nothing falls between
    // the two; what arrives live meanwhile waits behind the greeting.
    outbox.begin_greeting();
    let reg = ctx
        .hub
        .register(&user, session_key(&session), outbox.clone());
    metrics::counter!("gateway_sessions_total").increment(1);
    ctx.presence.changed(&user).await;
    let mut session = Session {
        bucket: TokenBucket::new(settings.rate_per_sec, settings.rate_burst),
        ctx,
        user,
        conn: reg.id,
        outbox,
        offline: None,
        strikes: 0,
        auth: Auth::new(expires_at),
    };
    // Boxed, like frame handling below: their gRPC futures are large, and an
    // idle session should not carry their space for its whole life.
    Box::pin(session.greet()).await;
    let ended = session.read_loop(&mut stream, &mut writer).await;

    let Session {
        ctx, user, outbox, ..
    } = session;
    ctx.hub.unregister(reg.id);
    ctx.presence.changed_later(&user);
    outbox.finish();
    if ended != Ended::WriterDone {
        // The writer sends what is queued and its close, then ends.
        if tokio::time::timeout(CLOSE_WAIT + Duration::from_secs(1), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
    if handshake && ended != Ended::PeerClosed {
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
    ctx: Sessions,
    user: String,
    conn: u64,
    outbox: Arc<Outbox>,
    /// The last `offline` batch sent and not acknowledged yet.
    offline: Option<offline::Sent>,
    bucket: TokenBucket,
    strikes: u32,
    auth: Auth,
}

impl Session {
    fn frame(&self, frame: &ServerFrame<'_>) {
        self.outbox.push(Utf8Bytes::from(frame.to_json()));
    }

    fn error(&self, code: ErrorCode, message: &str, reference: Option<&str>) {
        self.error_retry(code, message, reference, None);
    }

    /// A domain error as an `error` frame, logged here if it is ours.
    fn failed(&self, error: &Error, reference: Option<&str>) {
        error.log_answered();
        self.error(
            super::error::code(error),
            &error.public_message(),
            reference,
        );
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

    /// `hello`, then always `offline` (possibly empty), ahead of anything
    /// delivered live meanwhile.
    async fn greet(&mut self) {
        let settings = &self.ctx.settings;
        let greeting = |frame: &ServerFrame<'_>| Utf8Bytes::from(frame.to_json());
        self.outbox.push_greeting(greeting(&ServerFrame::Hello {
            user: &self.user,
            gateway: &settings.gateway_id,
            heartbeat_ms: settings.heartbeat_ms,
        }));
        let fetched = self.ctx.offline.fetch(&self.user).await;
        match fetched {
            Ok(mut queued) => {
                self.offline = queued.sent.take();
                // What a live delivery brought already (queued behind the
                // greeting) is not in the batch again; the rest is recorded,
                // so a live copy that comes later is not handed again.
                queued.messages.retain(|m| {
                    let key = seen::key(m.conversation.as_str());
                    self.outbox.admit(key, seen::Mark::Seq(m.seq))
                });
                self.outbox.push_greeting(greeting(&ServerFrame::Offline {
                    messages: &queued.messages,
                    truncated: queued.truncated,
                }));
                self.outbox.end_greeting();
            }
            Err(e) => {
                tracing::warn!(error = %service_kit::error::Chain(&e), "offline queue unavailable");
                self.outbox.push_greeting(greeting(&ServerFrame::Offline {
                    messages: &[],
                    truncated: false,
                }));
                self.outbox.end_greeting();
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
    async fn read_loop<S>(
        &mut self,
        stream: &mut S,
        writer: &mut tokio::task::JoinHandle<()>,
    ) -> Ended
    where
        S: Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
    {
        let idle = self.ctx.settings.idle_timeout;
        let mut idle_at = Instant::now() + idle;
        loop {
            let deadline = idle_at.min(self.auth.deadline());
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, stream.next()) => next,
                _ = &mut *writer => return Ended::WriterDone,
            };
            let message = match next {
                Err(_) if Instant::now() >= idle_at => {
                    self.outbox.close(close::IDLE);
                    return Ended::ByServer;
                }
                Err(_) => {
                    if self.auth.ask_at.take().is_some() {
                        self.frame(&ServerFrame::Refresh {
                            expires_at: self.auth.expires_at,
                        });
                        continue;
                    }
                    metrics::counter!("gateway_expired_sockets_total").increment(1);
                    self.outbox.close(close::TOKEN_EXPIRED);
                    return Ended::ByServer;
                }
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return Ended::PeerClosed,
                Ok(Some(Err(e))) => {
                    if close::is_too_big(e) {
                        self.outbox.close(close::TOO_BIG);
                        return Ended::ByServer;
                    }
                    return Ended::PeerClosed;
                }
                Ok(Some(Ok(message))) => message,
            };
            idle_at = Instant::now() + idle;
            match message {
                Message::Text(text) => Box::pin(self.handle_text(text.as_str())).await,
                Message::Binary(_) => {
                    self.strikes += 1;
                    self.bucket.try_take();
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

    /// A text frame that is too big, malformed or over the rate limit is a
    /// strike and gets an error; anything else is dispatched. Every frame
    /// but `ping` and `offline_ack` takes a token of the rate limit,
    /// unreadable ones too, and only an accepted frame that took one clears
    /// the strikes: a stream of garbage between pings still closes the
    /// socket, and garbage cannot be sent faster than the limit.
    fn admit(&mut self, text: &str) -> Option<ClientFrame> {
        let max = self.ctx.settings.max_frame_bytes;
        if text.len() > max {
            self.strikes += 1;
            self.bucket.try_take();
            let message = format!("frame is over {max} bytes");
            self.error(ErrorCode::TooLarge, &message, None);
            return None;
        }
        let frame = match inbound::parse(text, chat_model::limits::MAX_BODY) {
            Ok(frame) => frame,
            Err(FrameError {
                code,
                message,
                reference,
            }) => {
                self.strikes += 1;
                self.bucket.try_take();
                self.error(code, &message, reference.as_deref());
                return None;
            }
        };
        let free = matches!(frame, ClientFrame::Ping | ClientFrame::OfflineAck { .. });
        if free {
            return Some(frame);
        }
        if !self.bucket.try_take() {
            self.strikes += 1;
            self.error(ErrorCode::RateLimited, "slow down", frame.reference());
            return None;
        }
        self.strikes = 0;
        Some(frame)
    }

    async fn handle_text(&mut self, text: &str) {
        let Some(frame) = self.admit(text) else {
            return;
        };
        match frame {
            ClientFrame::Send {
                client_id,
                to,
                body,
            } => {
                // The root of the message's trace (service_kit::trace).
                let span = tracing::info_span!("send", to = %to);
                let trace = service_kit::trace::traceparent(&span);
                self.produce(Item {
                    kind: EntryKind::Send,
                    client_id,
                    to,
                    body,
                    target_seq: None,
                    trace,
                })
                .instrument(span)
                .await;
            }
            ClientFrame::Change {
                client_id,
                conversation,
                seq,
                body,
            } => self.change(client_id, conversation, seq, body).await,
            ClientFrame::Read {
                conversation,
                seq,
                reference,
            } => {
                if let Err(e) = self.ctx.reads.mark(&self.user, &conversation, seq).await {
                    self.failed(&e, reference.as_deref());
                }
            }
            ClientFrame::Typing { to, reference } => {
                // A typing notice takes no seq: its client_id only carries
                // the frame's ref, for an error about it.
                self.produce(Item {
                    kind: EntryKind::Typing,
                    client_id: reference.unwrap_or_default(),
                    to,
                    body: String::new(),
                    target_seq: None,
                    trace: None,
                })
                .await;
            }
            ClientFrame::History {
                reference,
                conversation,
                page,
            } => match self.ctx.history.page(&self.user, &conversation, page).await {
                Ok((messages, has_more)) => self.frame(&ServerFrame::History {
                    reference: &reference,
                    conversation: conversation.as_str(),
                    messages: &messages,
                    has_more,
                }),
                Err(e) => self.failed(&e, Some(&reference)),
            },
            ClientFrame::OfflineAck { reference } => self.ack_offline(reference.as_deref()).await,
            ClientFrame::Ping => self.frame(&ServerFrame::Pong),
            ClientFrame::Auth { token, reference } => {
                Box::pin(self.reauthenticate(&token, reference.as_deref())).await;
            }
        }
    }

    /// An `auth` frame: a fresh token of the same user, in a live session,
    /// expiring later than the current one, replaces it. The socket moves
    /// to the new session before the session is checked, so a revocation
    /// announced in between still finds it.
    async fn reauthenticate(&mut self, token: &str, reference: Option<&str>) {
        let identity = match self.ctx.tokens.verify(token) {
            Ok(identity) => identity,
            Err(e) => return self.failed(&e, reference),
        };
        if identity.user != self.user {
            let message = "the token is another user's";
            return self.error(ErrorCode::Forbidden, message, reference);
        }
        if identity.expires_at <= self.auth.expires_at {
            let message = "the token expires no later than the socket's";
            return self.error(ErrorCode::BadRequest, message, reference);
        }
        self.ctx
            .hub
            .set_session(self.conn, session_key(&identity.session));
        match self.ctx.tokens.check_live(&identity.session).await {
            Ok(()) => {}
            Err(Error::Unauthorized(_)) => return self.outbox.close(close::REVOKED),
            Err(e) => return self.failed(&e, reference),
        }
        self.auth = Auth::new(identity.expires_at);
        self.frame(&ServerFrame::Authed {
            reference,
            expires_at: identity.expires_at,
        });
    }

    /// An edit (with a body) or delete of the message at `seq`: to the
    /// ingress like a send, in the conversation the user takes part in.
    async fn change(
        &mut self,
        client_id: String,
        conversation: ConversationId,
        seq: u64,
        body: Option<String>,
    ) {
        let Some(to) = conversation.target_for(&self.user) else {
            let message = "not a party to this conversation";
            self.error(ErrorCode::Forbidden, message, Some(&client_id));
            return;
        };
        let kind = if body.is_some() {
            EntryKind::Edit
        } else {
            EntryKind::Delete
        };
        let span = tracing::info_span!("send", to = %to);
        let trace = service_kit::trace::traceparent(&span);
        self.produce(Item {
            kind,
            client_id,
            to,
            body: body.unwrap_or_default(),
            target_seq: Some(seq),
            trace,
        })
        .instrument(span)
        .await;
    }

    /// Hands a send, edit, delete or typing notice to the ingress producer;
    /// a refusal is an error frame referring to it.
    async fn produce(&mut self, item: Item) {
        let reference = (!item.client_id.is_empty()).then(|| item.client_id.clone());
        if let Produced::Refused {
            code,
            message,
            retry_after_ms,
        } = self.ctx.ingress.produce(&self.user, self.conn, item).await
        {
            self.error_retry(code, message, reference.as_deref(), retry_after_ms);
        }
    }

    async fn ack_offline(&mut self, reference: Option<&str>) {
        let Some(sent) = self.offline.take() else {
            return;
        };
        if let Err(e) = self.ctx.offline.ack(&self.user, &sent).await {
            tracing::warn!(error = %service_kit::error::Chain(&e), "offline ack failed");
            self.offline = Some(sent);
            self.error(
                ErrorCode::Unavailable,
                "offline_ack not recorded; send it again",
                reference,
            );
        }
    }
}
