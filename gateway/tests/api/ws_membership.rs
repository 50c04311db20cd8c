use serde_json::json;

use crate::helpers::{StackOptions, send, spawn_stack_with};

#[tokio::test]
async fn joins_and_leaves_are_enforced_for_the_very_next_send() {
    // A member-list cache that would otherwise stay stale for a minute:
    // enforcement comes from the membership version, not from expiry.
    let stack = spawn_stack_with(StackOptions {
        worker: vec![("MEMBERSHIP_TTL_MS", 60_000.to_string())],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let carol = stack.user("carol").await;
    stack.create_room(&alice, "general").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut c, _) = stack.connect(0, &carol).await;

    // Not a member yet (and the refusal is cached).
    c.send_json(&send("c1", "room:general", "hi?")).await;
    assert_eq!(c.recv_type("error").await["code"], "forbidden");

    // Right after joining: accepted, and alice gets it.
    stack.join_room(&carol, "general").await;
    c.send_json(&send("c2", "room:general", "joined")).await;
    assert_eq!(c.recv_type("sent").await["client_id"], "c2");
    assert_eq!(a.recv_chat().await["body"], "joined");

    // Right after leaving: refused again.
    let (s, _) = stack
        .post("/api/rooms/general/leave", Some(&carol), json!({}))
        .await;
    assert_eq!(s, 200);
    c.send_json(&send("c3", "room:general", "still here?"))
        .await;
    let e = c.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("forbidden"), Some("c3"))
    );

    // And alice's messages no longer reach carol.
    a.send_json(&send("a1", "room:general", "bye carol")).await;
    a.recv_type("sent").await;
    c.send_json(&json!({"type": "ping"})).await;
    assert_eq!(
        c.recv().await["type"],
        "pong",
        "no message for a former member"
    );
}
