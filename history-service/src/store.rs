//! The Redis side of storage: per-user offline queues, per-conversation recent
//! windows, and the archive backlog stream.

use common::redis_conn::Redis;
use common::{
    keys::Keys,
    model::{ArchiveEntry, ChatMessage},
    redis_conn::{LuaScript, query_scripted},
};

use crate::error::HistoryError;

/// Appends one message to an offline queue unless it is already there (a
/// replay), keeps the newest ARGV[2], and counts what it drops. A queue gets
/// its time to live (ARGV[3] s) from its first message since its user was last
/// seen; later messages do not extend it, so an absent user's queue goes away
/// OFFLINE_TTL after that (the messages stay in history).
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

/// Puts ARGV[2], the new state of the message at seq ARGV[1], in the recent
/// window (KEYS[1]) in place of what is there, unless it is not there (it was
/// archived and trimmed: the archiver applies the event in MongoDB) or what
/// is there is deleted or has an event at or after ARGV[3] applied already:
/// events apply in seq order whatever order they arrive in.
const REPLACE_TARGET: &str = r#"
local items = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[1], 'BYSCORE')
if #items == 0 then return 0 end
for _, item in ipairs(items) do
  local ok, m = pcall(cjson.decode, item)
  if ok and type(m) == 'table' and (m.deleted == true or (tonumber(m.edit_seq) or 0) >= tonumber(ARGV[3])) then
    return 0
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

/// Field of the archive stream entry that holds the message JSON.
pub const ARCHIVE_FIELD: &str = "m";

/// One message to store, with the recipients that had no live connection.
pub struct AppendItem {
    pub message: ChatMessage,
    pub offline_recipients: Vec<String>,
}

/// A peek at an offline queue.
pub struct OfflineBatch {
    pub messages: Vec<ChatMessage>,
    pub dropped: u64,
}

#[derive(Clone)]
pub struct RedisStore {
    conn: Redis,
    keys: Keys,
    /// OFFLINE_LIMIT and OFFLINE_TTL_SECS, as the push script's arguments.
    offline_args: [String; 2],
    offline_ttl_secs: u64,
    /// ARCHIVE_PARTITIONS: the archive stream a conversation's messages go to.
    archive_partitions: usize,
    offline_push: LuaScript,
    offline_ack: LuaScript,
    replace_target: LuaScript,
}

impl RedisStore {
    pub fn new(conn: Redis, keys: Keys, offline_limit: u32, offline_ttl_secs: u64) -> Self {
        Self {
            conn,
            keys,
            offline_args: [offline_limit.to_string(), offline_ttl_secs.to_string()],
            offline_ttl_secs,
            archive_partitions: 1,
            offline_push: LuaScript::new(OFFLINE_PUSH),
            offline_ack: LuaScript::new(OFFLINE_ACK),
            replace_target: LuaScript::new(REPLACE_TARGET),
        }
    }

    /// Spreads the archive backlog over `partitions` streams.
    pub fn with_archive_partitions(mut self, partitions: usize) -> Self {
        self.archive_partitions = partitions.max(1);
        self
    }

    pub fn archive_partitions(&self) -> usize {
        self.archive_partitions
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn conn(&self) -> Redis {
        self.conn.clone()
    }

    /// Makes a batch durable in one pipeline: recent window, archive backlog,
    /// offline queues; then applies its edits and deletes to their targets
    /// in the window. Replaying a batch changes nothing (ZADD of the same
    /// member, LPOS check; a second archive entry is absorbed by MongoDB's
    /// `_id`; an event applies once). An event enters the window without its
    /// body (its target holds the current state, and a later delete must
    /// leave no copy); the offline queues and the archive backlog get it whole.
    pub async fn append(&self, items: &[AppendItem]) -> Result<(), HistoryError> {
        let mut pipe = redis::pipe();
        for item in items {
            let json = serde_json::to_string(&item.message)?;
            let conv = &item.message.conversation;
            let windowed = match item.message.kind {
                Some(_) => serde_json::to_string(&item.message.stored_event())?,
                None => json.clone(),
            };
            pipe.cmd("ZADD")
                .arg(self.keys.recent(conv.as_str()))
                .arg(item.message.seq)
                .arg(windowed)
                .ignore();
            let partition = common::keys::partition(conv.as_str(), self.archive_partitions);
            pipe.cmd("XADD")
                .arg(self.keys.archive(partition))
                .arg("*")
                .arg(ARCHIVE_FIELD)
                .arg(ArchiveEntry::json(&item.message)?)
                .ignore();
            self.push_offline(&mut pipe, &item.offline_recipients, &json);
        }
        let mut conn = self.conn.clone();
        query_scripted::<()>(&mut conn, &pipe, &[&self.offline_push]).await?;
        let events: Vec<&ChatMessage> = items
            .iter()
            .map(|i| &i.message)
            .filter(|m| m.kind.is_some())
            .collect();
        self.apply_events(&events).await
    }

    /// Applies each event to its target in the recent window, if the target
    /// is there (see REPLACE_TARGET).
    async fn apply_events(&self, events: &[&ChatMessage]) -> Result<(), HistoryError> {
        let mut wanted = Vec::new();
        for e in events {
            if let Some(target) = e.target_seq {
                wanted.push((e.conversation.as_str(), target));
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let found = self.at_seqs(&wanted).await?;
        let mut pipe = redis::pipe();
        for (event, target) in events.iter().zip(found) {
            let Some(mut target) = target else { continue };
            if !target.apply(event) {
                continue;
            }
            self.replace_target.call(
                &mut pipe,
                &self.keys.window_script(event.conversation.as_str()),
                &[
                    target.seq.to_string(),
                    serde_json::to_string(&target)?,
                    event.seq.to_string(),
                ],
            );
            pipe.ignore();
        }
        if pipe.cmd_iter().next().is_some() {
            let mut conn = self.conn.clone();
            query_scripted::<()>(&mut conn, &pipe, &[&self.replace_target]).await?;
        }
        Ok(())
    }

    /// The messages at (conversation, seq) in the recent window, in their
    /// current state; None where the window does not hold one.
    pub async fn at_seqs(
        &self,
        wanted: &[(&str, u64)],
    ) -> Result<Vec<Option<ChatMessage>>, HistoryError> {
        let mut pipe = redis::pipe();
        for (conversation, seq) in wanted {
            pipe.cmd("ZRANGE")
                .arg(self.keys.recent(conversation))
                .arg(seq)
                .arg(seq)
                .arg("BYSCORE");
        }
        let mut conn = self.conn.clone();
        let found: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        found
            .into_iter()
            .map(|items| Ok(current(parse_all(&items)?).pop()))
            .collect()
    }

    /// Adds the offline push of `json` for each of `users` to `pipe` (sent
    /// with `query_scripted`).
    fn push_offline(&self, pipe: &mut redis::Pipeline, users: &[String], json: &str) {
        let [limit, ttl] = &self.offline_args;
        for user in users {
            self.offline_push.call(
                pipe,
                &self.keys.offline_script(user),
                &[json, limit.as_str(), ttl.as_str()],
            );
            pipe.ignore();
        }
    }

    /// Puts stored messages into offline queues only (a live delivery reached
    /// no gateway). Replays change nothing (the LPOS check).
    pub async fn enqueue(&self, items: &[AppendItem]) -> Result<(), HistoryError> {
        let mut pipe = redis::pipe();
        for item in items {
            let json = serde_json::to_string(&item.message)?;
            self.push_offline(&mut pipe, &item.offline_recipients, &json);
        }
        let mut conn = self.conn.clone();
        query_scripted::<()>(&mut conn, &pipe, &[&self.offline_push]).await?;
        Ok(())
    }

    /// The whole offline queue (oldest first) and the dropped count, read
    /// atomically. The user is present, so the queue's time to live restarts.
    pub async fn offline(&self, user: &str) -> Result<OfflineBatch, HistoryError> {
        let mut conn = self.conn.clone();
        let (queue, dropped_key) = (self.keys.offline(user), self.keys.offline_dropped(user));
        let (items, dropped): (Vec<String>, Option<u64>) = redis::pipe()
            .atomic()
            .lrange(&queue, 0, -1)
            .get(&dropped_key)
            .expire(&queue, self.offline_ttl_secs as i64)
            .ignore()
            .expire(&dropped_key, self.offline_ttl_secs as i64)
            .ignore()
            .query_async(&mut conn)
            .await?;
        let messages = items
            .iter()
            .map(|s| serde_json::from_str(s))
            .collect::<Result<Vec<ChatMessage>, _>>()?;
        Ok(OfflineBatch {
            messages,
            dropped: dropped.unwrap_or(0),
        })
    }

    /// Removes the acknowledged batch; returns how many messages went.
    pub async fn ack_offline(
        &self,
        user: &str,
        last_id: &str,
        dropped: u64,
    ) -> Result<u64, HistoryError> {
        let mut pipe = redis::pipe();
        self.offline_ack.call(
            &mut pipe,
            &self.keys.offline_script(user),
            &[last_id, &dropped.to_string()],
        );
        let mut conn = self.conn.clone();
        let (removed,): (u64,) = query_scripted(&mut conn, &pipe, &[&self.offline_ack]).await?;
        Ok(removed)
    }

    /// Up to `limit` messages with seq < `before` (None: the newest), newest first.
    pub async fn recent_before(
        &self,
        conversation: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        let max = before.map_or_else(|| "+inf".to_owned(), |b| format!("({b}"));
        self.range(
            redis::cmd("ZRANGE")
                .arg(self.keys.recent(conversation))
                .arg(max)
                .arg("-inf")
                .arg("BYSCORE")
                .arg("REV")
                .arg("LIMIT")
                .arg(0)
                .arg(limit),
        )
        .await
    }

    /// Up to `limit` messages with seq > `after`, oldest first.
    pub async fn recent_after(
        &self,
        conversation: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        self.range(
            redis::cmd("ZRANGE")
                .arg(self.keys.recent(conversation))
                .arg(format!("({after}"))
                .arg("+inf")
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(limit),
        )
        .await
    }

    async fn range(&self, cmd: &redis::Cmd) -> Result<Vec<ChatMessage>, HistoryError> {
        let mut conn = self.conn.clone();
        let items: Vec<String> = cmd.query_async(&mut conn).await?;
        Ok(current(parse_all(&items)?))
    }
}

fn parse_all(items: &[String]) -> Result<Vec<ChatMessage>, HistoryError> {
    Ok(items
        .iter()
        .map(|s| serde_json::from_str(s))
        .collect::<Result<_, _>>()?)
}

/// One message per seq, in the order given. A window can hold two versions
/// of one seq for a moment (a retried append of a message an event already
/// changed); the one with the later event applied is the current one.
fn current(messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    for m in messages {
        match out.last_mut() {
            Some(last) if last.seq == m.seq => {
                // On a tie the later one wins, as it did before events.
                if rank(&m) >= rank(last) {
                    *last = m;
                }
            }
            _ => out.push(m),
        }
    }
    out
}

/// How far a message's state has come: deleted beats any edit, a later
/// edit beats an earlier one.
fn rank(m: &ChatMessage) -> (bool, u64) {
    (m.deleted, m.edit_seq.unwrap_or(0))
}
