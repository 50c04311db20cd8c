//! Membership versions: after every committed join or leave, the room's
//! version key in Redis is bumped before the call returns. chat-service reads
//! the versions of a batch's rooms in its pipeline and refetches a member list
//! whose version moved, so a change is enforced for every send processed
//! after the join or leave call returned.

use chat_redis::connection::Redis;
use chat_redis::keys::Keys;

#[derive(Clone)]
pub struct MembershipEvents {
    conn: Redis,
    keys: Keys,
}

impl MembershipEvents {
    pub fn new(conn: Redis, keys: Keys) -> Self {
        Self { conn, keys }
    }

    /// Bumps `room`'s version. A failure is logged, not returned: the change
    /// is committed, and chat-service's cache expiry (MEMBERSHIP_TTL_MS) still
    /// bounds how long it can be missed.
    pub async fn changed(&self, room: &str) {
        let mut conn = self.conn.clone();
        let bumped: redis::RedisResult<i64> = redis::cmd("INCR")
            .arg(self.keys.room_version(room))
            .query_async(&mut conn)
            .await;
        if let Err(e) = bumped {
            tracing::warn!(error = %e, %room, "could not announce a membership change");
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
