//! The chat worker: a handler of the ingress stream's consumer group (the
//! loop, claims and poison counting are `chat_redis::consumer`'s). It runs each
//! batch through [`BatchProcessor`], splits batches whose content a
//! downstream refuses, and lingers after wide fan-outs.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chat_redis::consumer::{Consumer, Handler};
use redis::streams::StreamId;

use crate::{
    error::BatchError,
    pipeline::{BatchProcessor, BatchStats},
    progress::Progress,
};

pub const GROUP: &str = chat_model::message::INGRESS_GROUP;

/// Online recipients per message from which a batch counts as a wide fan-out.
/// After one, a short read lingers (BATCH_LINGER_MS): each gateway then gets
/// fewer, larger deliveries and each socket fewer, larger writes, which is
/// where a big room's cost lies. DMs and small rooms wait only if
/// NARROW_BATCH_LINGER_MS is set.
pub const WIDE_FANOUT: usize = 32;

pub struct Worker {
    pub processor: BatchProcessor,
    /// How long a short read waits for more entries (see BATCH_LINGER_MS).
    pub linger: Duration,
    /// The same after a narrow batch (NARROW_BATCH_LINGER_MS; zero: never).
    pub narrow_linger: Duration,
    /// Whether the last batch fanned out widely, so the next read lingers.
    pub wide: bool,
    pub progress: Arc<Progress>,
}

impl Handler for Worker {
    type Error = BatchError;

    async fn handle(
        &mut self,
        consumer: &mut Consumer,
        entries: &[StreamId],
    ) -> Result<(), BatchError> {
        let started = Instant::now();
        metrics::histogram!("chat_batch_entries").record(entries.len() as f64);
        let stats = self.process_bisecting(consumer, entries).await?;
        self.progress.advanced();
        let messages = stats.fresh + stats.replayed;
        self.wide = messages > 0 && stats.recipients >= WIDE_FANOUT * messages;
        metrics::histogram!("chat_batch_seconds").record(started.elapsed().as_secs_f64());
        for (result, n) in [
            ("fresh", stats.fresh),
            ("replayed", stats.replayed),
            ("rejected", stats.rejected),
        ] {
            metrics::counter!("chat_messages_total", "result" => result).increment(n as u64);
        }
        metrics::counter!("chat_dead_letter_total").increment(stats.dead as u64);
        Ok(())
    }

    /// A poison entry that took a seq leaves a tombstone: no gap.
    async fn before_dead_letter(&mut self, entry: &StreamId) -> Result<(), BatchError> {
        let payload = self.processor.group.payload(entry);
        self.processor.tombstone(&payload).await
    }

    fn linger(&self) -> Duration {
        if self.wide {
            self.linger
        } else {
            self.narrow_linger
        }
    }

    fn idle(&mut self, _consumer: &Consumer) {
        self.progress.advanced();
    }

    fn failed(&mut self, _error: &BatchError) {
        metrics::counter!("chat_batch_failures_total").increment(1);
        self.progress.failed();
    }

    fn dead_lettered(&mut self, count: usize) {
        metrics::counter!("chat_dead_letter_total").increment(count as u64);
    }
}

impl Worker {
    /// Processes `entries`. A failure that is the batch's own content (see
    /// [`BatchError::is_content`]) would fail every retry of the same batch,
    /// wedging the worker: the batch is split in halves until the entry at
    /// fault stands alone, and that one goes to the dead-letter stream.
    fn process_bisecting<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        entries: &'a [StreamId],
    ) -> futures::future::BoxFuture<'a, Result<BatchStats, BatchError>> {
        Box::pin(async move {
            match self.processor.process(entries, consumer.finish()).await {
                Err(e) if e.is_content() => {
                    if let [entry] = entries {
                        tracing::error!(id = %entry.id, error = %service_kit::error::Chain(&e), "entry refused for its content; dead-lettered");
                        let payload = consumer.group.payload(entry);
                        self.processor.tombstone(&payload).await?;
                        let reason = service_kit::error::Chain(&e).to_string();
                        consumer.dead_letter_now(entry, &reason).await?;
                        return Ok(BatchStats {
                            dead: 1,
                            ..BatchStats::default()
                        });
                    }
                    metrics::counter!("chat_batch_bisections_total").increment(1);
                    let (left, right) = entries.split_at(entries.len() / 2);
                    let left = self.process_bisecting(consumer, left).await?;
                    let right = self.process_bisecting(consumer, right).await?;
                    Ok(left + right)
                }
                other => other,
            }
        })
    }
}
