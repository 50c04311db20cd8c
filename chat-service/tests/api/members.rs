//! Membership events as user-service's relay writes them: sequenced and
//! stored like messages, for the room's members as they are now; one seq
//! however often an outbox row is written to the stream; never shadowed by
//! a user's client_id; and never the target of an edit or delete.

use chat_model::message::EntryKind;

use crate::helpers::{TestEnv, next_of, spawn_env};

#[tokio::test]
async fn an_outbox_row_relayed_twice_is_one_event_with_one_seq() {
    let env = spawn_env().await;
    for u in ["alice", "bob", "carol"] {
        env.user(u).await;
    }
    env.room("club", &["alice", "bob", "carol"]).await;
    env.gateway_online(&["alice"]).await;
    let mut rx = env.subscribe().await;
    env.spawn_worker(env.worker_config("w1")).await;

    // bob, a member, sends under the client_id the next event will have:
    // it is his request, not the event's.
    env.xadd("bob", 4, "evt-7", "room:club", "hi").await;
    assert_eq!(next_of(&mut rx, "sent").await["frame"]["seq"], 1);
    let leave = TestEnv::member_entry(7, "club", "carol", "leave", "carol");
    // The relay died after its XADD and before deleting the row: the next
    // pass writes the row again.
    env.xadd_raw(&leave).await;
    env.xadd_raw(&leave).await;
    let event = next_of(&mut rx, "message").await;
    assert_eq!(
        (
            &event["frame"]["seq"],
            &event["frame"]["from"],
            &event["frame"]["member"]["action"],
            &event["frame"]["body"],
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!("carol"),
            &serde_json::json!("leave"),
            &serde_json::json!("carol left"),
        ),
        "{event}"
    );
    env.xadd("alice", 5, "a1", "room:club", "bye carol").await;
    assert_eq!(
        next_of(&mut rx, "sent").await["frame"]["seq"],
        3,
        "the second copy took no seq"
    );
    let history = env.history("room:club").await;
    let seqs: Vec<(u64, bool)> = history
        .iter()
        .map(|m| (m.seq, m.member.is_some()))
        .collect();
    assert_eq!(seqs, [(1, false), (2, true), (3, false)]);
    assert_eq!(
        history[1].member.as_ref().map(|e| e.user.as_str()),
        Some("carol")
    );
    // Offline members get it queued (bob is offline; carol, its actor,
    // does not).
    assert!(
        env.offline("bob")
            .await
            .iter()
            .any(|m| m.seq == 2 && m.member.is_some())
    );
    assert!(env.offline("carol").await.iter().all(|m| m.seq != 2));

    // An event is nobody's message to edit or delete, not even its actor's.
    env.xadd_raw(&TestEnv::entry(
        "carol",
        "c9",
        "room:club",
        EntryKind::Edit,
        Some(2),
        "no",
    ))
    .await;
    env.xadd_raw(&TestEnv::entry(
        "alice",
        "a9",
        "room:club",
        EntryKind::Delete,
        Some(2),
        "",
    ))
    .await;
    for _ in 0..2 {
        let e = next_of(&mut rx, "error").await;
        assert_eq!(e["frame"]["code"], "bad_request", "{e}");
    }
    assert_eq!(env.history("room:club").await.len(), 3);
}

#[tokio::test]
async fn an_event_for_a_room_that_is_gone_is_dropped_and_acknowledged() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.spawn_worker(env.worker_config("w1")).await;
    env.xadd_raw(&TestEnv::member_entry(
        1, "nowhere", "alice", "join", "alice",
    ))
    .await;
    testkit::eventually(
        "the entry acknowledged",
        std::time::Duration::from_secs(15),
        || async { (env.pending().await == 0 && env.stream_len().await == 0).then_some(()) },
    )
    .await;
    assert!(env.history("room:nowhere").await.is_empty());
}
