//! The loop every consumer runs. At least once: an entry leaves the stream
//! only when its handler acknowledged it, so a crash at any point means the
//! entry is handled again (by this consumer after a restart, or by another
//! that claims it), and handlers make every step idempotent.
//!
//! Poison is judged only on entries that a crash left behind: claimed ones,
//! and this consumer's own pending ones at start. In-process retries of a
//! transient failure (a downstream service down) never count towards it,
//! even when a long backoff lets this consumer claim its own failed entries.

use std::{
    collections::HashSet,
    future::Future,
    time::{Duration, Instant},
};

use redis::streams::StreamId;
use service_kit::{backoff::Backoff, error::Chain, shutdown::Shutdown};

use super::group::Consumer;

/// What a consumer does with its entries.
pub trait Handler: Send {
    /// Logged with its whole `source()` chain.
    type Error: std::error::Error + Send + 'static;

    /// Runs before the first read and again after a failure of it (indexes,
    /// say). A failure is retried with backoff.
    fn prepare(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// Handles `entries` and, on success, has acknowledged every one of them
    /// (with [`super::group::Group::ack`], in [`Consumer::finish`] or whatever
    /// pipeline finishes them). An error leaves them pending: they are read
    /// again, after a backoff.
    fn handle(
        &mut self,
        consumer: &mut Consumer,
        entries: &[StreamId],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Runs for an entry about to be dead-lettered for too many deliveries
    /// (to leave a tombstone, say). An error keeps it, for a retry.
    fn before_dead_letter(
        &mut self,
        _entry: &StreamId,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// How long a short read of new entries waits for more.
    fn linger(&self) -> Duration {
        Duration::ZERO
    }

    /// A read found nothing to do: the consumer is caught up.
    fn idle(&mut self, _consumer: &Consumer) {}

    /// A batch failed and will be retried.
    fn failed(&mut self, _error: &Self::Error) {}

    /// Entries went to the dead-letter stream for too many deliveries.
    fn dead_lettered(&mut self, _count: usize) {}
}

/// Why a step of the loop failed; it is tried again after a backoff.
#[derive(Debug, thiserror::Error)]
enum StepError<E: std::error::Error + 'static> {
    #[error("{what}: Redis failed")]
    Redis {
        what: &'static str,
        #[source]
        source: redis::RedisError,
    },
    #[error("the handler's {what} failed")]
    Handler {
        what: &'static str,
        #[source]
        source: E,
    },
    #[error("a batch of {entries} entries failed")]
    Batch {
        entries: usize,
        #[source]
        source: E,
    },
}

fn redis_failed<E: std::error::Error>(
    what: &'static str,
) -> impl FnOnce(redis::RedisError) -> StepError<E> {
    move |source| StepError::Redis { what, source }
}

/// Works `consumer`'s stream with `handler` until shutdown.
pub async fn run<H: Handler>(mut consumer: Consumer, mut handler: H, shutdown: Shutdown) {
    let mut state = State {
        read_pending: true,
        first_read: true,
        ready: false,
        // Claim at once: a consumer replacing a dead one takes its work now.
        last_claim: None,
        last_sweep: None,
        backoff: Backoff::default(),
        retrying: HashSet::new(),
    };
    while !shutdown.is_triggered() {
        if !state.ready {
            match prepare(&mut consumer, &mut handler).await {
                Ok(()) => state.ready = true,
                Err(e) => {
                    tracing::warn!(stream = %consumer.group.stream, error = %Chain(&e), "consumer not ready, retrying");
                    state.backoff.wait(&shutdown).await;
                    continue;
                }
            }
        }
        if let Err(e) = step(&mut consumer, &mut handler, &mut state).await {
            tracing::warn!(stream = %consumer.group.stream, error = %Chain(&e), "will retry");
            state.backoff.wait(&shutdown).await;
        }
    }
    // The last batch's acknowledgements; if they are lost, it is replayed.
    if let Err(e) = consumer.flush().await {
        tracing::warn!(stream = %consumer.group.stream, error = %e, "finishing the last batch failed");
    }
    tracing::info!(stream = %consumer.group.stream, consumer = %consumer.group.consumer, "consumer stopped");
}

struct State {
    /// Whether the next read is of this consumer's own pending entries.
    read_pending: bool,
    /// Whether no read of pending entries has finished yet (poison check).
    first_read: bool,
    ready: bool,
    last_claim: Option<Instant>,
    last_sweep: Option<Instant>,
    backoff: Backoff,
    /// The entries of the batch that failed last: this consumer's own
    /// in-process retries, never poison.
    retrying: HashSet<String>,
}

async fn prepare<H: Handler>(
    consumer: &mut Consumer,
    handler: &mut H,
) -> Result<(), StepError<H::Error>> {
    consumer
        .ensure_group()
        .await
        .map_err(redis_failed("making the group"))?;
    handler
        .prepare()
        .await
        .map_err(|source| StepError::Handler {
            what: "preparation",
            source,
        })
}

/// One read and what follows it. An error means: back off, then go on.
async fn step<H: Handler>(
    consumer: &mut Consumer,
    handler: &mut H,
    state: &mut State,
) -> Result<(), StepError<H::Error>> {
    sweep_if_due(consumer, state).await;
    let claimed = claim_if_due(consumer, state).await;
    if consumer.take_finish_failed() {
        state.read_pending = true;
    }
    let (entries, recovering, check_poison) = match claimed {
        claimed if !claimed.is_empty() => (claimed, true, true),
        _ => {
            let pending = state.read_pending;
            let entries = consumer.read(pending, handler.linger()).await;
            if consumer.take_finish_failed() {
                // The last batch may not be acknowledged: read it again
                // (a replay is answered as the same message).
                state.read_pending = true;
            }
            let entries = entries.map_err(|e| {
                if e.code() == Some("NOGROUP") {
                    // The stream was deleted: make the group again.
                    state.ready = false;
                }
                redis_failed("reading")(e)
            })?;
            (entries, pending, pending && state.first_read)
        }
    };
    if entries.is_empty() {
        handler.idle(consumer);
        if recovering {
            state.read_pending = false;
            state.first_read = false;
        }
        return Ok(());
    }
    let entries = if check_poison {
        drop_poison(consumer, handler, entries, &state.retrying).await?
    } else {
        entries
    };
    if entries.is_empty() {
        return Ok(());
    }
    match handler.handle(consumer, &entries).await {
        Ok(()) => {
            state.backoff.reset();
            state.retrying.clear();
            consumer.grow();
            Ok(())
        }
        Err(e) => {
            handler.failed(&e);
            // A batch that failed (a timeout, most often, when the system is
            // overloaded) is retried in halves: never the same big batch
            // failing the same way again.
            if entries.len() > 1 {
                consumer.shrink(entries.len());
                tracing::warn!(stream = %consumer.group.stream, limit = consumer.limit(), "batch failed; reading fewer entries");
            }
            state.retrying = entries.iter().map(|e| e.id.clone()).collect();
            // What stayed pending is read again, in order.
            state.read_pending = true;
            Err(StepError::Batch {
                entries: entries.len(),
                source: e,
            })
        }
    }
}

/// How often a consumer looks for gone ones, and how long one must have
/// been idle with nothing pending to count as gone (at least this, and ten
/// claim times).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const GONE_AFTER: Duration = Duration::from_secs(300);

/// Removes consumers that are gone, now and then (see [`Consumer::sweep_gone`]).
async fn sweep_if_due(consumer: &mut Consumer, state: &mut State) {
    if state
        .last_sweep
        .is_some_and(|at| at.elapsed() < SWEEP_EVERY)
    {
        return;
    }
    state.last_sweep = Some(Instant::now());
    let idle = GONE_AFTER.max(consumer.group.claim_idle * 10);
    match consumer.sweep_gone(idle).await {
        Ok(gone) if !gone.is_empty() => {
            tracing::info!(stream = %consumer.group.stream, consumers = ?gone, "removed gone consumers");
            metrics::counter!("stream_consumers_removed_total", "group" => consumer.group.group.clone())
                .increment(gone.len() as u64);
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(stream = %consumer.group.stream, error = %e, "sweeping gone consumers failed")
        }
    }
}

/// Abandoned entries, when the claim timer says it is time to look.
async fn claim_if_due(consumer: &mut Consumer, state: &mut State) -> Vec<StreamId> {
    let due = state
        .last_claim
        .is_none_or(|at| at.elapsed() >= consumer.group.claim_idle / 2);
    if !due {
        return Vec::new();
    }
    state.last_claim = Some(Instant::now());
    match consumer.claim().await {
        Ok(claimed) => {
            if !claimed.is_empty() {
                tracing::info!(stream = %consumer.group.stream, count = claimed.len(), "claimed abandoned entries");
                metrics::counter!("stream_claimed_total", "group" => consumer.group.group.clone())
                    .increment(claimed.len() as u64);
            }
            claimed
        }
        Err(e) => {
            tracing::warn!(stream = %consumer.group.stream, error = %e, "claiming abandoned entries failed");
            Vec::new()
        }
    }
}

/// Moves the entries delivered more than `max_deliveries` times to the
/// dead-letter stream and returns the rest.
async fn drop_poison<H: Handler>(
    consumer: &mut Consumer,
    handler: &mut H,
    entries: Vec<StreamId>,
    retrying: &HashSet<String>,
) -> Result<Vec<StreamId>, StepError<H::Error>> {
    let Some(max) = consumer.group.max_deliveries else {
        return Ok(entries);
    };
    let mut poison = consumer
        .over_delivered(&entries, max)
        .await
        .map_err(redis_failed("checking delivery counts"))?;
    poison.retain(|id| !retrying.contains(id));
    if poison.is_empty() {
        return Ok(entries);
    }
    let mut pipe = redis::pipe();
    for entry in entries.iter().filter(|e| poison.contains(&e.id)) {
        handler
            .before_dead_letter(entry)
            .await
            .map_err(|source| StepError::Handler {
                what: "look before dead-lettering",
                source,
            })?;
        let payload = consumer.group.payload(entry);
        consumer
            .group
            .dead_letter(&mut pipe, &entry.id, &payload, "too many deliveries");
    }
    let ids: Vec<&str> = poison.iter().map(String::as_str).collect();
    consumer.group.ack(&mut pipe, &ids);
    pipe.query_async::<()>(&mut consumer.conn)
        .await
        .map_err(redis_failed("dead-lettering"))?;
    tracing::error!(stream = %consumer.group.stream, count = poison.len(), "entries moved to the dead-letter stream");
    handler.dead_lettered(poison.len());
    Ok(entries
        .into_iter()
        .filter(|e| !poison.contains(&e.id))
        .collect())
}
