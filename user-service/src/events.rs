//! Membership versions: after every committed join or leave, the room's
//! version key in Redis is bumped before the call returns. chat-service reads
//! the versions of a batch's rooms in its pipeline and refetches a member list
//! whose version moved, so a change is enforced for every send processed
//! after the join or leave call returned.

use std::sync::Arc;

use chat_redis::connection::Redis;
use chat_redis::keys::Keys;
use tokio::sync::Notify;

use crate::error::UserError;

/// A block-list version outlives every cached list (MEMBERSHIP_TTL_MS is
/// at most minutes), so one expiring and restarting cannot match a list
/// cached under the old count.
const BLOCKS_VERSION_TTL_SECS: i64 = 86_400;

#[derive(Clone)]
pub struct MembershipEvents {
    conn: Redis,
    keys: Keys,
    /// Wakes the membership-event relay (`event_relay.rs`).
    relay: Arc<Notify>,
}

impl MembershipEvents {
    pub fn new(conn: Redis, keys: Keys, relay: Arc<Notify>) -> Self {
        Self { conn, keys, relay }
    }

    /// Bumps `room`'s version, and wakes the relay for the change's event
    /// (in the outbox since its commit). A failure is logged, not returned:
    /// the change is committed, and chat-service's cache expiry
    /// (MEMBERSHIP_TTL_MS) still bounds how long it can be missed.
    pub async fn changed(&self, room: &str) {
        self.relay.notify_one();
        let mut conn = self.conn.clone();
        let bumped: redis::RedisResult<i64> = redis::cmd("INCR")
            .arg(self.keys.room_version(room))
            .query_async(&mut conn)
            .await;
        if let Err(e) = bumped {
            tracing::warn!(error = %e, %room, "could not announce a membership change");
        }
    }

    /// `room`'s last seq: where a member joining now starts reading when
    /// the room shows history since joining. Redis down is an error, not
    /// 0: a join must not open the whole history by accident.
    pub async fn room_seq(&self, room: &str) -> Result<i64, UserError> {
        let mut conn = self.conn.clone();
        let seq: Option<i64> = redis::cmd("GET")
            .arg(self.keys.seq(&format!("room:{room}")))
            .query_async(&mut conn)
            .await
            .map_err(|e| UserError::Unavailable(format!("reading the room's seq: {e}")))?;
        Ok(seq.unwrap_or(0))
    }

    /// Bumps `user`'s block-list version (see [`Self::changed`]).
    pub async fn blocks_changed(&self, user: &str) {
        let mut conn = self.conn.clone();
        let key = self.keys.blocks_version(user);
        let bumped: redis::RedisResult<()> = redis::pipe()
            .incr(&key, 1)
            .ignore()
            .expire(&key, BLOCKS_VERSION_TTL_SECS)
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = bumped {
            tracing::warn!(error = %e, %user, "could not announce a block-list change");
        }
    }

    /// Tells every gateway that `users` are out of `room` (`action`), so
    /// their sockets hear it at once. Best effort: the membership change
    /// is committed and enforced whether or not this is heard.
    pub async fn removed(&self, room: &str, action: &str, users: &[String]) {
        let mut conn = self.conn.clone();
        for chunk in users.chunks(1000) {
            let sent: redis::RedisResult<i64> = redis::cmd("SPUBLISH")
                .arg(self.keys.revocations_channel())
                .arg(chat_redis::sessions::removal_notice(room, action, chunk))
                .query_async(&mut conn)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, %room, "could not announce a removal");
            }
        }
    }
}
