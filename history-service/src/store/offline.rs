//! Offline queues: per user, the messages that arrived while none of their
//! sockets was connected, read by a socket's greeting and removed by its
//! acknowledgement.
//!
//! A greeting's read also records when it happened (`Keys::offline_seen`).
//! A push for a batch that looked presence up before that read missed the
//! socket that did it: the push reports the user as late, and chat-service
//! delivers the message to them live (the connect race).

use chat_redis::{
    connection::{LuaScript, Redis, query_scripted},
    keys::Keys,
};

use crate::error::HistoryError;

/// Appends one message to an offline queue unless it is already there (a
/// replay), keeps the newest ARGV[2], and counts what it drops. A queue gets
/// its time to live (ARGV[3] s) from its first message since its user was last
/// seen; later messages do not extend it, so an absent user's queue goes away
/// OFFLINE_TTL after that (the messages stay in history).
///
/// ARGV[4]: the oldest queue read that may have missed this message (Unix
/// ms; 0: none). Returns 0 if it was queued already, 1 once queued, 2 once
/// queued after a socket of the user read the queue at or after ARGV[4].
const OFFLINE_PUSH: &str = r#"
if redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3], 'NX')
local limit = tonumber(ARGV[2])
if n > limit then
  redis.call('LTRIM', KEYS[1], n - limit, -1)
  redis.call('INCRBY', KEYS[2], n - limit)
  redis.call('EXPIRE', KEYS[2], ARGV[3], 'NX')
end
local since = tonumber(ARGV[4])
if since > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= since then return 2 end
return 1
"#;

/// Removes the delivered batch: everything up to and including the message whose
/// id is ARGV[1], and clears the dropped count reported with it (ARGV[2]).
/// Entries are decoded to find the id, so nothing depends on how the JSON
/// is laid out; an entry that does not decode is never the one acknowledged.
const OFFLINE_ACK: &str = r#"
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local removed = 0
for i, item in ipairs(items) do
  local ok, m = pcall(cjson.decode, item)
  if ok and type(m) == 'table' and m.id == ARGV[1] then
    redis.call('LTRIM', KEYS[1], i, -1)
    removed = i
    break
  end
end
local reported = tonumber(ARGV[2])
if reported > 0 then
  local d = tonumber(redis.call('GET', KEYS[2]) or '0')
  if d <= reported then redis.call('DEL', KEYS[2]) else redis.call('DECRBY', KEYS[2], reported) end
end
return removed
"#;

/// How far apart the clocks of the services that look presence up
/// (chat-service) and read queues (history-service) may be: a queue read
/// this much before a lookup still counts as after it. Erring this way
/// costs a live copy of a message its socket may have had already (the
/// gateway hands each socket a seq once), never a missed one.
pub const CLOCK_SKEW_MS: i64 = 2_000;

/// A peek at an offline queue.
pub struct OfflineBatch {
    pub messages: Vec<chat_model::message::ChatMessage>,
    pub dropped: u64,
}

/// The offline queues, with their scripts.
#[derive(Clone)]
pub struct Queues {
    conn: Redis,
    keys: Keys,
    /// OFFLINE_LIMIT and OFFLINE_TTL_SECS, as the push script's arguments.
    args: [String; 2],
    ttl_secs: u64,
    push: LuaScript,
    ack: LuaScript,
}

impl Queues {
    pub fn new(conn: Redis, keys: Keys, limit: u32, ttl_secs: u64) -> Self {
        Self {
            conn,
            keys,
            args: [limit.to_string(), ttl_secs.to_string()],
            ttl_secs,
            push: LuaScript::new(OFFLINE_PUSH),
            ack: LuaScript::new(OFFLINE_ACK),
        }
    }

    /// The push script, for `query_scripted` on a pipeline [`Queues::push`]
    /// added to.
    pub fn push_script(&self) -> &LuaScript {
        &self.push
    }

    /// Adds the offline push of `json` for each of `users` to `pipe` (sent
    /// with `query_scripted`; one reply each, see [`OFFLINE_PUSH`]).
    /// `presence_at`: when the batch looked presence up (0: unknown).
    pub fn push(&self, pipe: &mut redis::Pipeline, users: &[String], json: &str, presence_at: i64) {
        let [limit, ttl] = &self.args;
        let since = if presence_at > 0 {
            (presence_at - CLOCK_SKEW_MS).max(1)
        } else {
            0
        };
        let since = since.to_string();
        for user in users {
            self.push.call(
                pipe,
                &self.keys.offline_push_script(user),
                &[json, limit.as_str(), ttl.as_str(), since.as_str()],
            );
        }
    }

    /// The whole offline queue (oldest first) and the dropped count, read
    /// atomically. The user is present, so the queue's time to live
    /// restarts, and the read is recorded for the connect race.
    pub async fn read(&self, user: &str) -> Result<OfflineBatch, HistoryError> {
        let mut conn = self.conn.clone();
        let (queue, dropped_key) = (self.keys.offline(user), self.keys.offline_dropped(user));
        let ttl = self.ttl_secs as i64;
        let (items, dropped): (Vec<String>, Option<u64>) = redis::pipe()
            .atomic()
            .lrange(&queue, 0, -1)
            .get(&dropped_key)
            .expire(&queue, ttl)
            .ignore()
            .expire(&dropped_key, ttl)
            .ignore()
            .set_ex(
                self.keys.offline_seen(user),
                chat_model::time::now_ms(),
                ttl as u64,
            )
            .ignore()
            .query_async(&mut conn)
            .await?;
        let messages = items
            .iter()
            .map(|s| serde_json::from_str(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OfflineBatch {
            messages,
            dropped: dropped.unwrap_or(0),
        })
    }

    /// Removes the acknowledged batch; returns how many messages went.
    pub async fn ack(&self, user: &str, last_id: &str, dropped: u64) -> Result<u64, HistoryError> {
        let mut pipe = redis::pipe();
        self.ack.call(
            &mut pipe,
            &self.keys.offline_script(user),
            &[last_id, &dropped.to_string()],
        );
        let mut conn = self.conn.clone();
        let (removed,): (u64,) = query_scripted(&mut conn, &pipe, &[&self.ack]).await?;
        Ok(removed)
    }
}
