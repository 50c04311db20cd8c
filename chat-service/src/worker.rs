//! The consumer loop: own pending entries first (a restart finishes its work),
//! then new entries; every so often it claims entries that a dead worker left
//! pending. Entries delivered too often go to the dead-letter stream.

use std::time::{Duration, Instant};

use common::redis_conn::Redis;
use common::{keys::Keys, shutdown::Shutdown};
use redis::{
    AsyncCommands,
    streams::{
        StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamPendingCountReply,
        StreamReadOptions, StreamReadReply,
    },
};

use crate::batch::{BatchError, BatchProcessor, BatchStats};

pub const GROUP: &str = "chat-service";

/// Online recipients per message from which a batch counts as a wide fan-out.
/// After one, a short read lingers (BATCH_LINGER_MS): each gateway then gets
/// fewer, larger deliveries and each socket fewer, larger writes, which is
/// where a big room's cost lies. DMs and small rooms never wait.
pub const WIDE_FANOUT: usize = 32;

pub struct Worker {
    pub keys: Keys,
    /// A connection of its own: blocking reads would stall a shared one.
    pub reader: Redis,
    pub consumer: String,
    pub batch_size: usize,
    /// How long a short read waits for more entries (see BATCH_LINGER_MS).
    pub linger: Duration,
    /// Whether the last batch fanned out widely, so the next read lingers.
    pub wide: bool,
    pub claim_idle: Duration,
    pub max_deliveries: usize,
    pub processor: BatchProcessor,
    pub progress: std::sync::Arc<crate::progress::Progress>,
}

impl Worker {
    /// Creates the consumer group (and the stream) if missing.
    pub async fn ensure_group(&mut self) -> redis::RedisResult<()> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.ingress())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.reader)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e),
            _ => Ok(()),
        }
    }

    pub async fn run(mut self, shutdown: Shutdown) {
        let mut read_pending = true;
        // Poison is judged only on entries that a crash left behind: claimed
        // ones, and our own pending ones at start. In-process retries of a
        // transient failure (history-service down) must never dead-letter.
        let mut first_read = true;
        let mut group_ready = false;
        let mut last_claim = Instant::now();
        let mut failures = 0_u32;
        while !shutdown.is_triggered() {
            if !group_ready {
                match self.ensure_group().await {
                    Ok(()) => group_ready = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot create consumer group");
                        backoff(&mut failures, &shutdown).await;
                        continue;
                    }
                }
            }
            let claimed = if last_claim.elapsed() >= self.claim_idle / 2 {
                last_claim = Instant::now();
                self.claim().await
            } else {
                Ok(Vec::new())
            };
            let (entries, recovering, check_poison) = match claimed {
                Ok(c) if !c.is_empty() => (Ok(c), true, true),
                _ => (
                    self.read(read_pending).await,
                    read_pending,
                    read_pending && first_read,
                ),
            };
            let entries = match entries {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the ingress stream failed");
                    if e.code() == Some("NOGROUP") {
                        group_ready = false;
                    }
                    backoff(&mut failures, &shutdown).await;
                    continue;
                }
            };
            if entries.is_empty() {
                self.progress.advanced();
                if recovering {
                    read_pending = false;
                    first_read = false;
                }
                continue;
            }
            let entries = if check_poison {
                match self.drop_poison(entries).await {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "checking delivery counts failed");
                        backoff(&mut failures, &shutdown).await;
                        continue;
                    }
                }
            } else {
                entries
            };
            let started = Instant::now();
            match self.process_bisecting(&entries).await {
                Ok(stats) => {
                    failures = 0;
                    self.progress.advanced();
                    let messages = stats.fresh + stats.replayed;
                    self.wide = messages > 0 && stats.recipients >= WIDE_FANOUT * messages;
                    metrics::histogram!("chat_batch_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::counter!("chat_messages_total", "result" => "fresh")
                        .increment(stats.fresh as u64);
                    metrics::counter!("chat_messages_total", "result" => "replayed")
                        .increment(stats.replayed as u64);
                    metrics::counter!("chat_messages_total", "result" => "rejected")
                        .increment(stats.rejected as u64);
                    metrics::counter!("chat_dead_letter_total").increment(stats.dead as u64);
                }
                Err(e) => {
                    tracing::warn!(error = %e, entries = entries.len(), "batch failed; will retry");
                    metrics::counter!("chat_batch_failures_total").increment(1);
                    self.progress.failed();
                    read_pending = true;
                    backoff(&mut failures, &shutdown).await;
                }
            }
        }
        tracing::info!(consumer = %self.consumer, "worker stopped");
    }

    /// Processes `entries`. A failure that is the batch's own content (see
    /// [`BatchError::is_content`]) would fail every retry of the same batch,
    /// wedging the worker: the batch is split in halves until the entry at
    /// fault stands alone, and that one goes to the dead-letter stream.
    fn process_bisecting<'a>(
        &'a mut self,
        entries: &'a [StreamId],
    ) -> futures::future::BoxFuture<'a, Result<BatchStats, BatchError>> {
        Box::pin(async move {
            match self.processor.process(entries).await {
                Err(e) if e.is_content() => {
                    if let [entry] = entries {
                        tracing::error!(id = %entry.id, error = %e, "entry refused for its content; dead-lettered");
                        self.dead_letter(entry, &e.to_string()).await?;
                        return Ok(BatchStats {
                            dead: 1,
                            ..BatchStats::default()
                        });
                    }
                    metrics::counter!("chat_batch_bisections_total").increment(1);
                    let (left, right) = entries.split_at(entries.len() / 2);
                    let left = self.process_bisecting(left).await?;
                    let right = self.process_bisecting(right).await?;
                    Ok(left + right)
                }
                other => other,
            }
        })
    }

    /// Moves one entry to the dead-letter stream (acknowledged and deleted).
    async fn dead_letter(&mut self, entry: &StreamId, reason: &str) -> Result<(), BatchError> {
        let field = entry
            .get::<String>(common::model::INGRESS_FIELD)
            .unwrap_or_default();
        self.processor.tombstone(&field).await?;
        let mut pipe = redis::pipe();
        crate::dead_letter::add(&mut pipe, &self.keys, &entry.id, &field, reason);
        pipe.cmd("XACK")
            .arg(self.keys.ingress())
            .arg(GROUP)
            .arg(&entry.id)
            .ignore()
            .cmd("XDEL")
            .arg(self.keys.ingress())
            .arg(&entry.id)
            .ignore();
        pipe.query_async::<()>(&mut self.reader).await?;
        Ok(())
    }

    async fn read(&mut self, pending: bool) -> redis::RedisResult<Vec<StreamId>> {
        let mut options = StreamReadOptions::default()
            .group(GROUP, &self.consumer)
            .count(self.batch_size);
        if !pending {
            options = options.block(1000);
        }
        let reply: Option<StreamReadReply> = self
            .reader
            .xread_options(
                &[self.keys.ingress()],
                &[if pending { "0" } else { ">" }],
                &options,
            )
            .await?;
        let mut entries: Vec<StreamId> = reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default();
        if !pending
            && self.wide
            && !self.linger.is_zero()
            && !entries.is_empty()
            && entries.len() < self.batch_size
        {
            tokio::time::sleep(self.linger).await;
            let more: redis::RedisResult<Option<StreamReadReply>> = self
                .reader
                .xread_options(
                    &[self.keys.ingress()],
                    &[">"],
                    &StreamReadOptions::default()
                        .group(GROUP, &self.consumer)
                        .count(self.batch_size - entries.len()),
                )
                .await;
            // The first read's entries are ours now: process them whatever
            // became of the second read.
            match more {
                Ok(more) => {
                    entries.extend(more.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids));
                }
                Err(e) => tracing::warn!(error = %e, "lingering read failed"),
            }
        }
        Ok(entries)
    }

    /// Takes over entries idle longer than CLAIM_IDLE_MS on any consumer.
    async fn claim(&mut self) -> redis::RedisResult<Vec<StreamId>> {
        let reply: StreamAutoClaimReply = self
            .reader
            .xautoclaim_options(
                self.keys.ingress(),
                GROUP,
                &self.consumer,
                self.claim_idle.as_millis() as u64,
                "0",
                StreamAutoClaimOptions::default().count(self.batch_size),
            )
            .await?;
        if !reply.claimed.is_empty() {
            tracing::info!(count = reply.claimed.len(), "claimed abandoned entries");
            metrics::counter!("chat_claimed_total").increment(reply.claimed.len() as u64);
        }
        Ok(reply.claimed)
    }

    /// Moves entries delivered MAX_DELIVERIES times or more to the dead-letter
    /// stream and returns the rest.
    async fn drop_poison(&mut self, entries: Vec<StreamId>) -> redis::RedisResult<Vec<StreamId>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(entries);
        };
        let pending: StreamPendingCountReply = self
            .reader
            .xpending_consumer_count(
                self.keys.ingress(),
                GROUP,
                &first.id,
                &last.id,
                entries.len(),
                &self.consumer,
            )
            .await?;
        let poison: Vec<&str> = pending
            .ids
            .iter()
            .filter(|p| p.times_delivered > self.max_deliveries)
            .map(|p| p.id.as_str())
            .collect();
        if poison.is_empty() {
            return Ok(entries);
        }
        let mut pipe = redis::pipe();
        for entry in entries.iter().filter(|e| poison.contains(&e.id.as_str())) {
            let field = entry
                .get::<String>(common::model::INGRESS_FIELD)
                .unwrap_or_default();
            // A poison entry that took a seq leaves a tombstone: no gap.
            if let Err(e) = self.processor.tombstone(&field).await {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::IoError,
                    "cannot store a tombstone",
                    e.to_string(),
                )));
            }
            crate::dead_letter::add(
                &mut pipe,
                &self.keys,
                &entry.id,
                &field,
                "too many deliveries",
            );
        }
        pipe.cmd("XACK")
            .arg(self.keys.ingress())
            .arg(GROUP)
            .arg(&poison)
            .ignore();
        pipe.cmd("XDEL")
            .arg(self.keys.ingress())
            .arg(&poison)
            .ignore();
        pipe.query_async::<()>(&mut self.reader).await?;
        tracing::error!(
            count = poison.len(),
            "entries moved to the dead-letter stream"
        );
        metrics::counter!("chat_dead_letter_total").increment(poison.len() as u64);
        Ok(entries
            .into_iter()
            .filter(|e| !poison.contains(&e.id.as_str()))
            .collect())
    }
}

/// Exponential backoff, 100 ms to 5 s, cut short by shutdown.
async fn backoff(failures: &mut u32, shutdown: &Shutdown) {
    let delay =
        Duration::from_millis(100 * 2_u64.pow((*failures).min(6))).min(Duration::from_secs(5));
    *failures += 1;
    tokio::select! {
        () = tokio::time::sleep(delay) => {},
        () = shutdown.clone().wait() => {},
    }
}
