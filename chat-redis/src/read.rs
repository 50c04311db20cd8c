//! Read markers: per conversation, a hash of username → the highest seq that
//! user has read. A marker only moves forward, so a late or repeated `read`
//! from a slow device never undoes a newer one, and unread is always
//! `last seq − marker`: nothing is written per member per message, whatever
//! the room's size. Sending moves the sender's own marker (the sequencer
//! does it in the same script that takes the seq).

use crate::{
    connection::{LuaScript, Redis, query_scripted},
    keys::Keys,
};

/// KEYS[1]: the conversation's seq counter; KEYS[2]: its read markers.
/// ARGV[1]: user; ARGV[2]: the seq read. Returns {moved (1, 0, or -1 for a
/// seq beyond the last), marker, last seq}.
const MARK: &str = r"
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = tonumber(ARGV[2])
if want > last then return {-1, 0, last} end
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if want > cur then
  redis.call('HSET', KEYS[2], ARGV[1], want)
  return {1, want, last}
end
return {0, cur, last}
";

/// What a `read` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// The marker moved to `seq`.
    Moved { seq: u64, unread: u64 },
    /// The marker was at `seq` already or beyond it, and stays.
    Unchanged { seq: u64, unread: u64 },
    /// The seq is beyond the conversation's last seq: nothing changed.
    BeyondLast { last: u64 },
}

#[derive(Clone)]
pub struct ReadMarkers {
    keys: Keys,
    script: LuaScript,
}

impl ReadMarkers {
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            script: LuaScript::new(MARK),
        }
    }

    /// Moves `user`'s marker in `conversation` to `seq` if that is forward.
    pub async fn mark(
        &self,
        conn: &mut Redis,
        conversation: &str,
        user: &str,
        seq: u64,
    ) -> redis::RedisResult<Marked> {
        let mut pipe = redis::pipe();
        self.script.call(
            &mut pipe,
            &self.keys.read_script(conversation),
            &[user, &seq.to_string()],
        );
        let ((moved, marker, last),): ((i64, u64, u64),) =
            query_scripted(conn, &pipe, &[&self.script]).await?;
        let unread = last.saturating_sub(marker);
        Ok(match moved {
            1 => Marked::Moved {
                seq: marker,
                unread,
            },
            0 => Marked::Unchanged {
                seq: marker,
                unread,
            },
            _ => Marked::BeyondLast { last },
        })
    }
}
