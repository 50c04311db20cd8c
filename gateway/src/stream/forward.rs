//! Frames POSTed on another gateway for a stream held here: that gateway
//! publishes them on this one's sharded inbound channel
//! (`{gw:<id>}:inbound`), read by a subscription of its own
//! (`delivery/pubsub.rs` keeps it alive). A frame published while this
//! gateway was not subscribed is lost as a frame lost on a network is: the
//! client re-sends what was not acknowledged, with the same client_id.

use super::registry::{Forward, Handed, Streams};
use crate::delivery::pubsub::Listener;

pub struct Forwarded {
    streams: Streams,
}

impl Forwarded {
    pub fn new(streams: Streams) -> Self {
        Self { streams }
    }
}

impl Listener for Forwarded {
    fn subscribed(&mut self) {}

    fn message(&mut self, payload: &[u8]) {
        let Ok(forward) = serde_json::from_slice::<Forward>(payload) else {
            tracing::warn!("unreadable forwarded frames");
            return;
        };
        if let Some(holder) = &forward.wake {
            self.streams.waiters().wake(holder, forward.conn);
            return;
        }
        let handed = self
            .streams
            .hand_here(forward.conn, &forward.user, forward.frames);
        if !matches!(handed, Handed::Queued(_)) {
            tracing::debug!(?handed, "forwarded frames not taken");
        }
    }
}
