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

/// Users removed from a room, announced on the revocations channel (the
/// one every gateway subscribes to) as `removed:<room>:<action>:<u1>,<u2>…`:
/// one token that is no session id, which gateways before these notices skip.
pub fn removal_notice(room: &str, action: &str, users: &[String]) -> String {
    format!("removed:{room}:{action}:{}", users.join(","))
}

/// The (room, action, users) of each removal notice in a revocations message.
pub fn parse_removals(payload: &[u8]) -> Vec<(String, String, Vec<String>)> {
    std::str::from_utf8(payload)
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter_map(|token| {
            let mut parts = token.strip_prefix("removed:")?.splitn(3, ':');
            let (room, action, users) = (parts.next()?, parts.next()?, parts.next()?);
            if chat_model::ids::check_room_name(room).is_err()
                || !matches!(action, "kick" | "ban" | "delete_room")
            {
                return None;
            }
            let users: Vec<String> = users
                .split(',')
                .filter(|u| chat_model::ids::valid_username(u))
                .map(str::to_owned)
                .collect();
            Some((room.to_owned(), action.to_owned(), users))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_notices_round_trip_and_are_no_session_ids() {
        let users = vec!["bob".to_owned(), "eve_2".to_owned()];
        let notice = removal_notice("ops-1", "ban", &users);
        assert_eq!(
            parse_removals(notice.as_bytes()),
            vec![("ops-1".to_owned(), "ban".to_owned(), users)]
        );
        assert!(parse_announcement(notice.as_bytes()).is_empty());
        let both = format!("{notice} {}", "0123456789abcdef0123456789abcdef");
        assert_eq!(parse_announcement(both.as_bytes()).len(), 1);
        assert_eq!(parse_removals(both.as_bytes()).len(), 1);
        for bad in [
            "removed:Bad Room:kick:bob",
            "removed:ops:explode:bob",
            "removed:ops",
        ] {
            assert!(parse_removals(bad.as_bytes()).is_empty(), "{bad}");
        }
    }
}
