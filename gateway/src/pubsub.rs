//! The gateway's one Redis pub/sub subscription: its own delivery channel.
//! Each message is a JSON array of deliveries; every frame is turned into a
//! shared buffer once and offered to the target sockets without blocking.
//!
//! Deliveries can be missed in three ways, and each is noticed:
//! - the connection drops: it reconnects and re-subscribes by itself;
//! - the connection is dead but not closed (half-open, a paused Redis): a
//!   PING every second that is not answered within two seconds counts as a
//!   drop, so a dead subscription is noticed within about three seconds;
//! - a payload is lost on the way: each carries the channel's delivery number
//!   (`<n> <json>`), and a jump in `n` is a gap.
//!
//! In every case the sockets stay open and each gets a `resync` frame: what
//! they missed is in history (and chat-service put it in the offline queues of
//! recipients whose gateway did not hear it), and the client's recovery
//! fetches it.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::Utf8Bytes;
use common::{
    backoff::Backoff,
    model::{self, Delivery, open_envelope},
    shutdown::Shutdown,
};
use futures::StreamExt;
use tokio::sync::watch;

use crate::hub::{Hub, Outgoing};

/// How often the subscription is pinged.
pub const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a ping may take before the connection counts as dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs until shutdown. `subscribed` is true while the subscription is live.
pub async fn run(
    redis_url: String,
    channel: String,
    hub: Arc<Hub>,
    subscribed: watch::Sender<bool>,
    shutdown: Shutdown,
) {
    // Resubscribing is what ends a delivery gap, so it retries faster than
    // the default and never waits more than 3 s.
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(3));
    while !shutdown.is_triggered() {
        match subscribe(&redis_url, &channel).await {
            Ok(pubsub) => {
                backoff.reset();
                let _ = subscribed.send(true);
                tracing::info!(%channel, "subscribed");
                // Whatever was published while we were not listening reached
                // nobody here: every socket recovers.
                hub.resync_all("subscribed");
                let ended = listen(pubsub, &hub, &shutdown).await;
                let _ = subscribed.send(false);
                match ended {
                    Ended::Shutdown => return,
                    Ended::Lost(why) => {
                        metrics::counter!("gateway_pubsub_reconnects_total").increment(1);
                        tracing::warn!(why, "pub/sub connection lost; reconnecting");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pub/sub subscribe failed; retrying");
            }
        }
        backoff.wait(&shutdown).await;
    }
}

enum Ended {
    Shutdown,
    Lost(&'static str),
}

/// Dispatches deliveries until the connection ends, stops answering pings,
/// or shutdown.
async fn listen(pubsub: redis::aio::PubSub, hub: &Hub, shutdown: &Shutdown) -> Ended {
    let stop = shutdown.clone().wait();
    tokio::pin!(stop);
    let (mut sink, mut messages) = pubsub.split();
    let pinger = async move {
        let mut tick = tokio::time::interval(PING_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match tokio::time::timeout(PING_TIMEOUT, sink.ping::<()>()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return "ping failed",
                Err(_) => return "ping timed out",
            }
        }
    };
    tokio::pin!(pinger);
    let mut sequence = Sequence::default();
    loop {
        tokio::select! {
            msg = messages.next() => match msg {
                Some(msg) => {
                    let (n, deliveries) = open_envelope(msg.get_payload_bytes());
                    if let Some(n) = n
                        && sequence.gap(n)
                    {
                        metrics::counter!("gateway_delivery_gaps_total").increment(1);
                        tracing::warn!(n, "gap in the delivery sequence; clients resync");
                        hub.resync_all("gap");
                    }
                    dispatch(hub, deliveries);
                }
                None => return Ended::Lost("connection closed"),
            },
            why = &mut pinger => return Ended::Lost(why),
            () = &mut stop => return Ended::Shutdown,
        }
    }
}

async fn subscribe(url: &str, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let client = redis::Client::open(url)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "connect timed out")))??;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// The delivery numbers seen on one subscription.
#[derive(Default)]
struct Sequence {
    last: Option<u64>,
}

impl Sequence {
    /// Records `n`; true when numbers were skipped since the last one. The
    /// first number after subscribing cannot be judged (what came before was
    /// missed anyway, and `resync` covers it). A number that goes back (Redis
    /// lost its counter) starts over.
    fn gap(&mut self, n: u64) -> bool {
        let gap = matches!(self.last, Some(last) if n > last + 1);
        self.last = Some(n);
        gap
    }
}

/// Hands one payload's deliveries to the hub. A payload this build cannot
/// read (corrupt, or of a format version it does not know) is a loss like a
/// gap: every socket is told to resync, and history has the messages.
pub fn dispatch(hub: &Hub, payload: &[u8]) {
    let deliveries: Vec<Delivery<'_>> = match serde_json::from_slice(payload) {
        Ok(d) => d,
        Err(e) => return unreadable(hub, &e.to_string()),
    };
    if let Some(d) = deliveries.iter().find(|d| !model::readable(d.v)) {
        return unreadable(hub, &format!("unknown format version {}", d.v));
    }
    let now = common::time::now_ms();
    for d in deliveries {
        observe(&d, now);
        // Serialized once by chat-service; one shared buffer for every socket.
        let frames: Vec<Outgoing> = d
            .frames
            .iter()
            .map(|f| Outgoing {
                conn: f.conn,
                skip_conn: f.skip_conn,
                frame: Utf8Bytes::from(f.frame.get().to_owned()),
            })
            .collect();
        let n = hub.deliver(&d.users, &frames);
        metrics::counter!("gateway_deliveries_total").increment(n as u64);
    }
}

/// What the frames tell about their sends: the end of each message's trace
/// (when spans are exported), and latency as felt by users: their own
/// `sent` (a frame for one connection) and their message reaching the
/// recipients' gateway. Clocks of different hosts may differ; a negative
/// difference counts as zero.
fn observe(d: &Delivery<'_>, now: i64) {
    for f in &d.frames {
        if f.trace.is_some() {
            // The end of the message's trace (common::trace).
            let span = tracing::info_span!("gateway.deliver", sockets = d.users.len());
            common::trace::set_parent(&span, f.trace);
        }
        let Some(at) = f.at else { continue };
        let seconds = (now - at).max(0) as f64 / 1000.0;
        if f.conn.is_some() {
            metrics::histogram!("gateway_send_to_sent_seconds").record(seconds);
        } else {
            metrics::histogram!("gateway_send_to_delivered_seconds").record(seconds);
        }
    }
}

fn unreadable(hub: &Hub, why: &str) {
    metrics::counter!("gateway_bad_deliveries_total").increment(1);
    tracing::error!(why, "unreadable delivery; sockets resync");
    hub.resync_all("unreadable delivery");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_numbers_are_a_gap_and_a_restart_is_not() {
        let mut s = Sequence::default();
        assert!(!s.gap(7), "the first number is not judged");
        assert!(!s.gap(8));
        assert!(s.gap(10));
        assert!(!s.gap(11));
        assert!(!s.gap(1), "a counter that starts over");
        assert!(!s.gap(2));
    }
}
