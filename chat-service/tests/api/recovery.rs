use std::time::Duration;

use redis::AsyncCommands;

use crate::helpers::{next_of, spawn_env};

#[tokio::test]
async fn unreadable_entries_go_to_the_dead_letter_stream() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    env.gateway_online(&["alice"]).await;
    let mut rx = env.subscribe().await;
    env.spawn_worker(env.worker_config("w1")).await;

    env.xadd_raw("{this is not an entry").await;
    env.xadd("alice", 1, "ok", "user:bob", "fine").await;
    next_of(&mut rx, "sent").await;

    let mut redis = env.storage.redis().await;
    let dead: Vec<redis::streams::StreamId> =
        testkit::eventually("the dead-letter entry", Duration::from_secs(10), || {
            let mut redis = redis.clone();
            let key = env.keys.dead_letter();
            async move {
                let r: redis::streams::StreamRangeReply = redis.xrange_all(key).await.ok()?;
                (!r.ids.is_empty()).then_some(r.ids)
            }
        })
        .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].get::<String>("e").as_deref(),
        Some("{this is not an entry")
    );
    let len: u64 = redis.xlen(env.keys.ingress()).await.unwrap();
    assert_eq!(len, 0, "processed entries are acknowledged and deleted");
}

#[tokio::test]
async fn entries_a_dead_worker_left_pending_are_claimed_and_delivered() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    env.gateway_online(&["alice", "bob"]).await;
    let mut rx = env.subscribe().await;

    // A worker reads an entry and dies before acknowledging it.
    let mut redis = env.storage.redis().await;
    let _: () = redis
        .xgroup_create_mkstream(env.keys.ingress(), "chat-service", "0")
        .await
        .unwrap();
    env.xadd("alice", 3, "orphan", "user:bob", "left behind")
        .await;
    let read: redis::streams::StreamReadReply = redis
        .xread_options(
            &[env.keys.ingress()],
            &[">"],
            &redis::streams::StreamReadOptions::default().group("chat-service", "ghost"),
        )
        .await
        .unwrap();
    assert_eq!(read.keys[0].ids.len(), 1);

    let mut config = env.worker_config("w1");
    config.claim_idle_ms = 1000;
    env.spawn_worker(config).await;
    let message = next_of(&mut rx, "message").await;
    assert_eq!(message["frame"]["body"], "left behind");
    assert_eq!(next_of(&mut rx, "sent").await["conn"], 3);
    assert_eq!(env.history("dm:alice:bob").await.len(), 1);
    let pending: redis::streams::StreamPendingReply = redis
        .xpending(env.keys.ingress(), "chat-service")
        .await
        .unwrap();
    assert_eq!(pending.count(), 0);
}
