//! Ingress backpressure. chat-service XDELs what it has handled, so the ingress
//! stream's length is its backlog. A gateway polls it a few times a second
//! (one XLEN, not one per send) and refuses new sends with `unavailable` and a
//! retry hint while it is over INGRESS_BACKLOG_LIMIT, so a stalled or
//! overloaded worker tier makes clients wait instead of growing Redis without
//! bound.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use common::redis_conn::Redis;
use common::shutdown::Shutdown;

/// How often the backlog is read.
pub const POLL: Duration = Duration::from_millis(200);
/// The retry hint given to a refused send.
pub const RETRY_AFTER_MS: u64 = 1_000;

/// Keeps `backlog` at the ingress stream's length until shutdown. A failed
/// read keeps the last value: XADD failing says the same thing louder.
pub async fn poll_backlog(
    mut redis: Redis,
    stream: String,
    backlog: Arc<AtomicU64>,
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
        let len: redis::RedisResult<u64> = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut redis)
            .await;
        if let Ok(len) = len {
            backlog.store(len, Ordering::Relaxed);
            metrics::gauge!("gateway_ingress_backlog").set(len as f64);
        }
    }
}

/// True when sends should be refused.
pub fn over_limit(backlog: &AtomicU64, limit: u64) -> bool {
    backlog.load(Ordering::Relaxed) >= limit
}
