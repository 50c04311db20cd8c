//! The Redis side of storage: per-conversation recent windows (read here),
//! what a batch makes durable (`append.rs`: the window, the archive backlog
//! stream, offline queues) and the offline queues themselves
//! (`offline.rs`).

mod append;
mod offline;

use chat_model::message::ChatMessage;
use chat_redis::connection::Redis;
use chat_redis::{connection::LuaScript, keys::Keys};

pub use self::{
    append::{AppendItem, Late},
    offline::OfflineBatch,
};
use crate::error::HistoryError;

/// Field of the archive stream entry that holds the message JSON.
pub const ARCHIVE_FIELD: &str = "m";

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
            offline_push: LuaScript::new(offline::OFFLINE_PUSH),
            offline_ack: LuaScript::new(offline::OFFLINE_ACK),
            replace_target: LuaScript::new(append::REPLACE_TARGET),
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
