use serde_json::Value;

use crate::helpers::{next_of, spawn_env};

/// The `users` a delivered frame was addressed to, sorted.
fn sorted_users(item: &Value) -> Vec<&str> {
    let mut users: Vec<&str> = item["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    users.sort_unstable();
    users
}

#[tokio::test]
async fn room_message_goes_to_online_members_and_offline_queues() {
    let env = spawn_env().await;
    for u in ["alice", "bob", "carol", "dave"] {
        env.user(u).await;
    }
    env.room("general", &["alice", "bob", "carol"]).await;
    env.gateway_online(&["alice", "bob"]).await;
    let mut rx = env.subscribe().await;
    env.spawn_worker(env.worker_config("w1")).await;

    env.xadd("alice", 7, "c1", "room:general", "hello room")
        .await;
    let message = next_of(&mut rx, "message").await;
    assert_eq!(message["frame"]["body"], "hello room");
    assert_eq!(
        message["skip_conn"], 7,
        "the sending socket gets `sent` instead"
    );
    assert_eq!(sorted_users(&message), ["alice", "bob"]);
    let sent = next_of(&mut rx, "sent").await;
    assert_eq!(sent["conn"], 7);
    assert_eq!(sent["frame"]["id"], message["frame"]["id"]);

    // carol is offline: queued. The sender never is; dave is no member.
    assert_eq!(env.offline("carol").await.len(), 1);
    assert!(env.offline("alice").await.is_empty());
    assert!(env.offline("dave").await.is_empty());
    assert_eq!(env.history("room:general").await.len(), 1);

    // A non-member is refused with an error frame naming the client_id.
    env.xadd("dave", 9, "x1", "room:general", "let me in").await;
    let err = next_of(&mut rx, "error").await;
    assert_eq!(
        (err["conn"].as_u64(), err["frame"]["code"].as_str()),
        (Some(9), Some("forbidden"))
    );
    assert_eq!(err["frame"]["ref"], "x1");
    assert_eq!(env.history("room:general").await.len(), 1);
}

#[tokio::test]
async fn a_batch_of_one_conversation_is_one_delivery_in_seq_order() {
    let env = spawn_env().await;
    for u in ["alice", "bob", "carol"] {
        env.user(u).await;
    }
    env.room("general", &["alice", "bob", "carol"]).await;
    env.gateway_online(&["alice", "bob", "carol"]).await;
    let mut rx = env.subscribe().await;
    // Queued before any worker runs, so one batch holds them all.
    env.xadd("alice", 7, "a1", "room:general", "one").await;
    env.xadd("bob", 8, "b1", "room:general", "two").await;
    env.xadd("alice", 7, "a2", "room:general", "three").await;
    env.spawn_worker(env.worker_config("w1")).await;

    let mut items = Vec::new();
    while items.len() < 6 {
        items.push(
            testkit::within("six frames", std::time::Duration::from_secs(15), rx.recv())
                .await
                .expect("subscription open"),
        );
    }
    let one_delivery = items
        .iter()
        .all(|i| (&i["payload"], &i["delivery"]) == (&items[0]["payload"], &items[0]["delivery"]));
    assert!(one_delivery, "not one delivery: {items:#?}");
    assert_eq!(
        sorted_users(&items[0]),
        ["alice", "bob", "carol"],
        "users resolved once"
    );
    // Each message, then its sender's ack for exactly that socket.
    let order: Vec<(String, u64, Option<u64>, Option<u64>)> = items
        .iter()
        .map(|i| {
            (
                i["frame"]["type"].as_str().unwrap().to_owned(),
                i["frame"]["seq"].as_u64().unwrap(),
                i["conn"].as_u64(),
                i["skip_conn"].as_u64(),
            )
        })
        .collect();
    let want = |t: &str, seq, conn, skip| (t.to_owned(), seq, conn, skip);
    assert_eq!(
        order,
        [
            want("message", 1, None, Some(7)),
            want("sent", 1, Some(7), None),
            want("message", 2, None, Some(8)),
            want("sent", 2, Some(8), None),
            want("message", 3, None, Some(7)),
            want("sent", 3, Some(7), None),
        ]
    );
}

#[tokio::test]
async fn the_same_client_id_through_two_workers_is_one_message() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    env.gateway_online(&["alice"]).await;
    let mut rx = env.subscribe().await;
    env.spawn_worker(env.worker_config("w1")).await;
    env.spawn_worker(env.worker_config("w2")).await;

    for _ in 0..5 {
        env.xadd("alice", 1, "retry-me", "user:bob", "only once")
            .await;
    }
    env.xadd("alice", 1, "next", "user:bob", "then this").await;
    let mut acks = Vec::new();
    while acks.len() < 6 {
        let sent = next_of(&mut rx, "sent").await;
        acks.push((
            sent["frame"]["client_id"].as_str().unwrap().to_owned(),
            sent["frame"]["id"].as_str().unwrap().to_owned(),
            sent["frame"]["seq"].as_u64().unwrap(),
        ));
    }
    let retries: Vec<_> = acks.iter().filter(|a| a.0 == "retry-me").collect();
    assert_eq!(retries.len(), 5);
    assert!(
        retries
            .iter()
            .all(|a| a.1 == retries[0].1 && a.2 == retries[0].2),
        "{acks:?}"
    );
    let history = env.history("dm:alice:bob").await;
    let seqs: Vec<_> = history.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2], "one message per client_id, seq gap-free");
    assert_eq!(
        env.offline("bob").await.len(),
        2,
        "offline bob queued each once"
    );
}
