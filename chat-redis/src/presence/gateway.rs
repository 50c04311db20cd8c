//! A gateway's part of presence: its hash of usernames → socket counts, and
//! its heartbeat in the `gateways` sorted set.
//!
//! The hub (the [`Roster`]) is the truth; the hash is its copy. One writer task keeps it: a
//! socket that opens or closes sends its username, and the writer sets that
//! user's count to what the hub says *now* (or removes it), so writes land in
//! order and each carries the latest count. Every heartbeat rewrites the whole
//! hash from the hub, so a lost or wrong write heals within one heartbeat and
//! nobody stays a ghost on this gateway. Past FULL_REWRITE_MAX users the
//! rewrite (one MULTI, which Redis runs without interruption) happens when a
//! write failed, when the hash's size disagrees with the hub, and every sixth
//! heartbeat.
//!
//! Each heartbeat also sweeps what dead gateways left: a gateway whose
//! heartbeat is older than the sweep age (twice GATEWAY_TTL_MS by default:
//! it has counted as dead for a whole TTL already) leaves the `gateways`
//! set, in one script that checks the age again, and its user hash is
//! deleted. A gateway that was only cut off comes back whole: its next
//! heartbeat adds it again and finds its hash gone, and rewrites it.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};

use super::layout::{DEFAULT_GATEWAY_TTL_MS, HEARTBEAT, TABLE_FIELD, TABLE_VALUE};
use crate::{connection::Redis, keys::Keys};
use chat_model::time::now_ms;
use service_kit::shutdown::Shutdown;

/// Up to this many users here, every heartbeat rewrites the hash.
const FULL_REWRITE_MAX: usize = 10_000;
/// Past FULL_REWRITE_MAX, every this many heartbeats the hash is rewritten
/// even if it looks right.
const REWRITE_EVERY: u32 = 6;
/// Most changes written in one pipeline.
const WRITE_BATCH: usize = 1000;

/// What the gateway knows of its own sockets: the truth presence copies.
pub trait Roster: Send + Sync + 'static {
    /// `user`'s open sockets here.
    fn user_connections(&self, user: &str) -> usize;
    /// Every user with a socket here, with their counts.
    fn user_counts(&self) -> Vec<(String, usize)>;
    /// Open sockets here.
    fn connections(&self) -> usize;
}

/// A user whose sockets changed, and who to tell once it is written.
type Change = (String, Option<oneshot::Sender<()>>);

/// KEYS[1]: the gateways set. ARGV[1]: the oldest heartbeat that is not
/// swept; ARGV[2]: the sweeping gateway. Removes the others older than
/// that and returns them.
const SWEEP: &str = r"
local dead = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE')
local gone = {}
for _, gw in ipairs(dead) do
  if gw ~= ARGV[2] then
    redis.call('ZREM', KEYS[1], gw)
    gone[#gone + 1] = gw
  end
end
return gone
";

#[derive(Clone)]
pub struct GatewayPresence {
    conn: Redis,
    keys: Keys,
    gateway: String,
    changes: mpsc::UnboundedSender<Change>,
    /// Gateways silent this long are swept (ms).
    sweep_after_ms: u64,
}

/// The receiving end of the changes, for [`GatewayPresence::run`].
pub struct Writer(mpsc::UnboundedReceiver<Change>);

impl GatewayPresence {
    pub fn new(conn: Redis, keys: Keys, gateway: String) -> (Self, Writer) {
        let (changes, rx) = mpsc::unbounded_channel();
        (
            Self {
                conn,
                keys,
                gateway,
                changes,
                sweep_after_ms: 2 * DEFAULT_GATEWAY_TTL_MS,
            },
            Writer(rx),
        )
    }

    /// Sweeps gateways whose heartbeat is older than `ms` (see the module).
    pub fn sweeping_after(mut self, ms: u64) -> Self {
        self.sweep_after_ms = ms;
        self
    }

    /// Removes what gateways silent for the sweep age left: their place in
    /// the `gateways` set and their user hash. Returns the gateways swept.
    pub async fn sweep(&self) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let oldest = now_ms() - self.sweep_after_ms as i64;
        let gone: Vec<String> = redis::Script::new(SWEEP)
            .key(self.keys.gateways())
            .arg(oldest)
            .arg(&self.gateway)
            .invoke_async(&mut conn)
            .await?;
        if !gone.is_empty() {
            let mut pipe = redis::pipe();
            for gw in &gone {
                pipe.del(self.keys.gateway_users(gw)).ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
            metrics::counter!("gateway_presence_swept_total").increment(gone.len() as u64);
            tracing::info!(gateways = ?gone, "swept the presence of silent gateways");
        }
        Ok(gone)
    }

    /// Forgets what a previous run under the same id left, and beats once.
    /// Not a transaction: the list of gateways and this gateway's users live
    /// in different cluster slots, and nothing reads them before it serves.
    pub async fn start(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let users_key = self.keys.gateway_users(&self.gateway);
        redis::pipe()
            .del(&users_key)
            .ignore()
            .hset(&users_key, TABLE_FIELD, TABLE_VALUE)
            .ignore()
            .zadd(self.keys.gateways(), &self.gateway, now_ms())
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    /// `user`'s sockets here changed (the hub already says so). Completes
    /// once the writer has written it, or tried: a socket announces itself
    /// before its `hello`, so chat-service routes to it from then on.
    pub async fn changed(&self, user: &str) {
        let (done, written) = oneshot::channel();
        if self.changes.send((user.to_owned(), Some(done))).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), written).await;
        }
    }

    /// As [`changed`](Self::changed), without waiting (a closing socket).
    pub fn changed_later(&self, user: &str) {
        let _ = self.changes.send((user.to_owned(), None));
    }

    /// The writer: applies changes in order and beats every HEARTBEAT until
    /// shutdown, then leaves presence.
    pub async fn run<R: Roster>(
        self,
        Writer(mut changes): Writer,
        hub: Arc<R>,
        shutdown: Shutdown,
    ) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let mut dirty = false;
        let mut beats = 0_u32;
        loop {
            tokio::select! {
                change = changes.recv() => {
                    let Some(first) = change else { break };
                    let mut batch = vec![first];
                    while batch.len() < WRITE_BATCH {
                        match changes.try_recv() {
                            Ok(change) => batch.push(change),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = self.write(&*hub, &batch).await {
                        tracing::warn!(error = %e, "presence update failed; the next heartbeat rewrites it");
                        dirty = true;
                    }
                    for (_, done) in batch {
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                }
                _ = tick.tick() => {
                    beats += 1;
                    let rewrite = dirty || beats.is_multiple_of(REWRITE_EVERY);
                    match self.beat(&*hub, rewrite).await {
                        Ok(()) => dirty = false,
                        Err(e) => {
                            tracing::warn!(error = %e, "presence heartbeat failed");
                            dirty = true;
                        }
                    }
                    if let Err(e) = self.sweep().await {
                        tracing::warn!(error = %e, "presence sweep failed");
                    }
                    metrics::gauge!("gateway_connections").set(hub.connections() as f64);
                }
                () = &mut stop => break,
            }
        }
        self.stop().await;
    }

    /// Sets each changed user's count to the hub's, or removes the user.
    async fn write(&self, hub: &impl Roster, batch: &[Change]) -> redis::RedisResult<()> {
        let users_key = self.keys.gateway_users(&self.gateway);
        let mut pipe = redis::pipe();
        for (user, _) in batch {
            match hub.user_connections(user) {
                0 => pipe.hdel(&users_key, user).ignore(),
                n => pipe.hset(&users_key, user, n).ignore(),
            };
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    /// Beats; rewrites the hash from the hub when asked to, when its marker
    /// is gone (Redis lost it), or when its size disagrees with the hub.
    async fn beat(&self, hub: &impl Roster, rewrite: bool) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let users_key = self.keys.gateway_users(&self.gateway);
        let (intact, fields): (bool, usize) = redis::pipe()
            .zadd(self.keys.gateways(), &self.gateway, now_ms())
            .ignore()
            .hexists(&users_key, TABLE_FIELD)
            .hlen(&users_key)
            .query_async(&mut conn)
            .await?;
        let counts = hub.user_counts();
        let wrong = !intact || fields != counts.len() + 1;
        if rewrite || wrong || counts.len() <= FULL_REWRITE_MAX {
            if wrong {
                metrics::counter!("gateway_presence_repairs_total").increment(1);
                tracing::warn!(
                    users = counts.len(),
                    fields,
                    "presence in Redis disagreed with the hub; rewriting"
                );
            }
            let mut pipe = redis::pipe();
            pipe.atomic()
                .del(&users_key)
                .ignore()
                .hset(&users_key, TABLE_FIELD, TABLE_VALUE)
                .ignore();
            for chunk in counts.chunks(WRITE_BATCH) {
                let fields: Vec<(&str, usize)> =
                    chunk.iter().map(|(u, n)| (u.as_str(), *n)).collect();
                pipe.hset_multiple(&users_key, &fields).ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
        }
        Ok(())
    }

    /// Leaves presence on shutdown, so users fall offline at once.
    async fn stop(&self) {
        let mut conn = self.conn.clone();
        let result = redis::pipe()
            .del(self.keys.gateway_users(&self.gateway))
            .ignore()
            .zrem(self.keys.gateways(), &self.gateway)
            .ignore()
            .query_async::<()>(&mut conn)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not leave presence");
        }
    }
}
