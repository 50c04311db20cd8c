//! Edits and deletes: events with their own seq, delivered live, queued
//! offline and kept in history, with the target showing its current state.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{StackOptions, send, spawn_stack, spawn_stack_with};

fn edit(client_id: &str, conversation: &str, seq: u64, body: &str) -> Value {
    json!({"type": "edit", "client_id": client_id, "conversation": conversation, "seq": seq, "body": body})
}

fn delete(client_id: &str, conversation: &str, seq: u64) -> Value {
    json!({"type": "delete", "client_id": client_id, "conversation": conversation, "seq": seq})
}

#[tokio::test]
async fn senders_edit_and_delete_their_messages_and_history_shows_the_current_state() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(0, &bob).await;
    for (i, body) in ["tpyo", "oops"].iter().enumerate() {
        a.send_json(&send(&format!("m{i}"), "user:bob", body)).await;
        a.recv_type("sent").await;
        b.recv_type("message").await;
    }

    a.send_json(&edit("e1", "dm:alice:bob", 1, "typo")).await;
    let sent = a.recv_type("sent").await;
    assert_eq!(
        (&sent["client_id"], &sent["seq"]),
        (&json!("e1"), &json!(3))
    );
    let got = b.recv_type("message").await;
    assert_eq!(
        (
            &got["kind"],
            &got["target_seq"],
            &got["body"],
            &got["seq"],
            &got["from"]
        ),
        (
            &json!("edit"),
            &json!(1),
            &json!("typo"),
            &json!(3),
            &json!("alice")
        )
    );
    a.send_json(&delete("d1", "dm:alice:bob", 2)).await;
    assert_eq!(a.recv_type("sent").await["seq"], 4);
    let got = b.recv_type("message").await;
    assert_eq!(
        (&got["kind"], &got["target_seq"], &got["body"]),
        (&json!("delete"), &json!(2), &json!(""))
    );

    // Only the sender may; not an event, not a deleted message, not a seq
    // that does not exist. Each refusal names its client_id and takes no seq.
    for (frame, code) in [
        (edit("x1", "dm:alice:bob", 1, "mine now"), "forbidden"),
        (delete("x2", "dm:alice:bob", 1), "forbidden"),
        (edit("x3", "dm:alice:bob", 3, "edit an edit"), "bad_request"),
        (edit("x4", "dm:alice:bob", 2, "undelete"), "not_found"),
        (delete("x5", "dm:alice:bob", 99), "not_found"),
        (edit("x6", "dm:alice:carol", 1, "not mine"), "forbidden"),
    ] {
        b.send_json(&frame).await;
        let error = b.recv_type("error").await;
        assert_eq!(
            (&error["code"], &error["ref"]),
            (&json!(code), &frame["client_id"]),
            "{frame}: {error}"
        );
    }
    a.send_json(&edit("x7", "dm:alice:bob", 2, "undelete"))
        .await;
    assert_eq!(a.recv_type("error").await["code"], "not_found");

    let (s, page) = stack
        .get("/api/conversations/dm:alice:bob/messages", Some(&bob))
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let messages = page["messages"].as_array().unwrap();
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4], "gap-free, refusals took no seq");
    assert_eq!(
        (&messages[0]["body"], &messages[0]["edit_seq"]),
        (&json!("typo"), &json!(3))
    );
    assert!(messages[0]["edited_at"].as_i64().unwrap() >= messages[0]["ts"].as_i64().unwrap());
    assert_eq!(
        (
            &messages[1]["body"],
            &messages[1]["deleted"],
            &messages[1]["tombstone"]
        ),
        (&json!(""), &json!(true), &json!(true))
    );
    assert_eq!(
        (&messages[2]["kind"], &messages[2]["body"]),
        (&json!("edit"), &json!(""))
    );
    assert_eq!(messages[3]["kind"], "delete");

    // The list previews the last message as it is now: deleted.
    let (_, one) = stack
        .get("/api/conversations/dm:alice:bob", Some(&bob))
        .await;
    assert_eq!(
        (&one["last_seq"], &one["last_message"]["seq"]),
        (&json!(4), &json!(2))
    );
    assert_eq!(one["last_message"]["deleted"], true);
    assert_eq!(one["last_message"]["body"], "");
}

#[tokio::test]
async fn events_wait_in_the_offline_queue_with_their_body() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    a.send_json(&send("m1", "user:bob", "draft")).await;
    a.recv_type("sent").await;
    a.send_json(&edit("e1", "dm:alice:bob", 1, "final")).await;
    a.recv_type("sent").await;
    let (_b, offline) = stack.connect(0, &bob).await;
    let queued = offline["messages"].as_array().unwrap();
    assert_eq!(queued.len(), 2, "{offline}");
    assert_eq!(
        (&queued[1]["kind"], &queued[1]["body"]),
        (&json!("edit"), &json!("final"))
    );
    // The preview of the last message shows the edit.
    let (_, one) = stack
        .get("/api/conversations/dm:alice:bob", Some(&bob))
        .await;
    assert_eq!(one["last_message"]["body"], "final");
    assert!(one["last_message"]["edited_at"].is_i64(), "{one}");
}

#[tokio::test]
async fn a_rooms_owner_deletes_any_message_there_and_members_only_their_own() {
    let stack = spawn_stack().await;
    let owner = stack.user("owner").await;
    let member = stack.user("member").await;
    stack.create_room(&owner, "club").await;
    stack.join_room(&member, "club").await;
    let (mut o, _) = stack.connect(0, &owner).await;
    let (mut m, _) = stack.connect(0, &member).await;
    // Seq 1 is the member's join.
    o.send_json(&send("o1", "room:club", "rules")).await;
    assert_eq!(o.recv_type("sent").await["seq"], 2);
    m.send_json(&send("m1", "room:club", "spam")).await;
    assert_eq!(m.recv_type("sent").await["seq"], 3);

    m.send_json(&delete("m2", "room:club", 2)).await;
    assert_eq!(m.recv_type("error").await["code"], "forbidden");
    o.send_json(&delete("o2", "room:club", 3)).await;
    assert_eq!(o.recv_type("sent").await["seq"], 4);
    let (_, page) = stack
        .get("/api/conversations/room:club/messages", Some(&member))
        .await;
    assert_eq!(page["messages"][0]["member"]["action"], "join", "{page}");
    assert_eq!(page["messages"][2]["deleted"], true, "{page}");
    assert_eq!(page["messages"][1]["body"], "rules");
}

#[tokio::test]
async fn edits_close_after_the_edit_window_and_deletes_do_not() {
    let stack = spawn_stack_with(StackOptions {
        worker: vec![("EDIT_WINDOW_SECS", 1.to_string())],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    a.send_json(&send("m1", "user:bob", "soon stale")).await;
    let ts = a.recv_type("sent").await["ts"].as_i64().unwrap();
    // The window is measured from the message's ts, on the server's clock
    // (this one): past it, the edit is refused.
    let wait = ts + 1_100 - chat_model::time::now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    a.send_json(&edit("e1", "dm:alice:bob", 1, "too late"))
        .await;
    let error = a.recv_type("error").await;
    assert_eq!(
        (&error["code"], &error["ref"]),
        (&json!("forbidden"), &json!("e1")),
        "{error}"
    );
    a.send_json(&delete("d1", "dm:alice:bob", 1)).await;
    assert_eq!(a.recv_type("sent").await["seq"], 2);
}
