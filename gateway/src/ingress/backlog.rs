//! Ingress backpressure. A gateway polls the ingress streams (every
//! partition) a few times a second (not once per send) for two things, and
//! refuses new sends with `unavailable` and a retry hint while either is
//! over its limit:
//!
//! - their total length (chat-service XDELs what it has handled, so the
//!   length is the backlog), over INGRESS_BACKLOG_LIMIT: a stalled worker
//!   tier makes clients wait instead of growing Redis without bound;
//! - how long the oldest entry no worker has read yet, in any partition, has
//!   waited (every worker reads every partition, so one slow partition
//!   means the tier is behind), over
//!   INGRESS_MAX_WAIT_MS: past saturation the queue, not the workers, sets
//!   the latency, so admitting more only makes every accepted message
//!   later. Shedding at the edge keeps the `sent` latency of what is
//!   accepted near that wait. Entries already read and being retried, or
//!   left by a dead worker until they are claimed, do not count: they say
//!   nothing about the tier's capacity.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use chat_model::message::INGRESS_GROUP;

use chat_redis::connection::Redis;

use redis::streams::{StreamInfoGroupsReply, StreamRangeReply};
use service_kit::shutdown::Shutdown;

/// How often the backlog is read.
pub const POLL: Duration = Duration::from_millis(200);
/// The retry hint given to a refused send.
pub const RETRY_AFTER_MS: u64 = 1_000;

/// The ingress streams as last polled.
#[derive(Debug, Default)]
pub struct Backlog {
    /// Entries not handled yet.
    pub entries: AtomicU64,
    /// How long the oldest entry not read by any worker has waited (ms).
    pub wait_ms: AtomicU64,
}

impl Backlog {
    /// True when sends should be refused.
    pub fn over_limit(&self, backlog_limit: u64, max_wait_ms: u64) -> bool {
        self.entries.load(Ordering::Relaxed) >= backlog_limit
            || (max_wait_ms > 0 && self.wait_ms.load(Ordering::Relaxed) >= max_wait_ms)
    }
}

/// Keeps `backlog` up to date until shutdown. A failed read keeps the last
/// values: XADD failing says the same thing louder.
pub async fn poll(
    mut redis: Redis,
    streams: Vec<String>,
    backlog: std::sync::Arc<Backlog>,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        let mut pipe = redis::pipe();
        for stream in &streams {
            pipe.cmd("XLEN").arg(stream);
        }
        let lens: redis::RedisResult<Vec<u64>> = pipe.query_async(&mut redis).await;
        let Ok(lens) = lens else { continue };
        let total = lens.iter().sum();
        backlog.entries.store(total, Ordering::Relaxed);
        metrics::gauge!("gateway_ingress_backlog").set(total as f64);
        let busy: Vec<&String> = streams
            .iter()
            .zip(lens)
            .filter(|(_, len)| *len > 0)
            .map(|(stream, _)| stream)
            .collect();
        let wait = oldest_unread_wait(&mut redis, &busy).await;
        if let Ok(wait) = wait {
            backlog.wait_ms.store(wait, Ordering::Relaxed);
            metrics::gauge!("gateway_ingress_wait_seconds").set(wait as f64 / 1000.0);
        }
    }
}

/// How long the first entry after the workers' group's last read has been
/// on each of `streams` (its id holds the time it was added), the longest of
/// them, or 0. Two pipelines whatever the partition count.
async fn oldest_unread_wait(redis: &mut Redis, streams: &[&String]) -> redis::RedisResult<u64> {
    if streams.is_empty() {
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    for stream in streams {
        pipe.cmd("XINFO").arg("GROUPS").arg(*stream);
    }
    let groups: Vec<StreamInfoGroupsReply> = pipe.query_async(&mut *redis).await?;
    let mut pipe = redis::pipe();
    for (stream, groups) in streams.iter().zip(groups) {
        let start = groups
            .groups
            .iter()
            .find(|g| g.name == INGRESS_GROUP)
            .map_or_else(|| "-".to_owned(), |g| format!("({}", g.last_delivered_id));
        pipe.cmd("XRANGE")
            .arg(*stream)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(1);
    }
    let firsts: Vec<StreamRangeReply> = pipe.query_async(redis).await?;
    let now = chat_model::time::now_ms();
    Ok(firsts
        .iter()
        .filter_map(|first| first.ids.first())
        .filter_map(|e| e.id.split('-').next()?.parse::<i64>().ok())
        .map(|ms| (now - ms).max(0) as u64)
        .max()
        .unwrap_or(0))
}
