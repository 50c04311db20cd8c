//! The recent window of each conversation, read: the messages at given
//! seqs, and pages before or after a seq, each message in its current state.

use chat_model::message::ChatMessage;
use chat_redis::{connection::Redis, keys::Keys};

use crate::error::HistoryError;

#[derive(Clone)]
pub struct Window {
    conn: Redis,
    keys: Keys,
}

impl Window {
    pub fn new(conn: Redis, keys: Keys) -> Self {
        Self { conn, keys }
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

pub(super) fn parse_all(items: &[String]) -> Result<Vec<ChatMessage>, HistoryError> {
    Ok(items
        .iter()
        .map(|s| serde_json::from_str(s))
        .collect::<Result<_, _>>()?)
}

/// One message per seq, in the order given. A window can hold two versions
/// of one seq for a moment (a retried append of a message an event already
/// changed); the one with the later event applied is the current one.
pub(super) fn current(messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
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
