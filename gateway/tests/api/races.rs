//! What a client that races its own requests sees, across two gateways: a
//! delete is final against the edit or delete sent right behind it, one
//! client_id names one request, and a message sequenced while its
//! recipient connects reaches the new socket.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{WsClient, proxy::Mode};

use crate::helpers::{StackOptions, send, spawn_stack_with};

/// The answer to `client_id`: its `sent` or its error, skipping the rest.
async fn answer(ws: &mut WsClient, client_id: &str) -> Value {
    loop {
        let f = ws.recv().await;
        let refers = f["client_id"] == client_id || f["ref"] == client_id;
        if refers && matches!(f["type"].as_str(), Some("sent" | "error")) {
            return f;
        }
    }
}

fn change(kind: &str, client_id: &str, seq: &Value, body: Option<&str>) -> Value {
    let mut frame = json!({"type": kind, "client_id": client_id,
        "conversation": "dm:alice:bob", "seq": seq});
    if let Some(body) = body {
        frame["body"] = json!(body);
    }
    frame
}

#[tokio::test]
async fn a_delete_is_final_against_the_edit_and_the_delete_sent_right_behind_it() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(1, &bob).await;
    for i in 0..8 {
        a.send_json(&send(&format!("m{i}"), "user:bob", &format!("message {i}")))
            .await;
        let sent = answer(&mut a, &format!("m{i}")).await;
        let seq = sent["seq"].clone();
        // The delete, and without waiting an edit and a second delete.
        a.send_json(&change("delete", &format!("d{i}"), &seq, None))
            .await;
        a.send_json(&change(
            "edit",
            &format!("e{i}"),
            &seq,
            Some("after delete"),
        ))
        .await;
        a.send_json(&change("delete", &format!("x{i}"), &seq, None))
            .await;
        let deleted = answer(&mut a, &format!("d{i}")).await;
        assert_eq!(deleted["type"], "sent", "{deleted}");
        let edit = answer(&mut a, &format!("e{i}")).await;
        let again = answer(&mut a, &format!("x{i}")).await;
        // An edit may only have come first; after the delete nothing does.
        if edit["type"] == "sent" {
            assert!(
                edit["seq"].as_u64() < deleted["seq"].as_u64(),
                "{edit} after {deleted}"
            );
        } else {
            assert_eq!(edit["code"], "not_found", "{edit}");
        }
        assert_eq!(
            (again["type"].as_str(), again["code"].as_str()),
            (Some("error"), Some("not_found")),
            "a second delete: {again}"
        );
    }
    // Every surface shows each message deleted, with nothing after it.
    let (_, page) = stack
        .get(
            "/api/conversations/dm:alice:bob/messages?limit=200",
            Some(&bob),
        )
        .await;
    let messages = page["messages"].as_array().unwrap();
    for m in messages.iter().filter(|m| m["kind"].is_null()) {
        assert_eq!(
            (m["deleted"].as_bool(), m["body"].as_str()),
            (Some(true), Some("")),
            "{m}"
        );
    }
    let deletes = messages.iter().filter(|m| m["kind"] == "delete").count();
    assert_eq!(deletes, 8, "one delete each");
    // bob's socket saw no edit after a delete either.
    let mut deleted = std::collections::HashSet::new();
    while let Ok(f) = b.next_frame(Duration::from_millis(300)).await {
        if f["kind"] == "delete" {
            deleted.insert(f["target_seq"].as_u64());
        }
        if f["kind"] == "edit" {
            assert!(!deleted.contains(&f["target_seq"].as_u64()), "{f}");
        }
    }
}

#[tokio::test]
async fn a_client_id_names_one_request_and_another_one_under_it_is_a_conflict() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    stack.user("bob").await;
    stack.create_room(&alice, "ops").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    a.send_json(&send("c1", "user:bob", "hi")).await;
    let sent = answer(&mut a, "c1").await;
    assert_eq!(sent["type"], "sent");
    // Its own client_id for its delete: a conflict, and nothing is deleted.
    a.send_json(&change("delete", "c1", &sent["seq"], None))
        .await;
    let refused = answer(&mut a, "c1").await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("conflict")),
        "{refused}"
    );
    // The same client_id into another conversation, from another gateway.
    let (mut a2, _) = stack.connect(1, &alice).await;
    a2.send_json(&send("c1", "room:ops", "elsewhere")).await;
    let refused = answer(&mut a2, "c1").await;
    assert_eq!(refused["code"], "conflict", "{refused}");
    // The same request again is a pure ack.
    a.send_json(&send("c1", "user:bob", "hi")).await;
    let again = answer(&mut a, "c1").await;
    assert_eq!((&again["id"], &again["seq"]), (&sent["id"], &sent["seq"]));
    let (_, page) = stack
        .get("/api/conversations/dm:alice:bob/messages", Some(&alice))
        .await;
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (
            messages[0]["body"].as_str(),
            messages[0]["deleted"].as_bool()
        ),
        (Some("hi"), None)
    );
    let (_, room) = stack
        .get("/api/conversations/room:ops/messages", Some(&alice))
        .await;
    assert_eq!(room["messages"], json!([]));
}

/// The connect race: the worker looks the recipient up (offline) and then
/// stores the message; the recipient's socket registers and reads its
/// offline queue in between. The message must reach that socket live.
#[tokio::test]
async fn a_message_sequenced_while_its_recipient_connects_reaches_the_new_socket() {
    let stack = spawn_stack_with(StackOptions {
        history_link: true,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let link = stack.history_link.as_ref().unwrap();
    link.set(Mode::Hold);
    a.send_json(&send("c1", "user:bob", "while you connect"))
        .await;
    // The worker has looked bob up and its write to history-service waits
    // on the held link.
    testkit::eventually("the store to be held", Duration::from_secs(10), || async {
        (link.held_bytes() > 0).then_some(())
    })
    .await;
    let (mut b, offline) = stack.connect(0, &bob).await;
    assert_eq!(offline["messages"], json!([]), "not stored yet: {offline}");
    link.set(Mode::Pass);
    let m = testkit::within(
        "the message, live",
        Duration::from_secs(15),
        b.recv_type("message"),
    )
    .await;
    assert_eq!(m["body"], "while you connect");
    assert_eq!(answer(&mut a, "c1").await["type"], "sent");
    // Exactly once on that socket, though it is in bob's queue as well.
    while let Ok(f) = b.next_frame(Duration::from_millis(500)).await {
        assert_ne!(f["type"], "message", "delivered twice: {f}");
    }
}
