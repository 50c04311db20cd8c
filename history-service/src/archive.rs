//! The archiver: moves the Redis archive backlog into MongoDB in batches.
//!
//! At least once: an entry is acknowledged and deleted from the backlog only
//! after MongoDB has it (duplicates count as done), and its conversation's
//! recent window is trimmed only then. Several history-service instances share
//! the backlog through a consumer group; a dead instance's entries are claimed.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::redis_conn::Redis;
use common::{model::ChatMessage, shutdown::Shutdown, time::now_ms};
use redis::{
    AsyncCommands,
    streams::{StreamId, StreamReadOptions, StreamReadReply},
};

use crate::{
    mongo::{Archive, MessageDoc},
    store::{ARCHIVE_FIELD, RedisStore},
};

const GROUP: &str = "archiver";
/// Entries pending this long on another consumer are taken over.
const CLAIM_IDLE_MS: u64 = 60_000;

/// What the archiver last saw of MongoDB, for /readyz.
#[derive(Default)]
pub struct ArchiveStatus {
    healthy: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl ArchiveStatus {
    pub fn healthy(&self) -> Result<(), String> {
        if self.healthy.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(self
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default()
                .unwrap_or_else(|| "archive not reached yet".to_owned()))
        }
    }

    fn set(&self, result: Result<(), String>) {
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = result.err();
        }
    }
}

pub struct Archiver {
    pub store: RedisStore,
    /// A connection of its own: blocking reads would stall a shared one.
    pub reader: Redis,
    pub archive: Archive,
    pub consumer: String,
    pub batch: usize,
    pub recent_limit: u32,
    pub status: Arc<ArchiveStatus>,
}

impl Archiver {
    pub async fn run(mut self, shutdown: Shutdown) {
        let mut indexes_ready = false;
        let mut backoff = Backoff::default();
        // Our own pending entries first: a restart finishes what it had read.
        let mut read_pending = true;
        let mut last_claim = 0_i64;
        while !shutdown.is_triggered() {
            if !indexes_ready {
                match self.prepare().await {
                    Ok(()) => indexes_ready = true,
                    Err(e) => {
                        self.status.set(Err(e.clone()));
                        tracing::warn!(error = %e, "archive not ready, retrying");
                        backoff.wait(&shutdown).await;
                        continue;
                    }
                }
            }
            if now_ms() - last_claim > CLAIM_IDLE_MS as i64 / 2 {
                last_claim = now_ms();
                if self.claim_abandoned().await {
                    read_pending = true;
                }
            }
            let entries = match self.read(read_pending).await {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the archive backlog failed");
                    backoff.wait(&shutdown).await;
                    continue;
                }
            };
            if read_pending && entries.is_empty() {
                read_pending = false;
                continue;
            }
            if entries.is_empty() {
                continue;
            }
            match self.archive_batch(&entries).await {
                Ok(()) => {
                    backoff.reset();
                    self.status.set(Ok(()));
                }
                Err(e) => {
                    self.status.set(Err(e.clone()));
                    metrics::counter!("history_archive_failures_total").increment(1);
                    tracing::warn!(error = %e, entries = entries.len(), "archiving failed; will retry");
                    read_pending = true;
                    backoff.wait(&shutdown).await;
                }
            }
        }
        tracing::info!("archiver stopped");
    }

    async fn prepare(&mut self) -> Result<(), String> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.store.keys().archive())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.reader)
            .await;
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            return Err(format!("redis: {e}"));
        }
        self.archive
            .ensure_indexes()
            .await
            .map_err(|e| format!("mongodb: {e}"))
    }

    async fn read(&mut self, pending: bool) -> redis::RedisResult<Vec<StreamId>> {
        let mut options = StreamReadOptions::default()
            .group(GROUP, &self.consumer)
            .count(self.batch);
        if !pending {
            options = options.block(1000);
        }
        let id = if pending { "0" } else { ">" };
        let reply: Option<StreamReadReply> = self
            .reader
            .xread_options(&[self.store.keys().archive()], &[id], &options)
            .await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Takes over entries another (dead) instance read but never acknowledged.
    async fn claim_abandoned(&mut self) -> bool {
        let claimed: redis::RedisResult<redis::Value> = redis::cmd("XAUTOCLAIM")
            .arg(self.store.keys().archive())
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(CLAIM_IDLE_MS)
            .arg("0")
            .arg("COUNT")
            .arg(self.batch)
            .arg("JUSTID")
            .query_async(&mut self.reader)
            .await;
        match claimed {
            Ok(redis::Value::Array(parts)) => {
                matches!(parts.get(1), Some(redis::Value::Array(ids)) if !ids.is_empty())
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "claiming abandoned archive entries failed");
                false
            }
        }
    }

    async fn archive_batch(&mut self, entries: &[StreamId]) -> Result<(), String> {
        let mut docs = Vec::with_capacity(entries.len());
        let mut conversations = HashSet::new();
        let mut dead: Vec<(String, String, &'static str)> = Vec::new();
        for entry in entries {
            let raw = entry.get::<String>(ARCHIVE_FIELD).unwrap_or_default();
            match serde_json::from_str::<ChatMessage>(&raw) {
                Ok(m) => {
                    conversations.insert(m.conversation.clone());
                    docs.push(MessageDoc::from(&m));
                }
                Err(_) => {
                    metrics::counter!("history_archive_corrupt_total").increment(1);
                    tracing::error!(id = %entry.id, "corrupt archive entry dead-lettered");
                    dead.push((entry.id.clone(), raw, "unreadable entry"));
                }
            }
        }
        if let Some(first) = entries.first() {
            let entry_ms: i64 = first
                .id
                .split('-')
                .next()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or_else(now_ms);
            metrics::gauge!("history_archive_lag_seconds")
                .set((now_ms() - entry_ms).max(0) as f64 / 1000.0);
        }
        let outcome = self
            .archive
            .insert(&docs)
            .await
            .map_err(|e| format!("mongodb: {e}"))?;
        metrics::counter!("history_archived_total").increment(outcome.inserted as u64);
        metrics::counter!("history_archive_duplicates_total")
            .increment(outcome.duplicates.len() as u64);
        // A duplicate is a replay (same id: done) or a conflict (another
        // message holds that seq): never silently the latter.
        let duplicates: Vec<&MessageDoc> = outcome
            .duplicates
            .iter()
            .filter_map(|i| docs.get(*i))
            .collect();
        let conflicts = self
            .archive
            .conflicts(&duplicates)
            .await
            .map_err(|e| format!("mongodb: {e}"))?;
        for c in &conflicts {
            metrics::counter!("history_archive_conflicts_total").increment(1);
            tracing::error!(
                conversation = %c.conversation_id,
                seq = c.seq,
                id = %c.id,
                "another message already holds this seq; dead-lettered"
            );
            let json = serde_json::to_string(&ChatMessage::from(c.clone())).unwrap_or_default();
            dead.push((
                c.id.clone(),
                json,
                "conversation and seq held by another message",
            ));
        }
        let trims = self.safe_trims(&conversations).await?;

        let keys = self.store.keys();
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let mut pipe = redis::pipe();
        for (id, payload, reason) in &dead {
            pipe.cmd("XADD")
                .arg(keys.archive_dead_letter())
                .arg("MAXLEN")
                .arg("~")
                .arg(common::limits::DEAD_LETTER_MAXLEN)
                .arg("*")
                .arg("id")
                .arg(id)
                .arg(ARCHIVE_FIELD)
                .arg(payload)
                .arg("reason")
                .arg(*reason)
                .ignore();
        }
        pipe.cmd("XACK")
            .arg(keys.archive())
            .arg(GROUP)
            .arg(&ids)
            .ignore();
        pipe.cmd("XDEL").arg(keys.archive()).arg(&ids).ignore();
        for (conv, below) in &trims {
            // Only what MongoDB has confirmed leaves the window, whatever
            // other instances are still archiving.
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(keys.recent(conv))
                .arg("-inf")
                .arg(format!("({below}"))
                .ignore();
        }
        pipe.cmd("XLEN").arg(keys.archive());
        let (backlog,): (u64,) = pipe
            .query_async(&mut self.reader)
            .await
            .map_err(|e| format!("redis: {e}"))?;
        metrics::gauge!("history_archive_backlog").set(backlog as f64);
        if backlog == 0 {
            metrics::gauge!("history_archive_lag_seconds").set(0.0);
        }
        Ok(())
    }

    /// For each conversation whose recent window is over RECENT_LIMIT, the
    /// seq below which it may be trimmed: the oldest messages beyond the
    /// limit, up to the first one MongoDB does not have (another instance
    /// may still be archiving it).
    async fn safe_trims(
        &mut self,
        conversations: &HashSet<String>,
    ) -> Result<Vec<(String, u64)>, String> {
        let keys = self.store.keys().clone();
        let mut pipe = redis::pipe();
        let convs: Vec<&String> = conversations.iter().collect();
        for conv in &convs {
            pipe.cmd("ZRANGE")
                .arg(keys.recent(conv))
                .arg(0)
                .arg(-(i64::from(self.recent_limit)) - 1)
                .arg("WITHSCORES");
        }
        let excess: Vec<Vec<(String, f64)>> = pipe
            .query_async(&mut self.reader)
            .await
            .map_err(|e| format!("redis: {e}"))?;
        let mut trims = Vec::new();
        for (conv, members) in convs.into_iter().zip(excess) {
            let mut seqs: Vec<u64> = members.iter().map(|(_, s)| *s as u64).collect();
            seqs.dedup();
            if seqs.is_empty() {
                continue;
            }
            let archived = self
                .archive
                .archived_seqs(conv, &seqs)
                .await
                .map_err(|e| format!("mongodb: {e}"))?;
            let below = seqs
                .iter()
                .find(|s| !archived.contains(s))
                .copied()
                .unwrap_or_else(|| seqs[seqs.len() - 1] + 1);
            if below > seqs[0] {
                trims.push((conv.clone(), below));
            }
        }
        Ok(trims)
    }
}

/// Exponential backoff from 100 ms to 5 s, cut short by shutdown.
#[derive(Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    async fn wait(&mut self, shutdown: &Shutdown) {
        let delay =
            Duration::from_millis(100 * 2_u64.pow(self.attempt.min(6))).min(Duration::from_secs(5));
        self.attempt += 1;
        tokio::select! {
            () = tokio::time::sleep(delay) => {},
            () = shutdown.clone().wait() => {},
        }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}
