use crate::helpers::{Options, message, spawn_app, spawn_with};

#[tokio::test]
async fn offline_queue_keeps_the_newest_and_reports_truncation() {
    let app = spawn_with(Options {
        offline_limit: 100,
        ..Options::default()
    })
    .await;
    let messages: Vec<_> = (1..=150)
        .map(|s| message("dm:alice:bob", s, "alice"))
        .collect();
    for chunk in messages.chunks(40) {
        app.append(chunk, &["bob"]).await;
    }
    let queue = app.offline("bob").await;
    assert_eq!(queue.messages.len(), 100);
    assert_eq!(
        queue.messages.first().unwrap().seq,
        51,
        "oldest kept is #51"
    );
    assert_eq!(queue.messages.last().unwrap().seq, 150);
    assert!(queue.truncated);
    assert_eq!(queue.dropped, 50);

    // All 150 are still in history.
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = app.history("dm:alice:bob", before, None, 200).await;
        before = page.messages.first().map(|m| m.seq);
        all.splice(0..0, page.messages);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(
        all.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=150).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_unacked_batch_stays_and_an_acked_one_goes() {
    let app = spawn_app().await;
    let first: Vec<_> = (1..=3)
        .map(|s| message("dm:alice:bob", s, "alice"))
        .collect();
    app.append(&first, &["bob"]).await;

    // Peeking (an unacked delivery) removes nothing.
    assert_eq!(app.offline("bob").await.messages.len(), 3);
    assert_eq!(app.offline("bob").await.messages.len(), 3);

    // A message arriving after the batch was read survives the batch's ack.
    app.append(&[message("dm:alice:bob", 4, "alice")], &["bob"])
        .await;
    let removed = app
        .w()
        .ack_offline(proto::history::internal::v1::AckOfflineRequest {
            username: "bob".into(),
            last_id: first[2].id.clone(),
            dropped: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert_eq!(removed, 3);
    let left = app.offline("bob").await;
    assert_eq!(left.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [4]);
}

#[tokio::test]
async fn replayed_appends_change_nothing() {
    let app = spawn_app().await;
    let batch: Vec<_> = (1..=5)
        .map(|s| message("room:general", s, "alice"))
        .collect();
    app.append(&batch, &["bob", "carol"]).await;
    app.append(&batch, &["bob", "carol"]).await;
    app.append(&batch[2..3], &["bob"]).await;
    for user in ["bob", "carol"] {
        assert_eq!(app.offline(user).await.messages.len(), 5, "{user}");
    }
    assert_eq!(app.recent_len("room:general").await, 5);
    app.wait_archived().await;
    let page = app.history("room:general", None, None, 50).await;
    assert_eq!(crate::helpers::seqs(&page.messages), [1, 2, 3, 4, 5]);
}

/// Offline queues are bounded in time as well as length: a queue and its
/// dropped count expire OFFLINE_TTL after the first message since the user
/// was last seen, and reading the queue (the user came back) restarts it.
#[tokio::test]
async fn offline_queues_and_their_counters_expire() {
    let app = spawn_with(Options {
        offline_limit: 2,
        ..Options::default()
    })
    .await;
    let messages: Vec<_> = (1..=3)
        .map(|s| message("dm:alice:bob", s, "alice"))
        .collect();
    app.append(&messages, &["bob"]).await;
    let mut redis = app.storage.redis().await;
    let reader = redis.clone();
    let ttl = |key: String| {
        let mut redis = reader.clone();
        async move {
            redis::cmd("TTL")
                .arg(key)
                .query_async::<i64>(&mut redis)
                .await
                .unwrap()
        }
    };
    let queue = app.storage.key("{user:bob}:offline");
    let dropped = app.storage.key("{user:bob}:offline:dropped");
    let month = 30 * 86_400;
    for key in [&queue, &dropped] {
        let t = ttl(key.clone()).await;
        assert!((month - 60..=month).contains(&t), "{key}: ttl {t}");
    }
    // Shorten it, as time would; the user's return restarts it.
    let () = redis::cmd("EXPIRE")
        .arg(&queue)
        .arg(100)
        .query_async::<i64>(&mut redis)
        .await
        .map(|_| ())
        .unwrap();
    assert_eq!(app.offline("bob").await.messages.len(), 2);
    assert!(ttl(queue.clone()).await > month - 60);
}
