//! This gateway's part of presence: a hash of its usernames → socket counts
//! (HINCRBY on connect and disconnect, so concurrent changes commute) and a
//! heartbeat in the `gateways` sorted set. chat-service treats a gateway whose
//! heartbeat is older than GATEWAY_TTL_MS (15 s) as dead, so the users of a
//! crashed gateway fall offline within that bound.

use std::{sync::Arc, time::Duration};

use common::{keys::Keys, redis_conn::LuaScript, shutdown::Shutdown, time::now_ms};
use redis::aio::ConnectionManager;

use crate::hub::Hub;

/// Heartbeat period; well inside chat-service's 15 s liveness window.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How stale a heartbeat may be before the gateway counts as dead (REST view).
pub const GATEWAY_TTL_MS: i64 = 15_000;

/// A field no username can be (names are `[a-z0-9_]`), with a value longer
/// than `hash-max-listpack-value` (64 bytes by default), so Redis keeps the
/// user hash as a real hash table. As a listpack (up to 128 or 512 entries,
/// by config) every field of chat-service's HMGET is a linear scan: a
/// 500-member room over a 250-user gateway cost 210 µs of Redis per lookup.
pub const TABLE_FIELD: &str = "!table";
const TABLE_VALUE: &str = "keeps this hash a hash table: as a listpack, HMGET of k names over n entries costs k*n comparisons";

const DISCONNECT: &str = r#"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
"#;

#[derive(Clone)]
pub struct Presence {
    conn: ConnectionManager,
    keys: Keys,
    gateway: String,
    disconnect: LuaScript,
}

impl Presence {
    pub fn new(conn: ConnectionManager, keys: Keys, gateway: String) -> Self {
        Self {
            conn,
            keys,
            gateway,
            disconnect: LuaScript::new(DISCONNECT),
        }
    }

    /// Forgets what a previous run under the same id left, and beats once.
    pub async fn start(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let users_key = self.keys.gateway_users(&self.gateway);
        redis::pipe()
            .atomic()
            .del(&users_key)
            .ignore()
            .hset(&users_key, TABLE_FIELD, TABLE_VALUE)
            .ignore()
            .zadd(self.keys.gateways(), &self.gateway, now_ms())
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    pub async fn connected(&self, user: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("HINCRBY")
            .arg(self.keys.gateway_users(&self.gateway))
            .arg(user)
            .arg(1)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
    }

    pub async fn disconnected(&self, user: &str) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        self.disconnect.load(&mut pipe);
        self.disconnect.call(
            &mut pipe,
            &[self.keys.gateway_users(&self.gateway)],
            &[user],
        );
        pipe.ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    /// Beats every HEARTBEAT until shutdown. If Redis lost the user hash (a
    /// restart without persistence; its marker field is gone), it is rebuilt
    /// from the hub.
    pub async fn heartbeat(self, hub: Arc<Hub>, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {},
                () = shutdown.clone().wait() => break,
            }
            if let Err(e) = self.beat(&hub).await {
                tracing::warn!(error = %e, "presence heartbeat failed");
            }
            metrics::gauge!("gateway_connections").set(hub.connections() as f64);
        }
        self.stop().await;
    }

    async fn beat(&self, hub: &Hub) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let users_key = self.keys.gateway_users(&self.gateway);
        let (intact,): (bool,) = redis::pipe()
            .zadd(self.keys.gateways(), &self.gateway, now_ms())
            .ignore()
            .hexists(&users_key, TABLE_FIELD)
            .query_async(&mut conn)
            .await?;
        if !intact {
            let counts = hub.user_counts();
            tracing::warn!(users = counts.len(), "presence lost in Redis; rebuilding");
            let mut pipe = redis::pipe();
            pipe.atomic()
                .del(&users_key)
                .ignore()
                .hset(&users_key, TABLE_FIELD, TABLE_VALUE)
                .ignore();
            for chunk in counts.chunks(1000) {
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

    /// Which of `users` have a socket on any live gateway.
    pub async fn online(&self, users: &[String]) -> redis::RedisResult<Vec<bool>> {
        let mut conn = self.conn.clone();
        let mut online = vec![false; users.len()];
        if users.is_empty() {
            return Ok(online);
        }
        let gateways: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.gateways())
            .arg(now_ms() - GATEWAY_TTL_MS)
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut conn)
            .await?;
        if gateways.is_empty() {
            return Ok(online);
        }
        let mut pipe = redis::pipe();
        for gw in &gateways {
            pipe.cmd("HMGET")
                .arg(self.keys.gateway_users(gw))
                .arg(users);
        }
        let replies: Vec<Vec<Option<i64>>> = pipe.query_async(&mut conn).await?;
        for counts in replies {
            for (flag, count) in online.iter_mut().zip(counts) {
                *flag |= count.unwrap_or(0) > 0;
            }
        }
        Ok(online)
    }
}
