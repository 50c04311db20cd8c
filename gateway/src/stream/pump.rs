//! A stream's writer: the session's outbox as server-sent events. Each
//! server frame is one `data:` line (frames are compact JSON, without
//! newlines); a comment every heartbeat keeps proxies from timing the
//! stream out and tells a dead client; the end is an `event: close` with
//! the same code and reason a WebSocket close frame would carry.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::response::sse::Event;
use service_kit::shutdown::Shutdown;
use tokio::sync::mpsc;

use crate::{
    delivery::outbox::{Close, Next, Outbox},
    session::{close, run::CLOSE_WAIT},
};

pub type Events = mpsc::Sender<Result<Event, Infallible>>;

/// Events queued between the pump and the response body: a small window,
/// the outbox is the bound.
pub const EVENTS: usize = 16;

/// The close event of `close`.
pub fn close_event(close: Close) -> Event {
    Event::default()
        .event("close")
        .data(format!(r#"{{"code":{},"reason":"{}"}}"#, close.0, close.1))
}

/// Writes the outbox to `events` until the session or the client ends it.
pub async fn pump(events: Events, outbox: Arc<Outbox>, shutdown: Shutdown, heartbeat: Duration) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let reason = loop {
        let event = tokio::select! {
            biased;
            () = outbox.overflowed() => break close::SLOW_CONSUMER,
            () = &mut stop => break close::RESTART,
            // The client went away: the body was dropped.
            () = events.closed() => return,
            next = outbox.next() => match next {
                Next::Frame(frame) => Event::default().data(frame.as_str()),
                Next::Close(close) => break close,
                Next::Finished => break close::NORMAL,
            },
            _ = ping.tick() => Event::default().comment(""),
        };
        // A send waits while the client does not read; the slow-consumer
        // flag and shutdown must still get through.
        tokio::select! {
            biased;
            () = outbox.overflowed() => break close::SLOW_CONSUMER,
            () = &mut stop => break close::RESTART,
            sent = events.send(Ok(event)) => if sent.is_err() { return },
        }
    };
    if reason == close::SLOW_CONSUMER {
        metrics::counter!("gateway_closed_total", "reason" => "slow_consumer").increment(1);
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, events.send(Ok(close_event(reason)))).await;
}
