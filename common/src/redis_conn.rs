//! Redis connections that heal themselves. redis-rs's ConnectionManager
//! re-establishes a connection that *dropped*, but not one that went silent: a
//! half-open link (a dead peer behind a middlebox, a black-holed route) only
//! makes every command time out, forever. [`Redis`] wraps it and replaces the
//! whole connection after a command times out, so a silent link heals within
//! one response timeout, and a Redis blip never needs a service restart.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::backoff::Backoff;
use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
};

/// How long a command may wait for its answer before the link counts as
/// dead. Above the longest blocking read (1 s) and a CLIENT PAUSE blip.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A multiplexed, self-healing Redis connection; cloning it is cheap and
/// every clone shares the same connection.
#[derive(Clone)]
pub struct Redis(Arc<Healing>);

struct Healing {
    url: String,
    db: i64,
    current: RwLock<ConnectionManager>,
    replacing: AtomicBool,
}

impl Redis {
    fn current(&self) -> ConnectionManager {
        self.0
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a timeout, a fresh connection replaces the silent one (in the
    /// background; commands meanwhile still use the old one and fail fast).
    fn heal_after<T>(&self, result: &redis::RedisResult<T>) {
        let Err(e) = result else { return };
        if !e.is_timeout() || self.0.replacing.swap(true, Ordering::AcqRel) {
            return;
        }
        metrics::counter!("redis_connection_replaced_total").increment(1);
        tracing::warn!(error = %e, "redis command timed out; replacing the connection");
        let healing = self.0.clone();
        tokio::spawn(async move {
            match manager(&healing.url).await {
                Ok(fresh) => {
                    *healing.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "redis reconnect failed; next timeout retries")
                }
            }
            healing.replacing.store(false, Ordering::Release);
        });
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.current();
            let result = conn.req_packed_command(cmd).await;
            self.heal_after(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.current();
            let result = conn.req_packed_commands(cmd, offset, count).await;
            self.heal_after(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.0.db
    }
}

async fn manager(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(3))
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_number_of_retries(3)
        .set_max_delay(1000);
    ConnectionManager::new_with_config(client, config).await
}

/// Opens a self-healing connection. Fails only if the first connection
/// cannot be made.
pub async fn connect(url: &str) -> redis::RedisResult<Redis> {
    let db = redis::Client::open(url)?.get_connection_info().redis.db;
    Ok(Redis(Arc::new(Healing {
        url: url.to_owned(),
        db,
        current: RwLock::new(manager(url).await?),
        replacing: AtomicBool::new(false),
    })))
}

/// Connects, retrying until `deadline` passes: services may start before Redis.
pub async fn connect_with_retry(url: &str, deadline: Duration) -> redis::RedisResult<Redis> {
    let start = tokio::time::Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        let delay = backoff.next_delay();
        match connect(url).await {
            Ok(conn) => return Ok(conn),
            Err(e) if start.elapsed() + delay < deadline => {
                tracing::warn!(error = %e, "redis not reachable yet, retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// `PING`, for readiness checks.
pub async fn ping(conn: &mut Redis) -> Result<(), String> {
    redis::cmd("PING")
        .query_async::<String>(conn)
        .await
        .map(|_| ())
        .map_err(|e| format!("redis: {e}"))
}

/// A Lua script run with EVALSHA inside pipelines sent by [`query_scripted`],
/// which loads it when Redis does not have it (a restart, SCRIPT FLUSH).
#[derive(Debug, Clone)]
pub struct LuaScript {
    source: &'static str,
    sha: String,
}

impl LuaScript {
    pub fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: redis::Script::new(source).get_hash().to_owned(),
        }
    }

    /// Adds SCRIPT LOAD to `pipe`, its reply ignored.
    fn load(&self, pipe: &mut redis::Pipeline) {
        pipe.cmd("SCRIPT").arg("LOAD").arg(self.source).ignore();
    }

    /// Adds one EVALSHA call to `pipe`.
    pub fn call<K: redis::ToRedisArgs, A: redis::ToRedisArgs>(
        &self,
        pipe: &mut redis::Pipeline,
        keys: &[K],
        args: &[A],
    ) {
        let cmd = pipe.cmd("EVALSHA").arg(&self.sha).arg(keys.len());
        for k in keys {
            cmd.arg(k);
        }
        for a in args {
            cmd.arg(a);
        }
    }
}

/// Sends `pipe`, whose script calls are EVALSHA of `scripts`. A Redis that
/// lost its script cache answers NOSCRIPT: the scripts are loaded and the
/// pipeline is sent once more. Every scripted pipeline of the system is
/// idempotent (a replayed batch must be), so what ran before the error may
/// run twice. Loading the scripts in every pipeline instead cost 1.4
/// SCRIPT LOAD calls per DM, each hashing the whole script (bench/README.md).
pub async fn query_scripted<T: redis::FromRedisValue>(
    conn: &mut Redis,
    pipe: &Pipeline,
    scripts: &[&LuaScript],
) -> redis::RedisResult<T> {
    match pipe.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::NoScriptError || e.code() == Some("NOSCRIPT") => {
            metrics::counter!("redis_scripts_reloaded_total").increment(1);
            let mut load = redis::pipe();
            for script in scripts {
                script.load(&mut load);
            }
            load.query_async::<()>(conn).await?;
            pipe.query_async(conn).await
        }
        other => other,
    }
}
