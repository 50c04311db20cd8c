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

    let dead = env.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].get::<String>("e").as_deref(),
        Some("{this is not an entry")
    );
    let mut redis = env.storage.redis().await;
    let len: u64 = redis.xlen(env.keys.ingress(0)).await.unwrap();
    assert_eq!(len, 0, "processed entries are acknowledged and deleted");
}

#[tokio::test]
async fn entries_a_dead_worker_left_pending_are_claimed_and_delivered() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    env.gateway_online(&["alice", "bob"]).await;
    let mut rx = env.subscribe().await;
    env.orphan("ghost", "alice", "orphan", "left behind").await;

    let mut config = env.worker_config("w1");
    config.claim_idle_ms = 1000;
    env.spawn_worker(config).await;
    let message = next_of(&mut rx, "message").await;
    assert_eq!(message["frame"]["body"], "left behind");
    assert_eq!(next_of(&mut rx, "sent").await["conn"], 3);
    assert_eq!(env.history("dm:alice:bob").await.len(), 1);
    // Acknowledged right after the `sent` is published.
    testkit::eventually("nothing pending", Duration::from_secs(10), || async {
        (env.pending().await == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_entry_delivered_too_often_goes_to_the_dead_letter_stream() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    env.gateway_online(&["alice"]).await;
    let mut rx = env.subscribe().await;
    // Workers that read it keep dying: it is read, then claimed over and over.
    let id = env
        .orphan("dead-1", "alice", "poison", "kills every worker")
        .await;
    claimed_too_often_then_a_worker(&env, &id).await;
    let dead = env.dead_letters().await;
    assert_eq!(
        dead[0].get::<String>("reason").as_deref(),
        Some("too many deliveries")
    );
    assert_eq!(dead[0].get::<String>("id").as_deref(), Some(id.as_str()));
    // It was not processed, and the stream moves on.
    assert!(env.history("dm:alice:bob").await.is_empty());
    env.xadd("alice", 3, "fine", "user:bob", "next").await;
    let sent = next_of(&mut rx, "sent").await;
    assert_eq!(sent["frame"]["client_id"], "fine");
    // Acknowledged right after the `sent` is published.
    testkit::eventually("nothing pending", Duration::from_secs(10), || async {
        (env.pending().await == 0).then_some(())
    })
    .await;
}

/// A flood of unreadable entries cannot grow the dead-letter stream without
/// bound: it is capped (approximately) at DEAD_LETTER_MAXLEN.
#[tokio::test]
async fn the_dead_letter_stream_is_capped() {
    let env = spawn_env().await;
    let flood = chat_model::limits::DEAD_LETTER_MAXLEN as usize + 2_000;
    let mut redis = env.storage.redis().await;
    let stream = env.keys.ingress(0);
    for chunk in 0..flood / 500 {
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg(chat_model::message::INGRESS_FIELD)
                .arg(format!("not json {chunk}-{i}"))
                .ignore();
        }
        let () = pipe.query_async(&mut redis).await.unwrap();
    }
    let mut config = env.worker_config("w1");
    config.batch_size = 1000;
    env.spawn_worker(config).await;
    testkit::eventually("the flood handled", Duration::from_secs(60), || async {
        let left: u64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut env.storage.redis().await)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
    let dead: u64 = redis::cmd("XLEN")
        .arg(env.keys.dead_letter(0))
        .query_async(&mut redis)
        .await
        .unwrap();
    let cap = chat_model::limits::DEAD_LETTER_MAXLEN;
    assert!(
        (cap - 1_000..=cap + 200).contains(&dead),
        "{dead} dead letters for a cap of {cap}"
    );
}

/// A poison entry that had already taken a seq (a worker sequenced it, then
/// died on it again and again) leaves a tombstone at that seq: history and
/// clients see no gap.
#[tokio::test]
async fn a_dead_lettered_message_that_took_a_seq_leaves_a_tombstone() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    env.gateway_online(&["alice"]).await;
    let mut rx = env.subscribe().await;
    let id = env
        .orphan("dead-1", "alice", "poison", "kills every worker")
        .await;
    let mut redis = env.storage.redis().await;
    // What the first worker did before dying: seq 1, its dedup record, and
    // the conversation's preview.
    let parts = chat_model::preview::PreviewParts::new("tomb-id", "alice", "poison body", 1);
    let preview = format!("{}1{}", parts.before_seq, parts.after_seq);
    let () = redis::pipe()
        .set(env.keys.seq("dm:alice:bob"), 1)
        .ignore()
        .hset_multiple(
            env.keys.last("dm:alice:bob"),
            &[("seq", "1"), ("at", "1"), ("m", preview.as_str())],
        )
        .ignore()
        .set(
            env.keys.dedup("dm:alice:bob", "alice", "poison"),
            format!("tomb-id|1|1700000000000|{id}"),
        )
        .ignore()
        .query_async(&mut redis)
        .await
        .unwrap();
    claimed_too_often_then_a_worker(&env, &id).await;
    env.dead_letters().await;
    // The list no longer previews a message that was never stored.
    let shown: Option<String> = redis
        .hget(env.keys.last("dm:alice:bob"), "m")
        .await
        .unwrap();
    let shown: chat_model::preview::Preview = serde_json::from_str(&shown.unwrap()).unwrap();
    assert!(
        shown.deleted && shown.body.is_empty() && shown.seq == 1,
        "{shown:?}"
    );
    // A re-send of the dead-lettered message is told it failed, never
    // acknowledged as stored.
    env.xadd("alice", 3, "poison", "user:bob", "kills every worker")
        .await;
    let refused = next_of(&mut rx, "error").await;
    assert_eq!(
        (&refused["frame"]["code"], &refused["frame"]["ref"]),
        (&"failed".into(), &"poison".into()),
        "{refused}"
    );
    env.xadd("alice", 3, "fine", "user:bob", "next").await;
    let sent = next_of(&mut rx, "sent").await;
    assert_eq!(sent["frame"]["client_id"], "fine");
    assert_eq!(sent["frame"]["seq"], 2);

    let history = env.history("dm:alice:bob").await;
    let got: Vec<(u64, bool, &str)> = history
        .iter()
        .map(|m| (m.seq, m.tombstone, m.body.as_str()))
        .collect();
    assert_eq!(got, [(1, true, ""), (2, false, "next")]);
    assert_eq!(history[0].id, "tomb-id");
    let shown: Option<String> = redis
        .hget(env.keys.last("dm:alice:bob"), "m")
        .await
        .unwrap();
    assert!(shown.unwrap().contains(r#""body":"next""#));
}

/// Entry `id` is claimed by three more dying workers; then a worker that
/// dead-letters past three deliveries starts.
async fn claimed_too_often_then_a_worker(env: &crate::helpers::TestEnv, id: &str) {
    let mut redis = env.storage.redis().await;
    for i in 2..=4 {
        let _: redis::Value = redis
            .xclaim(
                env.keys.ingress(0),
                "chat-service",
                format!("dead-{i}"),
                0,
                &[id],
            )
            .await
            .unwrap();
    }
    let mut config = env.worker_config("w1");
    config.claim_idle_ms = 1000;
    config.max_deliveries = 3;
    env.spawn_worker(config).await;
}
