//! Revoked sessions. PostgreSQL (user-service) is the truth about sessions;
//! Redis holds the deny-list every gateway and history-service consult on
//! each request, and the channel that tells gateways to close a revoked
//! session's sockets now.
//!
//! A revoked session's key lives as long as an access token naming it could
//! still be unexpired (the token lifetime, plus a margin for clock skew);
//! after that no token of it verifies anyway, so the list stays bounded by
//! the revocations of one token lifetime.

use redis::AsyncCommands;

use crate::{connection::Redis, keys::Keys};

/// Added to the token lifetime: hosts' clocks may differ this much.
pub const CLOCK_MARGIN_SECS: u64 = 60;

#[derive(Clone)]
pub struct Revocations {
    redis: Redis,
    keys: Keys,
}

impl Revocations {
    pub fn new(redis: Redis, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// Puts `sessions` on the deny-list for `token_ttl_secs` (plus the
    /// margin), then tells every gateway. Repeating it is harmless: a
    /// revocation whose announcement failed is announced again by retrying.
    pub async fn revoke(&self, sessions: &[String], token_ttl_secs: u64) -> redis::RedisResult<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let mut redis = self.redis.clone();
        // On a cluster the connection splits the pipeline by slot.
        let mut pipe = redis::pipe();
        for session in sessions {
            pipe.set_ex(
                self.keys.revoked_session(session),
                1,
                token_ttl_secs + CLOCK_MARGIN_SECS,
            )
            .ignore();
        }
        let () = pipe.query_async(&mut redis).await?;
        // Space-separated ids; a gateway that misses this finds them on its
        // next sweep (it resweeps whenever its subscription is made again).
        let _: i64 = redis::cmd("SPUBLISH")
            .arg(self.keys.revocations_channel())
            .arg(sessions.join(" "))
            .query_async(&mut redis)
            .await?;
        Ok(())
    }

    /// Whether `session` is revoked.
    pub async fn is_revoked(&self, session: &str) -> redis::RedisResult<bool> {
        let mut redis = self.redis.clone();
        redis.exists(self.keys.revoked_session(session)).await
    }

    /// Those of `sessions` that are revoked (one pipelined EXISTS each).
    pub async fn revoked_among(&self, sessions: &[String]) -> redis::RedisResult<Vec<String>> {
        let mut revoked = Vec::new();
        for chunk in sessions.chunks(500) {
            let mut redis = self.redis.clone();
            let mut pipe = redis::pipe();
            for session in chunk {
                pipe.exists(self.keys.revoked_session(session));
            }
            let found: Vec<bool> = pipe.query_async(&mut redis).await?;
            revoked.extend(
                chunk
                    .iter()
                    .zip(found)
                    .filter(|(_, r)| *r)
                    .map(|(s, _)| s.clone()),
            );
        }
        Ok(revoked)
    }
}

/// The session ids of one revocations message.
pub fn parse_announcement(payload: &[u8]) -> Vec<String> {
    std::str::from_utf8(payload)
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter(|s| chat_model::ids::valid_session_id(s))
        .map(str::to_owned)
        .collect()
}
