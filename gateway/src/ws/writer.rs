//! A session's writer task: drains the outbound queue (feed a batch, flush
//! once), pings every heartbeat, and closes the socket with the right code.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, stream::SplitSink};
use service_kit::shutdown::Shutdown;

use crate::{
    delivery::outbox::{Close, Next, Outbox},
    session::{close, run::CLOSE_WAIT},
};

/// Most frames written between two flushes.
const WRITE_BATCH: usize = 256;

pub type Sink = SplitSink<WebSocket, Message>;

/// Writes queued frames (feeding up to WRITE_BATCH, then one flush), pings
/// every heartbeat, and closes the socket on a close request, a slow-consumer
/// flag, shutdown (1012), or when every sender is gone.
pub async fn write_loop(
    mut sink: Sink,
    outbox: Arc<Outbox>,
    shutdown: Shutdown,
    heartbeat: Duration,
) {
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
    send_close(&mut sink, reason).await;
}

/// The close frame waits behind what the peer has not read yet; it gets a
/// bounded time, then the connection is dropped.
async fn send_close(sink: &mut Sink, reason: Close) {
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
