//! Redis connections: one self-healing connection to a single Redis, or the
//! redis-rs cluster client for a Redis Cluster, behind one [`Redis`] type
//! that every service uses the same way.
//!
//! redis-rs's ConnectionManager (single node) and cluster client re-establish
//! a connection that *dropped*, but not one that went silent: a half-open
//! link (a dead peer behind a middlebox, a black-holed route) only makes
//! every command time out, forever. [`Redis`] wraps either and replaces the
//! whole connection after a command times out, so a silent link heals
//! within one response timeout, and a Redis blip never needs a restart.
//!
//! Cluster: redis-rs's async cluster client routes each command by its key,
//! follows MOVED and ASK, and refreshes its slot map after a failover;
//! pipelines are split by slot first (`cluster.rs`).

mod cluster;
mod scripts;
pub mod slots;

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster_async::ClusterConnection,
};
use service_kit::backoff::Backoff;

pub use scripts::{LuaScript, query_scripted};

/// Where Redis is: one node, or the seed nodes of a cluster (REDIS_URL, a
/// comma-separated list with REDIS_CLUSTER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub urls: Vec<String>,
    pub cluster: bool,
}

impl Endpoints {
    pub fn new(url: &str, cluster: bool) -> Self {
        Self {
            urls: url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect(),
            cluster,
        }
    }

    /// A single node.
    pub fn single(url: &str) -> Self {
        Self::new(url, false)
    }

    /// The first URL: the single node, or the first seed.
    pub fn first(&self) -> &str {
        self.urls.first().map(String::as_str).unwrap_or_default()
    }
}

/// How long a command may wait for its answer before the link counts as
/// dead. Above the longest blocking read (1 s) and a CLIENT PAUSE blip.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A multiplexed Redis connection, to a single node or to a cluster, that
/// heals itself; cloning it is cheap and every clone shares the connection.
#[derive(Clone)]
pub struct Redis(Arc<Healing>);

/// The connection of the moment: redis-rs's ConnectionManager to one node,
/// or its cluster client (which reconnects dropped node links itself).
#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

struct Healing {
    endpoints: Endpoints,
    db: i64,
    current: RwLock<Link>,
    replacing: AtomicBool,
    /// How many times the connection was replaced after a timeout.
    replaced: AtomicU64,
}

impl Redis {
    /// True on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.0.endpoints.cluster
    }

    /// How many times a timed-out connection was replaced by a fresh one.
    pub fn replacements(&self) -> u64 {
        self.0.replaced.load(Ordering::Relaxed)
    }
}

impl Healing {
    fn current(&self) -> Link {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a timeout, a fresh connection replaces the silent one (in the
    /// background; commands meanwhile still use the old one and fail fast).
    /// On a cluster the whole client is replaced: a half-open link to one
    /// node only ever times out, and a fresh client also re-reads the slots.
    fn heal_after<T>(self: &Arc<Self>, result: &redis::RedisResult<T>) {
        let Err(e) = result else { return };
        if !e.is_timeout() || self.replacing.swap(true, Ordering::AcqRel) {
            return;
        }
        metrics::counter!("redis_connection_replaced_total").increment(1);
        tracing::warn!(error = %e, "redis command timed out; replacing the connection");
        let healing = self.clone();
        tokio::spawn(async move {
            match open(&healing.endpoints).await {
                Ok(fresh) => {
                    *healing.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                    healing.replaced.fetch_add(1, Ordering::Relaxed);
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
            let result = match self.0.current() {
                Link::Single(mut conn) => conn.req_packed_command(cmd).await,
                Link::Cluster(mut conn) => conn.req_packed_command(cmd).await,
            };
            self.0.heal_after(&result);
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
            let result = match self.0.current() {
                Link::Single(mut conn) => conn.req_packed_commands(cmd, offset, count).await,
                Link::Cluster(conn) => cluster::pipeline(&conn, cmd, offset, count).await,
            };
            self.0.heal_after(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.0.db
    }
}

/// A fresh connection to `endpoints`.
async fn open(endpoints: &Endpoints) -> redis::RedisResult<Link> {
    if endpoints.cluster {
        let client = redis::cluster::ClusterClientBuilder::new(endpoints.urls.clone())
            .connection_timeout(Duration::from_secs(3))
            .response_timeout(RESPONSE_TIMEOUT)
            .build()?;
        return Ok(Link::Cluster(client.get_async_connection().await?));
    }
    let client = redis::Client::open(endpoints.first())?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(3))
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_number_of_retries(3)
        .set_max_delay(1000);
    Ok(Link::Single(
        ConnectionManager::new_with_config(client, config).await?,
    ))
}

/// Opens a connection: self-healing to a single node, or a cluster client.
/// Fails only if the first connection cannot be made, or if a single
/// node turns out to be a cluster node (a misconfiguration that would
/// otherwise show as MOVED errors on a share of the keys).
pub async fn connect(endpoints: &Endpoints) -> redis::RedisResult<Redis> {
    let db = if endpoints.cluster {
        0
    } else {
        redis::Client::open(endpoints.first())?
            .get_connection_info()
            .redis
            .db
    };
    let link = open(endpoints).await?;
    if let Link::Single(conn) = &link {
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut conn.clone())
            .await?;
        if info.contains("cluster_enabled:1") {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "REDIS_URL is a Redis Cluster node",
                "set REDIS_CLUSTER=true".to_owned(),
            )));
        }
    }
    Ok(Redis(Arc::new(Healing {
        endpoints: endpoints.clone(),
        db,
        current: RwLock::new(link),
        replacing: AtomicBool::new(false),
        replaced: AtomicU64::new(0),
    })))
}

/// Connects, retrying until `deadline` passes: services may start before Redis.
pub async fn connect_with_retry(
    endpoints: &Endpoints,
    deadline: Duration,
) -> redis::RedisResult<Redis> {
    let start = tokio::time::Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        let delay = backoff.next_delay();
        match connect(endpoints).await {
            Ok(conn) => return Ok(conn),
            Err(e) if e.kind() == redis::ErrorKind::InvalidClientConfig => return Err(e),
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

/// Readiness of a service whose one dependency is Redis.
pub fn redis_readiness(conn: Redis) -> service_kit::ops::ReadyCheck {
    std::sync::Arc::new(move || {
        let mut conn = conn.clone();
        Box::pin(async move {
            match ping(&mut conn).await {
                Ok(()) => service_kit::ops::Readiness::Ready,
                Err(e) => service_kit::ops::Readiness::Unavailable(e),
            }
        })
    })
}
