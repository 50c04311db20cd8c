//! Blocks, end to end through a gateway and a worker: the blocked user's
//! DMs are refused with `forbidden` for the very next send, in words that do
//! not say "blocked"; the blocker cannot DM them either; the blocker's
//! typing and presence are hidden from them; unblocking restores all.

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::ws::WsClient;

use crate::helpers::{StackOptions, TestStack, assert_error, send, spawn_stack_with};

/// The answer (`sent` or `error`) to the request `client_id`.
async fn answer(c: &mut WsClient, client_id: &str) -> Value {
    loop {
        let f = c.recv().await;
        let about = f["client_id"] == client_id || f["ref"] == client_id;
        if about && (f["type"] == "sent" || f["type"] == "error") {
            return f;
        }
    }
}

async fn online(stack: &TestStack, token: &str, room: &str, who: &str) -> bool {
    let (s, body) = stack
        .get(&format!("/api/rooms/{room}/members"), Some(token))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == who)
        .unwrap_or_else(|| panic!("{who} not in {body}"))["online"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn a_block_stops_dms_both_ways_for_the_next_send_and_unblocking_restores_them() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(0, &bob).await;
    b.send_json(&send("b1", "user:alice", "hi alice")).await;
    let first = answer(&mut b, "b1").await;
    assert_eq!(first["type"], "sent", "{first}");

    let (s, body) = stack.put("/api/blocks/bob", &alice, json!({})).await;
    assert_eq!(
        (s, &body["changed"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    let (s, body) = stack.put("/api/blocks/bob", &alice, json!({})).await;
    assert_eq!(
        (s, &body["changed"]),
        (StatusCode::OK, &json!(false)),
        "{body}"
    );
    let (_, list) = stack.get("/api/blocks", Some(&alice)).await;
    assert_eq!(list["blocks"][0]["username"], "bob", "{list}");
    assert!(list["blocks"][1].is_null(), "{list}");

    // The very next DM is refused, without the word "block".
    b.send_json(&send("b2", "user:alice", "why?")).await;
    let e = answer(&mut b, "b2").await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("forbidden")),
        "{e}"
    );
    assert!(!e["message"].as_str().unwrap().contains("block"), "{e}");
    // An edit of an earlier DM is refused too; deleting it is not.
    let seq = first["seq"].as_u64().unwrap();
    let conversation = first["conversation"].as_str().unwrap();
    b.send_json(&json!({"type": "edit", "client_id": "b3", "conversation": conversation, "seq": seq, "body": "edited"}))
        .await;
    assert_eq!(answer(&mut b, "b3").await["code"], "forbidden");
    b.send_json(
        &json!({"type": "delete", "client_id": "b4", "conversation": conversation, "seq": seq}),
    )
    .await;
    assert_eq!(answer(&mut b, "b4").await["type"], "sent");
    // The blocker cannot DM them either, and is told why.
    a.send_json(&send("a1", "user:bob", "go away")).await;
    let e = answer(&mut a, "a1").await;
    assert_eq!(e["code"], "forbidden", "{e}");
    assert!(e["message"].as_str().unwrap().contains("unblock"), "{e}");

    // Nothing of the refused ones was stored.
    let (_, page) = stack
        .get(
            &format!("/api/conversations/{conversation}/messages"),
            Some(&alice),
        )
        .await;
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .filter(|b| !b.is_empty())
        .collect();
    assert!(bodies.is_empty(), "{page}");

    let (s, body) = stack.delete("/api/blocks/bob", &alice, json!({})).await;
    assert_eq!(
        (s, &body["changed"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    b.send_json(&send("b5", "user:alice", "friends again?"))
        .await;
    assert_eq!(answer(&mut b, "b5").await["type"], "sent");
    let got = a.recv_type("message").await;
    assert_eq!(got["body"], "friends again?");
}

#[tokio::test]
async fn a_blocked_user_does_not_see_the_blockers_typing_or_presence() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    stack.create_room(&alice, "lounge").await;
    stack.join_room(&bob, "lounge").await;
    stack.join_room(&carol, "lounge").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(0, &bob).await;
    let (mut c, _) = stack.connect(0, &carol).await;
    assert!(online(&stack, &bob, "lounge", "alice").await);
    stack.put("/api/blocks/bob", &alice, json!({})).await;

    assert!(
        !online(&stack, &bob, "lounge", "alice").await,
        "bob sees alice online"
    );
    assert!(online(&stack, &carol, "lounge", "alice").await);
    assert!(
        online(&stack, &alice, "lounge", "bob").await,
        "a block is one-way"
    );

    // alice types, then writes: carol sees both, bob only the message.
    a.send_json(&json!({"type": "typing", "to": "room:lounge"}))
        .await;
    a.send_json(&send("a1", "room:lounge", "hello all")).await;
    assert_eq!(answer(&mut a, "a1").await["type"], "sent");
    let seen_by = |frames: Vec<Value>| {
        frames
            .iter()
            .map(|f| f["type"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let mut at_carol = Vec::new();
    loop {
        let f = c.recv().await;
        let done = f["type"] == "message" && f.get("member").is_none();
        at_carol.push(f);
        if done {
            break;
        }
    }
    assert!(
        seen_by(at_carol.clone()).contains(&"typing".into()),
        "{at_carol:?}"
    );
    let mut at_bob = Vec::new();
    loop {
        let f = b.recv().await;
        let done = f["type"] == "message" && f.get("member").is_none();
        at_bob.push(f);
        if done {
            break;
        }
    }
    assert!(
        !seen_by(at_bob.clone()).contains(&"typing".into()),
        "{at_bob:?}"
    );
    // alice still sees bob type.
    b.send_json(&json!({"type": "typing", "to": "room:lounge"}))
        .await;
    let t = a.recv_type("typing").await;
    assert_eq!(t["from"], "bob");

    let (s, body) = stack.put("/api/blocks/alice", &alice, json!({})).await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = stack.put("/api/blocks/nobody", &alice, json!({})).await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not_found");
    let (s, body) = stack.put("/api/blocks/NO%20WAY", &alice, json!({})).await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, _) = stack.get("/api/blocks", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
