use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{StackOptions, send, spawn_stack, spawn_stack_with};

fn two_gateways() -> StackOptions {
    StackOptions {
        gateways: 2,
        ..StackOptions::default()
    }
}

#[tokio::test]
async fn dm_across_gateways_live_and_offline() {
    let stack = spawn_stack_with(two_gateways()).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;

    // Bob is offline: the message waits in his queue.
    a.send_json(&send("c1", "user:bob", "are you there?")).await;
    let sent = a.recv_type("sent").await;
    assert_eq!(sent["conversation"], "dm:alice:bob");
    assert_eq!(sent["seq"], 1);

    let (mut b, offline) = stack.connect(1, &bob).await;
    let queued = offline["messages"].as_array().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["id"], sent["id"]);
    assert_eq!(queued[0]["from"], "alice");
    assert_eq!(queued[0]["to"], "user:bob");
    assert_eq!(queued[0]["client_id"], "c1");
    b.send_json(&json!({"type": "offline_ack"})).await;

    // Live, across gateways, both directions.
    a.send_json(&send("c2", "user:bob", "hello bob")).await;
    let sent = a.recv_type("sent").await;
    let got = b.recv_type("message").await;
    assert_eq!(got["id"], sent["id"]);
    assert_eq!(got["seq"], 2);
    assert_eq!(got["body"], "hello bob");
    b.send_json(&send("r1", "user:alice", "hi alice")).await;
    assert_eq!(b.recv_type("sent").await["seq"], 3);
    assert_eq!(a.recv_type("message").await["body"], "hi alice");

    // The acked batch is gone; nothing is redelivered on reconnect.
    drop(b);
    let (_b2, offline) = stack.connect(1, &bob).await;
    let ids: Vec<_> = offline["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert!(
        !ids.contains(&json!(1)),
        "acked message redelivered: {offline}"
    );
}

#[tokio::test]
async fn an_unacked_offline_batch_is_sent_again() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    a.send_json(&send("c1", "user:bob", "one")).await;
    a.recv_type("sent").await;

    let (b, offline) = stack.connect(0, &bob).await;
    assert_eq!(offline["messages"].as_array().unwrap().len(), 1);
    drop(b);
    let (mut b, offline) = stack.connect(0, &bob).await;
    assert_eq!(
        offline["messages"][0]["body"], "one",
        "redelivered: {offline}"
    );
    b.send_json(&json!({"type": "offline_ack"})).await;
    // The ack is applied before the next connect reads the queue.
    b.send_json(&json!({"type": "ping"})).await;
    b.recv_type("pong").await;
    drop(b);
    let (_b, offline) = stack.connect(0, &bob).await;
    assert_eq!(
        offline["messages"].as_array().unwrap().len(),
        0,
        "{offline}"
    );
}

#[tokio::test]
async fn resending_a_client_id_yields_the_same_message() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(0, &bob).await;
    a.send_json(&send("same", "user:bob", "once")).await;
    let first = a.recv_type("sent").await;
    a.send_json(&send("same", "user:bob", "once")).await;
    let second = a.recv_type("sent").await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["seq"], second["seq"]);
    a.send_json(&send("next", "user:bob", "twice")).await;
    assert_eq!(
        a.recv_type("sent").await["seq"],
        2,
        "no seq was spent on the replay"
    );
    // Bob may see the replay again (clients dedup by id) but only one seq 1.
    let mut seen = Vec::new();
    while seen.last() != Some(&2) {
        seen.push(b.recv_type("message").await["seq"].as_u64().unwrap());
    }
    assert!(seen.iter().all(|s| *s == 1 || *s == 2), "{seen:?}");
}

#[tokio::test]
async fn a_resend_is_a_pure_ack_that_never_delivers_again_nor_changes_the_body() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(0, &bob).await;
    a.send_json(&send("same", "user:bob", "the original")).await;
    let first = a.recv_type("sent").await;
    assert_eq!(b.recv_type("message").await["body"], "the original");

    // The same client_id again, and once more with another body.
    a.send_json(&send("same", "user:bob", "the original")).await;
    let again = a.recv_type("sent").await;
    a.send_json(&send("same", "user:bob", "a forgery")).await;
    let forged = a.recv_type("sent").await;
    for sent in [&again, &forged] {
        for field in ["id", "seq", "ts", "conversation", "client_id"] {
            assert_eq!(sent[field], first[field], "{field}");
        }
    }
    // Bob gets the next message and nothing in between.
    a.send_json(&send("next", "user:bob", "after")).await;
    a.recv_type("sent").await;
    let next = b.recv_type("message").await;
    assert_eq!(
        (next["seq"].as_u64(), next["body"].as_str()),
        (Some(2), Some("after"))
    );

    let (s, page) = stack
        .get("/api/conversations/dm:alice:bob/messages", Some(&bob))
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["the original", "after"]);
}

#[tokio::test]
async fn room_messages_reach_every_member_on_every_gateway_and_other_devices() {
    let stack = spawn_stack_with(two_gateways()).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    let dave = stack.user("dave").await;
    stack.create_room(&alice, "general").await;
    stack.join_room(&bob, "general").await;
    stack.join_room(&carol, "general").await;

    let (mut a1, _) = stack.connect(0, &alice).await;
    let (mut a2, _) = stack.connect(1, &alice).await; // alice's second device
    let (mut b, _) = stack.connect(0, &bob).await;
    let (mut c, _) = stack.connect(1, &carol).await;
    let (mut d, _) = stack.connect(1, &dave).await; // not a member

    a1.send_json(&send("m1", "room:general", "hello room"))
        .await;
    let sent = a1.recv_type("sent").await;
    for (name, ws) in [
        ("alice's other device", &mut a2),
        ("bob", &mut b),
        ("carol", &mut c),
    ] {
        let m = ws.recv_type("message").await;
        assert_eq!(m["id"], sent["id"], "{name}");
        assert_eq!(m["conversation"], "room:general");
    }
    // The sending socket got `sent`, not a copy; dave got nothing.
    d.send_json(&json!({"type": "ping"})).await;
    assert_eq!(d.recv().await["type"], "pong");
    a1.send_json(&json!({"type": "ping"})).await;
    assert_eq!(a1.recv().await["type"], "pong");

    // A non-member is refused and nothing is stored.
    d.send_json(&send("x1", "room:general", "let me in")).await;
    let e = d.recv_type("error").await;
    assert_eq!(e["code"], "forbidden");
    assert_eq!(e["ref"], "x1");
    d.send_json(&send("x2", "room:nowhere", "hello?")).await;
    let e = d.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("not_found"), Some("x2"))
    );
    d.send_json(&send("x3", "user:ghost", "boo")).await;
    assert_eq!(d.recv_type("error").await["code"], "not_found");

    a1.send_json(&send("m2", "room:general", "second")).await;
    assert_eq!(
        a1.recv_type("sent").await["seq"],
        4,
        "the refused sends took no seq (1 and 2 are the joins)"
    );
}

#[tokio::test]
async fn typing_reaches_online_members_but_is_not_stored() {
    let stack = spawn_stack_with(two_gateways()).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(1, &bob).await;
    a.send_json(&json!({"type": "typing", "to": "user:bob"}))
        .await;
    let t = b.recv_type("typing").await;
    assert_eq!(t["from"], "alice");
    assert_eq!(t["conversation"], "dm:alice:bob");
    let (_, page) = stack
        .get("/api/conversations/dm:alice:bob/messages", Some(&alice))
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 0);
    // The typist does not get their own notice.
    a.send_json(&json!({"type": "ping"})).await;
    assert_eq!(a.recv().await["type"], "pong");
}

#[tokio::test]
async fn past_the_offline_limit_the_newest_arrive_with_truncated() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("RATE_PER_SEC", 1000.to_string()),
            ("ACCOUNT_MESSAGES_PER_SEC", 0.to_string()),
            ("RATE_BURST", 1000.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    for i in 1..=150 {
        a.send_json(&send(&format!("c{i}"), "user:bob", &format!("n{i}")))
            .await;
    }
    for _ in 0..150 {
        a.recv_type("sent").await;
    }
    let (mut b, offline) = stack.connect(0, &bob).await;
    let messages = offline["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 100);
    assert_eq!(
        messages[0]["body"], "n51",
        "oldest first, the newest 100 kept"
    );
    assert_eq!(messages[99]["body"], "n150");
    assert_eq!(offline["truncated"], true);
    // The rest is in history.
    b.send_json(&json!({"type": "history", "ref": "h", "conversation": "dm:alice:bob", "before": 51, "limit": 200}))
        .await;
    let h = b.recv_type("history").await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 50);
    assert_eq!(h["has_more"], false);
    b.send_json(&json!({"type": "offline_ack"})).await;
    b.send_json(&json!({"type": "ping"})).await;
    b.recv_type("pong").await;
    drop(b);
    let (_b, offline) = stack.connect(0, &bob).await;
    assert_eq!(offline["messages"].as_array().unwrap().len(), 0);
    assert_eq!(
        offline["truncated"], false,
        "the ack cleared the dropped count"
    );
}
