use std::collections::HashSet;

use crate::helpers::{Options, message, seqs, spawn_with};

#[tokio::test]
async fn paging_through_1000_messages_returns_each_once_in_order() {
    // A small recent window, so pages cross from Redis into the archive.
    let app = spawn_with(Options {
        recent_limit: 50,
        ..Options::default()
    })
    .await;
    let conv = "room:big";
    let messages: Vec<_> = (1..=1000).map(|s| message(conv, s, "alice")).collect();
    for chunk in messages.chunks(100) {
        app.append(chunk, &[]).await;
    }
    app.wait_archived().await;
    testkit::eventually(
        "the window to shrink to its bound",
        std::time::Duration::from_secs(10),
        || async { (app.recent_len(conv).await <= 50).then_some(()) },
    )
    .await;

    // Backwards with before_seq.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = app.history(conv, before, None, 37).await;
        let s = seqs(&page.messages);
        assert!(
            s.windows(2).all(|w| w[1] == w[0] + 1),
            "ascending, gap-free page: {s:?}"
        );
        before = s.first().copied();
        seen.splice(0..0, s);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, (1..=1000).collect::<Vec<_>>());

    // Forwards with after_seq.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = app.history(conv, None, Some(after), 200).await;
        let s = seqs(&page.messages);
        if let Some(last) = s.last() {
            after = *last;
        }
        seen.extend(s);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>().len(), 1000);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    // The latest page without a cursor.
    let latest = app.history(conv, None, None, 20).await;
    assert_eq!(seqs(&latest.messages), (981..=1000).collect::<Vec<_>>());
    assert!(latest.has_more);
}

#[tokio::test]
async fn history_is_complete_before_anything_is_archived() {
    // MongoDB unreachable: nothing leaves Redis, and reads are still whole.
    let app = spawn_with(Options {
        recent_limit: 5,
        mongodb_uri: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200".into(),
        ..Options::default()
    })
    .await;
    let messages: Vec<_> = (1..=30)
        .map(|s| message("dm:alice:bob", s, "alice"))
        .collect();
    app.append(&messages, &["bob"]).await;
    let page = app.history("dm:alice:bob", None, None, 200).await;
    assert_eq!(seqs(&page.messages), (1..=30).collect::<Vec<_>>());
    assert!(!page.has_more);
    assert_eq!(app.offline("bob").await.messages.len(), 30);
    let ready = app.wait_readyz("degraded").await;
    assert!(
        ready["reason"].as_str().unwrap().contains("archive"),
        "{ready}"
    );
}
