//! Revoked sessions' sockets, closed on every gateway; and users removed
//! from a room, told on every gateway (a `removed` frame). user-service
//! publishes each revocation on one sharded channel that every gateway
//! subscribes to (`pubsub.rs` keeps the subscription alive); a gateway
//! closes that session's sockets with 4001 as soon as it hears.
//!
//! A revocation published while the subscription was down is not lost:
//! whenever the subscription is made (again), the gateway sweeps every
//! session it holds against the deny-list in Redis
//! (`chat_redis::sessions`), and the sweep closes what it missed.

use std::sync::Arc;

use chat_model::protocol::ServerFrame;
use chat_redis::sessions::{Revocations, parse_announcement, parse_removals};

use super::{
    hub::{Hub, session_key},
    outbox::Close,
    pubsub::Listener,
};

/// How a revoked session's sockets are closed (docs/protocol.md): do not
/// reconnect with the same tokens.
pub const CLOSE: Close = (4001, "session revoked");

pub struct RevocationListener {
    hub: Arc<Hub>,
    revocations: Revocations,
}

impl RevocationListener {
    pub fn new(hub: Arc<Hub>, revocations: Revocations) -> Self {
        Self { hub, revocations }
    }
}

impl Listener for RevocationListener {
    fn subscribed(&mut self) {
        let (hub, revocations) = (self.hub.clone(), self.revocations.clone());
        tokio::spawn(async move { sweep(&hub, &revocations).await });
    }

    fn message(&mut self, payload: &[u8]) {
        let sessions: Vec<u128> = parse_announcement(payload)
            .iter()
            .map(|s| session_key(s))
            .collect();
        let closed = self.hub.close_sessions(&sessions, CLOSE);
        if closed > 0 {
            metrics::counter!("gateway_revoked_sockets_total").increment(closed as u64);
        }
        // Removals from rooms ride the same channel: a `removed` frame to
        // the users' sockets here.
        for (room, action, users) in parse_removals(payload) {
            let frame = ServerFrame::Removed {
                room: &room,
                action: &action,
            }
            .to_json();
            self.hub.tell_users(&users, &frame);
        }
    }
}

/// Closes the sockets of every revoked session here.
async fn sweep(hub: &Hub, revocations: &Revocations) {
    let held: Vec<String> = hub
        .sessions()
        .into_iter()
        .map(|s| format!("{s:032x}"))
        .collect();
    if held.is_empty() {
        return;
    }
    match revocations.revoked_among(&held).await {
        Ok(revoked) => {
            let revoked: Vec<u128> = revoked.iter().map(|s| session_key(s)).collect();
            let closed = hub.close_sessions(&revoked, CLOSE);
            if closed > 0 {
                metrics::counter!("gateway_revoked_sockets_total").increment(closed as u64);
                tracing::info!(closed, "sweep closed sockets of revoked sessions");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not sweep for revoked sessions"),
    }
}
