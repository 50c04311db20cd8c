//! Erasing what Redis keeps for a deleted account: its offline queue, its
//! DM index and its read markers. Its sessions are revoked and its
//! memberships dropped by user-service; presence ends with its sockets,
//! which the revocation closes; everything else keyed by its name (dedup
//! records, client-id claims, limits) expires on its own TTL.
//!
//! The messages it sent stay in their conversations (docs/security.md,
//! "Erasure"): they belong to the other participants' history as well.

use std::time::Duration;

use chat_redis::{connection::Redis, keys::Keys};
use redis::AsyncCommands;

use super::Error;

/// When the erasure runs a second time, for what a DM accepted in the
/// moments after the deletion queued again (chat-service caches who exists
/// for MEMBERSHIP_TTL_MS, 10 s by default).
pub const SECOND_PASS: Duration = Duration::from_secs(30);

/// Attempts at the erasure before it is logged as incomplete.
const ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct Erasure {
    redis: Redis,
    keys: Keys,
}

impl Erasure {
    pub fn new(redis: Redis, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// `user`'s DM conversations.
    pub async fn dms(&self, user: &str) -> Result<Vec<String>, Error> {
        let mut redis = self.redis.clone();
        redis
            .zrange(self.keys.user_dms(user), 0, -1)
            .await
            .map_err(Error::redis("listing DMs"))
    }

    /// Erases `user`'s keys and its read markers in `conversations`. The
    /// account is gone already, so a failure cannot be answered to anyone:
    /// it is retried, then logged and counted
    /// (`gateway_erasures_incomplete_total`) for the operator.
    pub async fn erase(&self, user: &str, conversations: &[String]) {
        let keys = &self.keys;
        let mut pipe = redis::pipe();
        for key in [
            keys.offline(user),
            keys.offline_seen(user),
            keys.offline_dropped(user),
            keys.user_dms(user),
        ] {
            pipe.del(key).ignore();
        }
        for conversation in conversations {
            pipe.hdel(keys.read_markers(conversation), user).ignore();
        }
        for attempt in 1..=ATTEMPTS {
            let mut redis = self.redis.clone();
            match pipe.query_async::<()>(&mut redis).await {
                Ok(()) => return,
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "erasing a deleted account; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => {
                    metrics::counter!("gateway_erasures_incomplete_total").increment(1);
                    tracing::error!(error = %e, %user, "a deleted account's Redis state is not erased");
                }
            }
        }
    }
}
