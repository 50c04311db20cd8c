//! What a gateway hands its sockets when deliveries repeat or race (a batch
//! published again after a retry, two read markers announced from two
//! gateways in the other order): each seq once, markers only forward. And
//! what a dead gateway leaves in presence goes away.

use std::time::Duration;

use chat_redis::{keys::Keys, publish::Publisher};

use chat_model::message::FORMAT_VERSION;
use redis::AsyncCommands;
use serde_json::{Value, json};
use testkit::WsClient;

use crate::helpers::{TestStack, spawn_stack};

/// Publishes one delivery for `user`'s sockets on gateway 0, as
/// chat-service or a gateway's read announcement does.
async fn publish(stack: &TestStack, user: &str, frame: Value, seq: Option<u64>, read: Option<u64>) {
    let payload = json!([{
        "v": FORMAT_VERSION,
        "users": [user],
        "conversation": "dm:alice:bob",
        "frames": [{"frame": frame, "seq": seq, "read": read}],
    }]);
    let mut redis = chat_redis::connection::connect(&chat_redis::connection::Endpoints::new(
        &testkit::redis_url(),
        testkit::redis_cluster(),
    ))
    .await
    .unwrap();
    Publisher::new(Keys::new(stack._storage.redis_prefix.clone()))
        .publish(&mut redis, &[("gw0".to_owned(), payload.to_string())])
        .await
        .unwrap();
}

fn message(seq: u64) -> Value {
    json!({"type": "message", "id": format!("m{seq}"), "conversation": "dm:alice:bob",
        "seq": seq, "from": "alice", "to": "user:bob", "body": format!("body {seq}"),
        "ts": 1, "client_id": format!("c{seq}")})
}

fn read(seq: u64) -> Value {
    json!({"type": "read", "conversation": "dm:alice:bob", "seq": seq, "unread": 0})
}

/// Frames until a quiet half second.
async fn drain(ws: &mut WsClient) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(f) = ws.next_frame(Duration::from_millis(500)).await {
        out.push(f);
    }
    out
}

#[tokio::test]
async fn a_socket_gets_each_seq_once_and_read_markers_only_forward() {
    let stack = spawn_stack().await;
    let bob = stack.user("bob").await;
    let (mut b, _) = stack.connect(0, &bob).await;
    // A batch published twice (its worker died after publishing), then
    // markers 7 and 4 arriving in the wrong order, then 9.
    publish(&stack, "bob", message(5), Some(5), None).await;
    publish(&stack, "bob", message(5), Some(5), None).await;
    publish(&stack, "bob", message(3), Some(3), None).await;
    publish(&stack, "bob", read(7), None, Some(7)).await;
    publish(&stack, "bob", read(4), None, Some(4)).await;
    publish(&stack, "bob", read(9), None, Some(9)).await;
    let got: Vec<(String, u64)> = drain(&mut b)
        .await
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_owned(),
                f["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [("message", 5), ("message", 3), ("read", 7), ("read", 9)]
        .iter()
        .map(|(t, s)| ((*t).to_owned(), *s))
        .collect();
    assert_eq!(got, want);
    // Another socket of bob's gets what comes next; it never had seq 5.
    let (mut b2, _) = stack.connect(0, &bob).await;
    publish(&stack, "bob", message(5), Some(5), None).await;
    assert_eq!(drain(&mut b).await, Vec::<Value>::new());
    assert_eq!(drain(&mut b2).await, vec![message(5)]);
}

#[tokio::test]
async fn a_dead_gateways_presence_is_swept() {
    let stack = spawn_stack().await;
    let keys = Keys::new(stack._storage.redis_prefix.clone());
    let mut redis = stack._storage.redis().await;
    // A gateway killed a minute ago: its heartbeat stopped, its hash stays.
    let stale = chat_model::time::now_ms() - 60_000;
    let _: () = redis.zadd(keys.gateways(), "gw-dead", stale).await.unwrap();
    let _: () = redis
        .hset(keys.gateway_users("gw-dead"), "ghost", 1)
        .await
        .unwrap();
    testkit::eventually(
        "the dead gateway to be swept",
        Duration::from_secs(15),
        || {
            let mut redis = redis.clone();
            let keys = keys.clone();
            async move {
                let score: Option<f64> = redis.zscore(keys.gateways(), "gw-dead").await.ok()?;
                let hash: bool = redis.exists(keys.gateway_users("gw-dead")).await.ok()?;
                (score.is_none() && !hash).then_some(())
            }
        },
    )
    .await;
    // The live gateway is still there.
    let live: Option<f64> = redis.zscore(keys.gateways(), "gw0").await.unwrap();
    assert!(live.is_some());
}
