//! The archiver: moves the Redis archive backlog into MongoDB in batches.
//!
//! At least once: an entry is acknowledged and deleted from the backlog only
//! after MongoDB has it (duplicates count as done), and its conversation's
//! recent window is trimmed only then. Several history-service instances share
//! the backlog through a consumer group; a dead instance's entries are claimed.
//!
//! An edit or delete is archived as an event without its body, and its
//! target's new state, decided by chat-service and carried in the entry,
//! is stored as handed (`Archive::store_state`), whether the target is
//! archived yet or not. Entries from before states were carried have their
//! event applied to the archived target instead: a target still on its way
//! (in the recent window, not yet in MongoDB) fails the batch, which is
//! retried.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chat_redis::consumer::{Consumer, Group, Handler};

use chat_model::{
    ids::ConversationId,
    message::{self, ArchiveEntry, ChatMessage},
    time::now_ms,
};
use redis::streams::StreamId;

pub use crate::archive_status::ArchiveStatus;
use service_kit::error::Chain;

use crate::{
    error::HistoryError,
    mongo::{Applied, Archive, ArchiveError, MessageDoc},
    store::{ARCHIVE_FIELD, RedisStore},
};

pub const GROUP: &str = "archiver";
/// Entries pending this long on another consumer are taken over.
const CLAIM_IDLE: Duration = Duration::from_secs(60);

pub struct Archiver {
    pub store: RedisStore,
    pub archive: Archive,
    pub recent_limit: u32,
    pub status: Arc<ArchiveStatus>,
    /// Which archive partition this archiver works (a metrics label).
    pub partition: String,
}

/// The archive backlog's consumer group; a dead instance's entries are
/// claimed after a minute. Nothing is dead-lettered for its delivery count:
/// MongoDB being down is the only reason a batch fails twice, and unreadable
/// entries are dead-lettered as they are read.
pub fn group(store: &RedisStore, partition: usize, consumer: String, batch: usize) -> Group {
    Group {
        stream: store.keys().archive(partition),
        group: GROUP.to_owned(),
        consumer,
        batch,
        claim_idle: CLAIM_IDLE,
        max_deliveries: None,
        dead_letter: store.keys().archive_dead_letter(partition),
        field: ARCHIVE_FIELD,
    }
}

/// Why a batch was not archived (it is read again, after a backoff).
#[derive(Debug, thiserror::Error)]
pub enum ArchiverError {
    #[error("archiving")]
    Archive(#[from] ArchiveError),
    #[error("reading the recent window")]
    Window(#[from] HistoryError),
    #[error("reading the recent windows to trim")]
    Redis(#[from] redis::RedisError),
    /// Its target is in the recent window but not archived yet (another
    /// instance is on it): tried again.
    #[error("{conversation} seq {seq}: the target of an event is not archived yet")]
    TargetNotArchived {
        conversation: ConversationId,
        seq: u64,
    },
}

impl Handler for Archiver {
    type Error = ArchiverError;

    async fn prepare(&mut self) -> Result<(), ArchiverError> {
        let ready = self.archive.ensure_indexes().await;
        if let Err(e) = &ready {
            self.status.set(Err(Chain(e).to_string()));
        }
        Ok(ready?)
    }

    async fn handle(
        &mut self,
        consumer: &mut Consumer,
        entries: &[StreamId],
    ) -> Result<(), ArchiverError> {
        self.record_backlog(consumer);
        self.archive_batch(consumer, entries).await?;
        self.status.set(Ok(()));
        Ok(())
    }

    fn idle(&mut self, consumer: &Consumer) {
        self.record_backlog(consumer);
    }

    fn failed(&mut self, error: &ArchiverError) {
        self.status.set(Err(Chain(error).to_string()));
        metrics::counter!("history_archive_failures_total").increment(1);
    }
}

/// An entry set aside for the dead-letter stream: id, payload, reason.
type Dead = (String, String, &'static str);

/// A batch's readable messages as documents, the conversations they touch,
/// and what could not be read.
#[derive(Default)]
struct Decoded {
    docs: Vec<MessageDoc>,
    /// The new states of the targets of the batch's edits and deletes.
    states: Vec<ChatMessage>,
    /// Edits and deletes without a state (older entries), whole, to apply
    /// to their targets.
    events: Vec<ChatMessage>,
    /// The conversations touched, each with its highest seq in the batch.
    conversations: HashMap<ConversationId, u64>,
    dead: Vec<Dead>,
}

impl Archiver {
    async fn archive_batch(
        &mut self,
        consumer: &mut Consumer,
        entries: &[StreamId],
    ) -> Result<(), ArchiverError> {
        let Decoded {
            docs,
            states,
            mut events,
            conversations,
            mut dead,
        } = decode(entries);
        record_lag(&self.partition, entries);
        dead.extend(self.insert(&docs).await?);
        for state in &states {
            self.archive.store_state(state).await?;
        }
        events.sort_by_key(|e| e.seq);
        self.apply_events(&events).await?;
        let trims = self.safe_trims(&conversations).await?;
        self.finish(consumer, entries, &dead, &trims);
        record_done(entries);
        Ok(())
    }

    /// Applies each event to its archived target. A target not archived yet
    /// but still in the recent window is on its way: the batch fails and is
    /// retried. One in neither place never was stored; nothing to change.
    async fn apply_events(&self, events: &[ChatMessage]) -> Result<(), ArchiverError> {
        for event in events {
            let applied = self.archive.apply_event(event).await?;
            if applied == Applied::Done {
                continue;
            }
            let target = event.target_seq.unwrap_or(0);
            let in_window = self
                .store
                .at_seqs(&[(event.conversation.as_str(), target)])
                .await?;
            if in_window.first().is_some_and(Option::is_some) {
                return Err(ArchiverError::TargetNotArchived {
                    conversation: event.conversation.clone(),
                    seq: target,
                });
            }
            tracing::warn!(conversation = %event.conversation, seq = target, "an event's target is stored nowhere; skipped");
        }
        Ok(())
    }

    /// Inserts `docs`; returns the conflicts, to dead-letter. A duplicate is
    /// a replay (same id: done) or a conflict (another message holds that
    /// seq): never silently the latter.
    async fn insert(&self, docs: &[MessageDoc]) -> Result<Vec<Dead>, ArchiverError> {
        let outcome = self.archive.insert(docs).await?;
        metrics::counter!("history_archived_total").increment(outcome.inserted as u64);
        metrics::counter!("history_archive_duplicates_total")
            .increment(outcome.duplicates.len() as u64);
        let duplicates: Vec<&MessageDoc> = outcome
            .duplicates
            .iter()
            .filter_map(|i| docs.get(*i))
            .collect();
        let conflicts = self.archive.conflicts(&duplicates).await?;
        Ok(conflicts
            .into_iter()
            .map(|c| {
                metrics::counter!("history_archive_conflicts_total").increment(1);
                tracing::error!(
                    conversation = %c.conversation_id,
                    seq = c.seq,
                    id = %c.id,
                    "another message already holds this seq; dead-lettered"
                );
                let id = c.id.clone();
                // The document that lost (it is ours, so it converts).
                let json = ChatMessage::try_from(c)
                    .ok()
                    .and_then(|m| serde_json::to_string(&m).ok())
                    .unwrap_or_default();
                (id, json, "conversation and seq held by another message")
            })
            .collect())
    }

    /// The backlog as the last read measured it (with the batch being
    /// written, and while MongoDB is down: batches are read again and again).
    fn record_backlog(&self, consumer: &Consumer) {
        let Some(backlog) = consumer.length() else {
            return;
        };
        let partition = self.partition.clone();
        metrics::gauge!("history_archive_backlog", "partition" => partition.clone())
            .set(backlog as f64);
        if backlog == 0 {
            metrics::gauge!("history_archive_lag_seconds", "partition" => partition).set(0.0);
        }
    }

    /// Dead letters, acknowledgement, and the trims, in the consumer's
    /// finishing pipeline (sent with its next read, which also measures the
    /// backlog: see [`Self::record_backlog`]).
    fn finish(
        &self,
        consumer: &mut Consumer,
        entries: &[StreamId],
        dead: &[Dead],
        trims: &[(ConversationId, u64)],
    ) {
        let keys = self.store.keys();
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let (group, pipe) = consumer.finishing();
        for (id, payload, reason) in dead {
            group.dead_letter(pipe, id, payload, reason);
        }
        group.ack(pipe, &ids);
        for (conv, below) in trims {
            // Only what MongoDB has confirmed leaves the window, whatever
            // other instances are still archiving.
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(keys.recent(conv.as_str()))
                .arg("-inf")
                .arg(format!("({below}"))
                .ignore();
        }
    }

    /// For each conversation whose recent window is over RECENT_LIMIT, the
    /// seq below which it may be trimmed: the oldest messages beyond the
    /// limit, up to the first one MongoDB does not have (another instance
    /// may still be archiving it).
    ///
    /// A window holds at most one member per seq taken, so a conversation
    /// whose highest seq here is within the limit cannot be over it; it is
    /// not even read. (A later message of it makes a later batch look.)
    /// Most conversations are short: this spares one read per message.
    async fn safe_trims(
        &mut self,
        conversations: &HashMap<ConversationId, u64>,
    ) -> Result<Vec<(ConversationId, u64)>, ArchiverError> {
        let keys = self.store.keys().clone();
        let limit = u64::from(self.recent_limit);
        let convs: Vec<&ConversationId> = conversations
            .iter()
            .filter(|(_, top)| **top > limit)
            .map(|(conv, _)| conv)
            .collect();
        if convs.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for conv in &convs {
            pipe.cmd("ZRANGE")
                .arg(keys.recent(conv.as_str()))
                .arg(0)
                .arg(-(i64::from(self.recent_limit)) - 1)
                .arg("WITHSCORES");
        }
        let excess: Vec<Vec<(String, f64)>> = pipe.query_async(&mut self.store.conn()).await?;
        let mut trims = Vec::new();
        for (conv, members) in convs.into_iter().zip(excess) {
            let mut seqs: Vec<u64> = members.iter().map(|(_, s)| *s as u64).collect();
            seqs.dedup();
            if seqs.is_empty() {
                continue;
            }
            let archived = self.archive.archived_seqs(conv.as_str(), &seqs).await?;
            let below = seqs
                .iter()
                .find(|s| !archived.contains(s))
                .copied()
                .unwrap_or_else(|| seqs[seqs.len() - 1] + 1);
            if below > seqs[0] {
                trims.push(((*conv).clone(), below));
            }
        }
        Ok(trims)
    }
}

fn decode(entries: &[StreamId]) -> Decoded {
    let mut out = Decoded::default();
    for entry in entries {
        let raw = entry.get::<String>(ARCHIVE_FIELD).unwrap_or_default();
        match serde_json::from_str::<ArchiveEntry>(&raw) {
            Ok(ArchiveEntry { v, message, target }) if message::readable(v) => {
                let top = out
                    .conversations
                    .entry(message.conversation.clone())
                    .or_default();
                *top = (*top).max(message.seq);
                if message.kind.is_some() {
                    out.docs.push(MessageDoc::from(&message.stored_event()));
                    match target {
                        Some(state) => out.states.push(state),
                        None => out.events.push(message),
                    }
                } else {
                    out.docs.push(MessageDoc::from(&message));
                }
            }
            _ => {
                metrics::counter!("history_archive_corrupt_total").increment(1);
                tracing::error!(id = %entry.id, "corrupt archive entry dead-lettered");
                out.dead.push((entry.id.clone(), raw, "unreadable entry"));
            }
        }
    }
    out
}

/// When an entry was added: the time part of its stream id.
fn added_ms(entry: &StreamId) -> i64 {
    entry
        .id
        .split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(now_ms)
}

/// The archive lag: how old the batch's first entry is.
fn record_lag(partition: &str, entries: &[StreamId]) {
    if let Some(first) = entries.first() {
        metrics::gauge!("history_archive_lag_seconds", "partition" => partition.to_owned())
            .set((now_ms() - added_ms(first)).max(0) as f64 / 1000.0);
    }
}

/// A batch MongoDB has: its size, and how long each entry waited.
fn record_done(entries: &[StreamId]) {
    metrics::histogram!("history_archive_batch_entries").record(entries.len() as f64);
    let now = now_ms();
    for entry in entries {
        metrics::histogram!("history_archive_age_seconds")
            .record((now - added_ms(entry)).max(0) as f64 / 1000.0);
    }
}
