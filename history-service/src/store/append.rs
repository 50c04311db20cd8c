//! What a batch makes durable, in one pipeline: the recent window, the
//! archive backlog, the offline queues.
//!
//! An edit or delete comes with its target's new state, decided by
//! chat-service when the event took its seq; it is stored here as handed,
//! in place of the window's copy unless that copy is newer by the rule of
//! `ChatMessage::supersedes` (a delete beats any edit, a later edit an
//! earlier one). The event itself enters the window without its body.
//!
//! A replay (chat-service sequenced the message before: a retried batch, a
//! re-send) may find its message stored already, and deleted since: then
//! it stores nothing and queues nothing, so a retried append never brings
//! a deleted body back. Only replays pay for that look.

use std::collections::HashMap;

use chat_model::message::{ArchiveEntry, ChatMessage, EventKind};

use chat_redis::{
    connection::{LuaScript, Redis, query_scripted},
    keys::Keys,
};

use super::{
    offline::Queues,
    window::{Window, current, parse_all},
};
use crate::{error::HistoryError, mongo::Archive};

/// Field of the archive stream entry that holds the message JSON.
pub const ARCHIVE_FIELD: &str = "m";

/// Puts ARGV[2], the new state of the message at seq ARGV[1], in the recent
/// window (KEYS[1]) in place of what is there, unless nothing is there (it
/// was archived and trimmed: the archiver stores the state in MongoDB) or
/// what is there supersedes it: a deleted copy, or (unless ARGV[4] is '1',
/// a deleted new state) one with an event at or after ARGV[3] applied. The
/// same comparison as `ChatMessage::supersedes`.
const REPLACE_TARGET: &str = r#"
local items = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[1], 'BYSCORE')
if #items == 0 then return 0 end
for _, item in ipairs(items) do
  local ok, m = pcall(cjson.decode, item)
  if ok and type(m) == 'table' then
    if m.deleted == true then return 0 end
    if ARGV[4] ~= '1' and (tonumber(m.edit_seq) or 0) >= tonumber(ARGV[3]) then return 0 end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

/// One message to store, with the recipients that had no live connection.
pub struct AppendItem {
    pub message: ChatMessage,
    pub offline_recipients: Vec<String>,
    /// On an event: its target's state with it applied (None from a
    /// chat-service older than this field: worked out here, from the window).
    pub target: Option<ChatMessage>,
    /// Sequenced before: an earlier attempt may have stored it.
    pub replay: bool,
}

/// An offline recipient whose socket read their queue after the batch
/// looked presence up: item `item`'s message missed it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late {
    pub item: usize,
    pub user: String,
}

/// Where a replayed item's message stands already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// Nowhere: store it.
    Missing,
    /// Stored (and not deleted): store nothing again, queue it.
    Present,
    /// Deleted since (for an edit: its target is): store and queue none of
    /// its text (an edit still keeps its seq place, without a body).
    Deleted,
}

/// The writing side: the window, the archive backlog, the offline queues.
#[derive(Clone)]
pub struct Appends {
    conn: Redis,
    keys: Keys,
    window: Window,
    queues: Queues,
    replace_target: LuaScript,
    /// ARCHIVE_PARTITIONS: the archive stream a conversation's messages go to.
    pub archive_partitions: usize,
}

impl Appends {
    pub fn new(conn: Redis, keys: Keys, window: Window, queues: Queues) -> Self {
        Self {
            conn,
            keys,
            window,
            queues,
            replace_target: LuaScript::new(REPLACE_TARGET),
            archive_partitions: 1,
        }
    }

    /// Makes a batch durable (see the module); returns the offline
    /// recipients who connected meanwhile. `presence_at`: when chat-service
    /// looked up who was online (0: unknown).
    pub async fn append(
        &self,
        items: &[AppendItem],
        presence_at: i64,
        archive: &Archive,
    ) -> Result<Vec<Late>, HistoryError> {
        let stored = self.replayed(items, archive).await?;
        let legacy = self.legacy_targets(items).await?;
        let mut pipe = redis::pipe();
        let mut pushes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let m = &item.message;
            let state = stored.get(&i).copied();
            let recent = self.keys.recent(m.conversation.as_str());
            let json = serde_json::to_string(m)?;
            match (m.kind, state) {
                // Stored before, and deleted since: nothing of it again.
                (None, Some(Stored::Deleted)) => continue,
                (None, Some(Stored::Present)) => {}
                (None, _) => {
                    pipe.zadd(&recent, &json, m.seq).ignore();
                }
                // An edit whose target was deleted since it took its seq: the
                // event keeps its seq place (without a body, as every stored
                // event), and its text goes nowhere.
                (Some(_), Some(Stored::Deleted)) => {
                    let event = m.stored_event();
                    pipe.zadd(&recent, serde_json::to_string(&event)?, m.seq)
                        .ignore();
                    let partition = chat_redis::keys::partition(
                        m.conversation.as_str(),
                        self.archive_partitions,
                    );
                    pipe.xadd(
                        self.keys.archive(partition),
                        "*",
                        &[(ARCHIVE_FIELD, ArchiveEntry::json(&event, None)?)],
                    )
                    .ignore();
                    continue;
                }
                (Some(_), _) => {
                    let event = serde_json::to_string(&m.stored_event())?;
                    pipe.zadd(&recent, event, m.seq).ignore();
                }
            }
            let target = item.target.as_ref().or(legacy.get(&i));
            if let Some(target) = target {
                self.replace_target.call(
                    &mut pipe,
                    &self.keys.window_script(m.conversation.as_str()),
                    &[
                        target.seq.to_string(),
                        serde_json::to_string(target)?,
                        target.edit_seq.unwrap_or(0).to_string(),
                        if target.deleted { "1" } else { "0" }.to_owned(),
                    ],
                );
                pipe.ignore();
            }
            let partition =
                chat_redis::keys::partition(m.conversation.as_str(), self.archive_partitions);
            pipe.xadd(
                self.keys.archive(partition),
                "*",
                &[(ARCHIVE_FIELD, ArchiveEntry::json(m, target)?)],
            )
            .ignore();
            self.queues
                .push(&mut pipe, &item.offline_recipients, &json, presence_at);
            pushes.extend(item.offline_recipients.iter().map(|u| (i, u)));
        }
        if pipe.cmd_iter().next().is_none() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let replies: Vec<i64> = query_scripted(
            &mut conn,
            &pipe,
            &[self.queues.push_script(), &self.replace_target],
        )
        .await?;
        Ok(late(&pushes, &replies))
    }

    /// Puts stored messages into offline queues only (a live delivery reached
    /// no gateway, or a message too big for one call went in parts). Replays
    /// change nothing (the LPOS check).
    pub async fn enqueue(
        &self,
        items: &[AppendItem],
        presence_at: i64,
    ) -> Result<Vec<Late>, HistoryError> {
        let mut pipe = redis::pipe();
        let mut pushes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let json = serde_json::to_string(&item.message)?;
            self.queues
                .push(&mut pipe, &item.offline_recipients, &json, presence_at);
            pushes.extend(item.offline_recipients.iter().map(|u| (i, u)));
        }
        if pushes.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let replies: Vec<i64> =
            query_scripted(&mut conn, &pipe, &[self.queues.push_script()]).await?;
        Ok(late(&pushes, &replies))
    }

    /// For each replayed message, and each replayed edit (by its target):
    /// whether it is stored already, in the window or the archive, and
    /// whether deleted. A delete replayed needs no look: it is final.
    async fn replayed(
        &self,
        items: &[AppendItem],
        archive: &Archive,
    ) -> Result<HashMap<usize, Stored>, HistoryError> {
        let looks: Vec<(usize, &str, u64)> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.replay)
            .filter_map(|(n, i)| {
                let m = &i.message;
                match m.kind {
                    None => Some((n, m.conversation.as_str(), m.seq)),
                    Some(EventKind::Edit) => Some((n, m.conversation.as_str(), m.target_seq?)),
                    Some(EventKind::Delete) => None,
                }
            })
            .collect();
        let mut out = HashMap::new();
        if looks.is_empty() {
            return Ok(out);
        }
        let wanted: Vec<(&str, u64)> = looks.iter().map(|(_, c, s)| (*c, *s)).collect();
        let windowed = self.window.at_seqs(&wanted).await?;
        for ((n, conversation, seq), found) in looks.into_iter().zip(windowed) {
            let found = match found {
                Some(m) => Some(m),
                // Not in the window: never stored, or archived and trimmed.
                None => archive
                    .at_seqs(conversation, &[seq])
                    .await?
                    .into_iter()
                    .find_map(|d| ChatMessage::try_from(d).ok()),
            };
            let state = match found {
                Some(m) if m.deleted => Stored::Deleted,
                Some(_) => Stored::Present,
                None => Stored::Missing,
            };
            out.insert(n, state);
        }
        Ok(out)
    }

    /// Events from a chat-service that does not hand their target's state
    /// yet: the state worked out from the window's copy, as that release
    /// did. (The archiver does the same for their archive entries.)
    async fn legacy_targets(
        &self,
        items: &[AppendItem],
    ) -> Result<HashMap<usize, ChatMessage>, HistoryError> {
        let events: Vec<(usize, &ChatMessage)> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.target.is_none() && i.message.kind.is_some())
            .map(|(n, i)| (n, &i.message))
            .collect();
        let mut out = HashMap::new();
        if events.is_empty() {
            return Ok(out);
        }
        let mut pipe = redis::pipe();
        for (_, e) in &events {
            let target = e.target_seq.unwrap_or(0);
            pipe.cmd("ZRANGE")
                .arg(self.keys.recent(e.conversation.as_str()))
                .arg(target)
                .arg(target)
                .arg("BYSCORE");
        }
        let mut conn = self.conn.clone();
        let found: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        for ((n, event), copies) in events.into_iter().zip(found) {
            if let Some(mut target) = current(parse_all(&copies)?).pop()
                && target.apply(event)
            {
                out.insert(n, target);
            }
        }
        Ok(out)
    }
}

/// The pushes whose reply says their user read the queue meanwhile.
fn late(pushes: &[(usize, &String)], replies: &[i64]) -> Vec<Late> {
    pushes
        .iter()
        .zip(replies)
        .filter(|(_, r)| **r == 2)
        .map(|((item, user), _)| Late {
            item: *item,
            user: (*user).clone(),
        })
        .collect()
}
