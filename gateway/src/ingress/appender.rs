//! The ingress appender: how this gateway puts entries on the ingress
//! streams.
//!
//! By default (INGRESS_LINGER_MS 0) each entry is its own XADD, sent at
//! once on the shared multiplexed connection. With a linger, every entry
//! goes through one task that writes them as pipelines of XADDs: one XADD
//! per send was the largest count of Redis round trips per DM, and Redis
//! spends about as much CPU on a round trip (reading the socket, writing
//! the reply) as on several commands (bench/README.md). Entries that arrive
//! while a pipeline is on its way go out together in the next one. Under
//! steady traffic, when sends from several sockets have come closer
//! together than the linger on average, the first entry of a pipeline also
//! waits up to the linger for company. A lone send, a trickle, or one
//! socket sending one message after another (each waits for the last to be
//! written) never waits. It is opt-in because it trades latency for CPU:
//! at 2,000 DMs/s, 3 ms took 8 % off Redis's CPU per DM.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chat_model::message::INGRESS_FIELD;

use chat_redis::connection::Redis;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

/// Entries waiting for the task: senders wait for room beyond this (each
/// socket has one send on its way at a time, so this is rarely reached).
const QUEUE: usize = 4_096;
/// The most entries in one pipeline.
const MAX_PIPELINE: usize = 512;
/// The weight of the newest gap between two sends in the running mean.
const GAP_WEIGHT: f64 = 1.0 / 16.0;
/// How many of the latest sends' sockets are remembered.
const RECENT_SENDERS: usize = 8;

struct Entry {
    stream: String,
    json: String,
    /// The socket it came from.
    sender: u64,
    at: Instant,
    done: oneshot::Sender<bool>,
}

/// A handle on the appender; its task (with a linger) stops when every
/// handle is gone.
#[derive(Clone)]
pub struct Appender {
    mode: Mode,
    pipelines: Arc<AtomicU64>,
}

#[derive(Clone)]
enum Mode {
    Direct(Redis),
    Batched(mpsc::Sender<Entry>),
}

impl Appender {
    /// An appender writing over `redis`: one XADD per entry with a zero
    /// `linger`, else pipelines written by a task started here.
    pub fn start(redis: Redis, linger: Duration) -> Self {
        let pipelines = Arc::new(AtomicU64::new(0));
        let mode = if linger.is_zero() {
            Mode::Direct(redis)
        } else {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(redis, linger, rx, pipelines.clone()));
            Mode::Batched(tx)
        };
        Self { mode, pipelines }
    }

    /// How many pipelines (round trips) have been written.
    pub fn pipelines(&self) -> u64 {
        self.pipelines.load(Ordering::Relaxed)
    }

    /// Appends `json`, from socket `sender`, to `stream`; false if it was
    /// not (Redis refused or was unreachable: the send may be retried, it
    /// is deduplicated).
    pub async fn append(&self, sender: u64, stream: String, json: String) -> bool {
        let tx = match &self.mode {
            Mode::Batched(tx) => tx,
            Mode::Direct(redis) => {
                self.pipelines.fetch_add(1, Ordering::Relaxed);
                return xadd_all(&mut redis.clone(), [(stream.as_str(), json.as_str())]).await;
            }
        };
        let (done, result) = oneshot::channel();
        let entry = Entry {
            stream,
            json,
            sender,
            at: Instant::now(),
            done,
        };
        if tx.send(entry).await.is_err() {
            return false;
        }
        result.await.unwrap_or(false)
    }
}

/// The mean gap between consecutive sends and who sent the latest ones:
/// whether a pipeline's first entry should wait for others.
struct Pace {
    mean_gap: f64,
    last: Option<Instant>,
    senders: [u64; RECENT_SENDERS],
    next: usize,
}

impl Pace {
    fn new() -> Self {
        Self {
            mean_gap: f64::MAX,
            last: None,
            senders: [0; RECENT_SENDERS],
            next: 0,
        }
    }

    fn arrived(&mut self, sender: u64, at: Instant) {
        self.senders[self.next % RECENT_SENDERS] = sender;
        self.next += 1;
        if let Some(last) = self.last {
            let gap = at.saturating_duration_since(last).as_secs_f64();
            self.mean_gap = if self.mean_gap == f64::MAX {
                gap
            } else {
                self.mean_gap + GAP_WEIGHT * (gap - self.mean_gap)
            };
        }
        self.last = Some(at);
    }

    /// Whether, at this pace, another socket's send is due within
    /// `linger`. One socket alone never makes a pipeline wait: its next
    /// send comes only once this one is written.
    fn worth_waiting(&self, linger: Duration) -> bool {
        let seen = &self.senders[..self.next.min(RECENT_SENDERS)];
        let several = seen.iter().any(|s| *s != seen[0]);
        !linger.is_zero() && several && self.mean_gap < linger.as_secs_f64()
    }
}

async fn run(
    mut redis: Redis,
    linger: Duration,
    mut rx: mpsc::Receiver<Entry>,
    pipelines: Arc<AtomicU64>,
) {
    let mut pace = Pace::new();
    let mut batch: Vec<Entry> = Vec::with_capacity(MAX_PIPELINE);
    while let Some(first) = rx.recv().await {
        pace.arrived(first.sender, first.at);
        let wait_until = first.at + linger;
        let linger_now = pace.worth_waiting(linger);
        batch.push(first);
        loop {
            while batch.len() < MAX_PIPELINE {
                match rx.try_recv() {
                    Ok(entry) => {
                        pace.arrived(entry.sender, entry.at);
                        batch.push(entry);
                    }
                    Err(_) => break,
                }
            }
            if !linger_now || batch.len() >= MAX_PIPELINE {
                break;
            }
            match tokio::time::timeout_at(wait_until, rx.recv()).await {
                Ok(Some(entry)) => {
                    pace.arrived(entry.sender, entry.at);
                    batch.push(entry);
                }
                // Time is up, or every handle is gone: write what is here.
                Ok(None) | Err(_) => break,
            }
        }
        write(&mut redis, &mut batch).await;
        pipelines.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes `batch` in one pipeline and tells each sender how it went.
async fn write(redis: &mut Redis, batch: &mut Vec<Entry>) {
    let written = xadd_all(
        redis,
        batch.iter().map(|e| (e.stream.as_str(), e.json.as_str())),
    )
    .await;
    for entry in batch.drain(..) {
        let _ = entry.done.send(written);
    }
}

/// XADDs each (stream, json) in one pipeline; whether it was written.
async fn xadd_all<'a>(
    redis: &mut Redis,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> bool {
    let mut pipe = redis::pipe();
    let mut count = 0;
    for (stream, json) in entries {
        pipe.cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg(INGRESS_FIELD)
            .arg(json)
            .ignore();
        count += 1;
    }
    let written = pipe.query_async::<()>(redis).await;
    if let Err(e) = &written {
        tracing::warn!(error = %e, entries = count, "ingress XADD failed");
    }
    metrics::histogram!("gateway_ingress_pipeline_entries").record(f64::from(count));
    written.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_only_under_steady_traffic() {
        let linger = Duration::from_millis(2);
        let start = Instant::now();
        let mut pace = Pace::new();
        pace.arrived(1, start);
        assert!(!pace.worth_waiting(linger), "one send says nothing");
        // A send every 10 ms from many sockets: a trickle.
        for i in 1..50 {
            pace.arrived(i, start + Duration::from_millis(10 * i));
        }
        assert!(!pace.worth_waiting(linger));
        // Then one every 500 µs: steady traffic, after a few.
        let busy = start + Duration::from_millis(500);
        for i in 0..100 {
            pace.arrived(i % 7, busy + Duration::from_micros(500 * i));
        }
        assert!(pace.worth_waiting(linger));
        assert!(!pace.worth_waiting(Duration::ZERO), "0 turns it off");
        // One socket sending back to back: nobody to wait for.
        let alone = busy + Duration::from_secs(1);
        for i in 0..100 {
            pace.arrived(42, alone + Duration::from_micros(300 * i));
        }
        assert!(!pace.worth_waiting(linger));
    }
}
