//! A batch too big for one gRPC message must not wedge the worker: its writes
//! are split within GRPC_MAX_MESSAGE_BYTES on both sides.

use std::time::Duration;

use crate::helpers::spawn_env_with;

#[tokio::test]
async fn a_backlog_bigger_than_one_grpc_message_is_stored_in_parts() {
    // 64 KiB each way; the backlog below is ~200 KB of bodies alone.
    let env = spawn_env_with(64 << 10).await;
    let members: Vec<String> = (0..30).map(|i| format!("member_{i:02}")).collect();
    env.user("alice").await;
    for m in &members {
        env.user(m).await;
    }
    let mut room = vec!["alice"];
    room.extend(members.iter().map(String::as_str));
    env.room("big", &room).await;

    let body = "x".repeat(4000);
    for i in 0..50 {
        env.xadd("alice", 1, &format!("c{i}"), "room:big", &body)
            .await;
    }
    env.spawn_worker(env.worker_config("w1")).await;

    let stored = testkit::eventually(
        "all 50 messages stored",
        Duration::from_secs(30),
        || async {
            let h = env.history("room:big").await;
            (h.len() == 50).then_some(h)
        },
    )
    .await;
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    // Every offline member has every message queued.
    assert_eq!(env.offline("member_29").await.len(), 50);
    testkit::eventually(
        "the backlog acknowledged",
        Duration::from_secs(10),
        || async { (env.pending().await == 0).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn readyz_reports_a_worker_that_makes_no_progress() {
    let env = spawn_env_with(4 << 20).await;
    env.user("alice").await;
    env.user("bob").await;
    let mut config = env.worker_config("w1");
    // Nothing listens there: every Append fails, the batch is retried forever.
    config.history_service_url = "http://127.0.0.1:9".into();
    config.stall_timeout_ms = 1_000;
    let ops = env.spawn_worker_ops(config).await;
    let url = format!("http://127.0.0.1:{ops}/readyz");
    testkit::eventually(
        "a fresh worker to be ready",
        Duration::from_secs(10),
        || async {
            let r = reqwest::get(&url).await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;

    env.xadd("alice", 1, "c1", "user:bob", "stuck").await;
    let body = testkit::eventually(
        "readyz to report the stall",
        Duration::from_secs(20),
        || async {
            let r = reqwest::get(&url).await.ok()?;
            (r.status() == 503).then_some(r.text().await.ok()?)
        },
    )
    .await;
    assert!(body.contains("no progress"), "{body}");
}

#[tokio::test]
async fn a_poison_entry_is_bisected_out_and_the_rest_of_its_batch_goes_through() {
    let env = spawn_env_with(4 << 20).await;
    env.user("alice").await;
    env.user("bob").await;
    // The stream is not trusted: an entry whose sender is no valid name makes
    // history-service refuse the whole Append with INVALID_ARGUMENT, on
    // every retry of the batch it is in.
    env.xadd("alice", 1, "c1", "user:bob", "before").await;
    env.xadd("NOT-A-NAME", 2, "p1", "user:bob", "poison").await;
    env.xadd("alice", 1, "c2", "user:bob", "after").await;
    env.spawn_worker(env.worker_config("w1")).await;

    let stored = testkit::eventually(
        "the good entries stored",
        Duration::from_secs(30),
        || async {
            let h = env.history("dm:alice:bob").await;
            (h.len() == 2).then_some(h)
        },
    )
    .await;
    let bodies: Vec<&str> = stored.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["before", "after"]);
    let dead = testkit::eventually(
        "the poison dead-lettered",
        Duration::from_secs(10),
        || async {
            let d = env.dead_letters().await;
            (!d.is_empty()).then_some(d)
        },
    )
    .await;
    assert_eq!(dead.len(), 1);
    testkit::eventually("nothing left pending", Duration::from_secs(10), || async {
        (env.pending().await == 0).then_some(())
    })
    .await;
}
