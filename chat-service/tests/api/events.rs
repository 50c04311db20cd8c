//! Edits and deletes decided atomically with their seq: a delete is final
//! against every request that races it, in the same batch or not; and one
//! client_id names one request.

use chat_model::message::EntryKind;

use crate::helpers::{TestEnv, next_of, spawn_env};

async fn alice_and_bob() -> (
    TestEnv,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    env.gateway_online(&["alice"]).await;
    let rx = env.subscribe().await;
    env.spawn_worker(env.worker_config("w1")).await;
    (env, rx)
}

/// The answers to the client_ids `ids`, in any order: `sent` frames by
/// client_id, or an error's code by its ref.
async fn answers(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    ids: &[&str],
) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    while out.len() < ids.len() {
        let d = testkit::within("answers", std::time::Duration::from_secs(15), rx.recv())
            .await
            .expect("subscription open");
        let f = &d["frame"];
        let (key, value) = match f["type"].as_str() {
            Some("sent") => (f["client_id"].clone(), format!("sent {}", f["seq"])),
            Some("error") => (
                f["ref"].clone(),
                format!("error {}", f["code"].as_str().unwrap()),
            ),
            _ => continue,
        };
        if let Some(k) = key.as_str().filter(|k| ids.contains(k)) {
            out.insert(k.to_owned(), value);
        }
    }
    out
}

#[tokio::test]
async fn a_delete_is_final_against_changes_in_its_own_batch() {
    let (env, mut rx) = alice_and_bob().await;
    env.xadd("alice", 3, "m1", "user:bob", "hello").await;
    assert_eq!(next_of(&mut rx, "sent").await["frame"]["seq"], 1);
    // A delete, an edit and a second delete of it, read in one batch: they
    // were judged against the same stored message, and only the first may
    // take a seq.
    let entry =
        |id: &str, kind, body: &str| TestEnv::entry("alice", id, "user:bob", kind, Some(1), body);
    env.xadd_together(&[
        entry("d1", EntryKind::Delete, ""),
        entry("e1", EntryKind::Edit, "too late"),
        entry("d2", EntryKind::Delete, ""),
    ])
    .await;
    let got = answers(&mut rx, &["d1", "e1", "d2"]).await;
    assert_eq!(got["d1"], "sent 2", "{got:?}");
    assert_eq!(got["e1"], "error not_found", "{got:?}");
    assert_eq!(got["d2"], "error not_found", "{got:?}");
    let history = env.history("dm:alice:bob").await;
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2], "a refused event takes no seq");
    assert!(
        history[0].deleted && history[0].body.is_empty(),
        "{:?}",
        history[0]
    );
    // Later, in a batch of its own, still refused.
    env.xadd_together(&[entry("e2", EntryKind::Edit, "later still")])
        .await;
    assert_eq!(answers(&mut rx, &["e2"]).await["e2"], "error not_found");
    assert_eq!(env.history("dm:alice:bob").await.len(), 2);
}

#[tokio::test]
async fn one_client_id_names_one_request() {
    let (env, mut rx) = alice_and_bob().await;
    env.user("carol").await;
    env.room("ops", &["alice", "carol"]).await;
    env.xadd("alice", 3, "c1", "user:bob", "hello").await;
    let sent = next_of(&mut rx, "sent").await;
    assert_eq!(sent["frame"]["seq"], 1);
    // The message's own client_id for its delete, the same client_id into
    // another conversation, and for an edit: each is another request.
    env.xadd_together(&[TestEnv::entry(
        "alice",
        "c1",
        "user:bob",
        EntryKind::Delete,
        Some(1),
        "",
    )])
    .await;
    assert_eq!(answers(&mut rx, &["c1"]).await["c1"], "error conflict");
    env.xadd("alice", 3, "c1", "room:ops", "elsewhere").await;
    assert_eq!(answers(&mut rx, &["c1"]).await["c1"], "error conflict");
    // The same request again is the same answer.
    env.xadd("alice", 3, "c1", "user:bob", "hello again").await;
    let again = next_of(&mut rx, "sent").await;
    assert_eq!(again["frame"]["id"], sent["frame"]["id"]);
    assert_eq!(again["frame"]["seq"], 1);
    let history = env.history("dm:alice:bob").await;
    assert_eq!(history.len(), 1);
    assert!(!history[0].deleted && history[0].body == "hello");
    assert!(
        env.history("room:ops").await.is_empty(),
        "nothing reached the room"
    );
}
