//! Redis connections that heal themselves: a dropped connection is re-established
//! on the next command, so a Redis blip never needs a service restart.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Opens a multiplexed, auto-reconnecting connection. Fails only if the first
/// connection cannot be made.
pub async fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(3))
        .set_response_timeout(Duration::from_secs(10))
        .set_number_of_retries(3)
        .set_max_delay(1000);
    ConnectionManager::new_with_config(client, config).await
}

/// Connects, retrying until `deadline` passes: services may start before Redis.
pub async fn connect_with_retry(
    url: &str,
    deadline: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let start = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match connect(url).await {
            Ok(conn) => return Ok(conn),
            Err(e) if start.elapsed() + delay < deadline => {
                tracing::warn!(error = %e, "redis not reachable yet, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `PING`, for readiness checks.
pub async fn ping(conn: &mut ConnectionManager) -> Result<(), String> {
    redis::cmd("PING")
        .query_async::<String>(conn)
        .await
        .map(|_| ())
        .map_err(|e| format!("redis: {e}"))
}

/// A Lua script run with EVALSHA inside pipelines. Each pipeline that uses it
/// first sends SCRIPT LOAD (cheap, idempotent), so a restarted Redis that lost
/// its script cache never fails a call with NOSCRIPT.
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
    pub fn load(&self, pipe: &mut redis::Pipeline) {
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
