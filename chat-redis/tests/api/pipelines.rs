//! Pipelines that span many slots come back whole and in order, on a single
//! Redis and on a cluster (where `redis_conn` splits them by slot); and a
//! single-node target that is really a cluster node is refused.

use chat_redis::connection::{self, Endpoints, slots::slot};
use testkit::storage::Storage;

async fn connect() -> connection::Redis {
    connection::connect(&Endpoints::new(
        &testkit::redis_url(),
        testkit::redis_cluster(),
    ))
    .await
    .expect("redis")
}

#[tokio::test]
async fn a_pipeline_across_slots_answers_in_order_with_each_keys_commands_in_order() {
    let storage = Storage::new();
    let mut conn = connect().await;
    let keys: Vec<String> = (0..40).map(|i| storage.key(&format!("{{k{i}}}"))).collect();
    let slots: std::collections::HashSet<u16> = keys.iter().map(|k| slot(k.as_bytes())).collect();
    assert!(slots.len() > 30, "the keys spread over many slots");
    let mut pipe = redis::pipe();
    for (i, key) in keys.iter().enumerate() {
        // Per key: a write, an ignored one, a read of both. A keyless command
        // in the middle goes on its own.
        pipe.set(key, i).ignore();
        pipe.incr(key, 1000).ignore();
        if i == 20 {
            pipe.cmd("PING");
        }
        pipe.get(key);
    }
    let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await.unwrap();
    assert_eq!(replies.len(), keys.len() + 1);
    let mut numbers = Vec::new();
    for r in &replies {
        match r {
            redis::Value::BulkString(b) => {
                numbers.push(String::from_utf8_lossy(b).parse::<usize>().unwrap())
            }
            redis::Value::SimpleString(s) => assert_eq!(s, "PONG"),
            other => panic!("unexpected reply {other:?}"),
        }
    }
    let wanted: Vec<usize> = (0..keys.len()).map(|i| i + 1000).collect();
    assert_eq!(
        numbers, wanted,
        "every key's SET ran before its INCR and GET, replies in order"
    );
    // An error in one slot's part fails the whole query, as on one node.
    let mut bad = redis::pipe();
    bad.set(&keys[0], "x").ignore();
    bad.incr(&keys[0], 1);
    bad.get(&keys[1]);
    assert!(bad.query_async::<redis::Value>(&mut conn).await.is_err());
}

#[tokio::test]
async fn a_single_node_url_that_is_a_cluster_node_is_refused() {
    if !testkit::redis_cluster() {
        // On a single node there is no cluster node to point at.
        return;
    }
    let err = match connection::connect(&Endpoints::single(&testkit::redis_url())).await {
        Ok(_) => panic!("a cluster node accepted as a single Redis"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), redis::ErrorKind::InvalidClientConfig);
    assert!(err.to_string().contains("REDIS_CLUSTER"), "{err}");
}

/// A command that outlives the response timeout (here a blocking read, as a
/// silent half-open link would) gets a timeout error, and the connection is
/// replaced by a fresh one that works: on one Redis and on a cluster alike.
#[tokio::test]
async fn a_timed_out_connection_is_replaced_by_a_working_one() {
    let storage = Storage::new();
    let mut conn = connect().await;
    let key = storage.key("{never}:pushed");
    let blocked: redis::RedisResult<redis::Value> = redis::cmd("BLPOP")
        .arg(&key)
        .arg(connection::RESPONSE_TIMEOUT.as_secs() + 2)
        .query_async(&mut conn)
        .await;
    assert!(blocked.is_err_and(|e| e.is_timeout()), "the read timed out");
    testkit::eventually(
        "a fresh connection",
        std::time::Duration::from_secs(10),
        || {
            let conn = conn.clone();
            async move { (conn.replacements() == 1).then_some(()) }
        },
    )
    .await;
    let () = redis::cmd("SET")
        .arg(&key)
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
}
