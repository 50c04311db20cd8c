//! Where the tests' Redis is, single node or cluster (`TEST_REDIS_URL`, and
//! `TEST_REDIS_CLUSTER=1` for a Redis Cluster, whose URL is then a seed
//! node), and connections that work on either.

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster_async::ClusterConnection,
};
use tokio::sync::mpsc;

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// True when the tests run against a Redis Cluster.
pub fn redis_cluster() -> bool {
    matches!(
        std::env::var("TEST_REDIS_CLUSTER").as_deref(),
        Ok("1" | "true")
    )
}

/// A connection for a test to look at its keys, on a single node or a
/// cluster (where each command goes to its key's node).
#[derive(Clone)]
pub enum TestRedis {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl TestRedis {
    pub async fn connect() -> Self {
        if redis_cluster() {
            let client = redis::cluster::ClusterClient::new(vec![redis_url()]).expect("seed url");
            Self::Cluster(
                client
                    .get_async_connection()
                    .await
                    .expect("connect to the cluster"),
            )
        } else {
            let client = redis::Client::open(redis_url()).expect("redis url");
            Self::Single(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect to Redis"),
            )
        }
    }
}

impl ConnectionLike for TestRedis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// Every node's URL: the single node, or each node of the cluster (from
/// CLUSTER NODES), for commands about connections (CLIENT LIST, KILL).
pub async fn redis_nodes() -> Vec<String> {
    if !redis_cluster() {
        return vec![redis_url()];
    }
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the seed");
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER NODES");
    nodes
        .lines()
        .filter(|l| !l.contains("fail") && !l.contains("noaddr"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|addr| addr.split('@').next())
        .map(|addr| format!("redis://{addr}"))
        .collect()
}

/// A connection to one node, for commands about that node.
pub async fn node_connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("node url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the node")
}

/// Subscribes to a sharded channel (SSUBSCRIBE, as gateways do); each
/// message's payload arrives on the receiver.
pub async fn subscribe_sharded(channel: &str) -> mpsc::UnboundedReceiver<Vec<u8>> {
    let (push_tx, mut pushes) = mpsc::unbounded_channel::<redis::PushInfo>();
    // Kept alive by the forwarding task: dropping it would end the
    // subscription.
    let conn: TestRedis = if redis_cluster() {
        let client = redis::cluster::ClusterClientBuilder::new(vec![redis_url()])
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push_tx)
            .build()
            .expect("seed url");
        let mut conn = client.get_async_connection().await.expect("connect");
        conn.ssubscribe(channel).await.expect("SSUBSCRIBE");
        TestRedis::Cluster(conn)
    } else {
        use redis::IntoConnectionInfo;
        let mut info = redis_url().into_connection_info().expect("redis url");
        info.redis.protocol = redis::ProtocolVersion::RESP3;
        let config = redis::AsyncConnectionConfig::new().set_push_sender(push_tx);
        let mut conn = redis::Client::open(info)
            .expect("redis url")
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("connect");
        redis::cmd("SSUBSCRIBE")
            .arg(channel)
            .exec_async(&mut conn)
            .await
            .expect("SSUBSCRIBE");
        TestRedis::Single(conn)
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _conn = conn;
        while let Some(push) = pushes.recv().await {
            if push.kind != redis::PushKind::SMessage {
                continue;
            }
            if let Some(redis::Value::BulkString(payload)) = push.data.get(1)
                && tx.send(payload.clone()).is_err()
            {
                return;
            }
        }
    });
    rx
}
