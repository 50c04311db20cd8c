//! DM recipients a worker has not seen yet are looked up a batch at a time:
//! a cold worker, or a burst of new conversations, costs one user-service
//! round trip per batch, not one per message.

use std::time::Duration;

use crate::{helpers::spawn_env, relay};

#[tokio::test]
async fn a_batch_of_dms_to_new_recipients_asks_user_service_once() {
    let env = spawn_env().await;
    env.user("alice").await;
    let recipients: Vec<String> = (0..20).map(|i| format!("bob_{i:02}")).collect();
    for r in &recipients {
        env.user(r).await;
    }
    env.gateway_online(&["alice"]).await;
    let mut frames = env.subscribe().await;
    // Queued before the worker starts, so its first read takes them all.
    for (i, r) in recipients.iter().enumerate() {
        env.xadd("alice", 1, &format!("c{i}"), &format!("user:{r}"), "hi")
            .await;
    }
    env.xadd("alice", 1, "ghost", "user:ghost", "anyone?").await;
    let (relay_url, calls) = relay::spawn(env.user_url()).await;
    let mut config = env.worker_config("w1");
    config.user_service_url = relay_url;
    env.spawn_worker(config).await;

    let mut acked = 0;
    let mut refused = Vec::new();
    while acked + refused.len() < recipients.len() + 1 {
        let d = next_of_any(&mut frames).await;
        match d["frame"]["type"].as_str() {
            Some("sent") => acked += 1,
            Some("error") => refused.push(d["frame"].clone()),
            _ => {}
        }
    }
    assert_eq!(acked, recipients.len());
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["code"], "not_found");
    assert_eq!(env.history("dm:alice:bob_19").await.len(), 1);

    let calls = calls.lock().unwrap().clone();
    // 21 recipients (one unknown) in one batch: one call for all of them.
    assert_eq!(calls.get("GetUsers"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("GetUser"), None, "{calls:?}");
}

/// The next frame delivered, of any type.
async fn next_of_any(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) -> serde_json::Value {
    testkit::within("a delivery", Duration::from_secs(15), async {
        rx.recv().await.expect("subscription open")
    })
    .await
}
