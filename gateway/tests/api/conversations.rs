//! The conversation list, read markers and unread counts, over HTTP and
//! WebSocket, with real chat-service and storage behind them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{StackOptions, TestStack, assert_error, send, spawn_stack, spawn_stack_with};

/// Every page of the caller's list, following `next_cursor`.
async fn whole_list(stack: &TestStack, token: &str, limit: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("/api/conversations?limit={limit}&cursor={}", urlencode(c)),
            None => format!("/api/conversations?limit={limit}"),
        };
        let (s, body) = stack.get(&path, Some(token)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let page = body["conversations"].as_array().unwrap();
        assert!(page.len() as u64 <= limit, "{body}");
        out.extend(page.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("the list never ended");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn find<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {list:?}"))
}

#[tokio::test]
async fn the_list_shows_unread_counts_and_previews_newest_first_in_pages() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    stack.create_room(&alice, "quiet").await;
    let (mut b, _) = stack.connect(0, &bob).await;
    for i in 1..=3 {
        b.send_json(&send(&format!("b{i}"), "user:alice", &format!("hi {i}")))
            .await;
        assert_eq!(b.recv_type("sent").await["seq"], i);
    }
    let (mut c, _) = stack.connect(0, &carol).await;
    c.send_json(&send("c1", "user:alice", &"é".repeat(300)))
        .await;
    c.recv_type("sent").await;

    let list = whole_list(&stack, &alice, 1).await;
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["dm:alice:carol", "dm:alice:bob", "room:quiet"],
        "{list:?}"
    );
    let dm = find(&list, "dm:alice:bob");
    assert_eq!(
        (
            dm["kind"].as_str(),
            dm["peer"].as_str(),
            &dm["last_seq"],
            &dm["read_seq"],
            &dm["unread"]
        ),
        (Some("dm"), Some("bob"), &json!(3), &json!(0), &json!(3))
    );
    assert_eq!(dm["last_message"]["body"], "hi 3");
    assert_eq!(dm["last_message"]["from"], "bob");
    assert_eq!(dm["last_message"]["seq"], 3);
    let long = find(&list, "dm:alice:carol");
    assert_eq!(
        long["last_message"]["body"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        200
    );
    let room = find(&list, "room:quiet");
    assert_eq!((&room["last_seq"], &room["unread"]), (&json!(0), &json!(0)));
    assert!(room["last_activity"].is_null() && room["last_message"].is_null());

    // The sender's own messages are read.
    let bobs = whole_list(&stack, &bob, 50).await;
    assert_eq!(find(&bobs, "dm:alice:bob")["unread"], 0);
    assert_eq!(find(&bobs, "dm:alice:bob")["read_seq"], 3);

    // One conversation, as listed; strangers and bad input are refused.
    let (s, one) = stack
        .get("/api/conversations/dm:alice:bob", Some(&alice))
        .await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["unread"], 3);
    let (s, body) = stack
        .get("/api/conversations/dm:alice:bob", Some(&carol))
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "forbidden");
    let (s, body) = stack
        .get("/api/conversations/room:nope", Some(&carol))
        .await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not_found");
    let (s, body) = stack.get("/api/conversations?limit=0", Some(&alice)).await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = stack
        .get("/api/conversations?cursor=zzz", Some(&alice))
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = stack.get("/api/conversations", None).await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn read_markers_only_move_forward_and_reach_every_socket_of_the_user() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    let (mut b, _) = stack.connect(0, &bob).await;
    for i in 1..=3 {
        b.send_json(&send(&format!("b{i}"), "user:alice", "hey"))
            .await;
        b.recv_type("sent").await;
    }
    let (mut phone, _) = stack.connect(0, &alice).await;
    let (mut laptop, _) = stack.connect(1, &alice).await;

    phone
        .send_json(&json!({"type": "read", "conversation": "dm:alice:bob", "seq": 2}))
        .await;
    for socket in [&mut phone, &mut laptop] {
        let read = socket.recv_type("read").await;
        assert_eq!(
            read,
            json!({"type": "read", "conversation": "dm:alice:bob", "seq": 2, "unread": 1})
        );
    }

    // An older seq leaves the marker where it is, and says so.
    let (s, body) = stack
        .put(
            "/api/conversations/dm:alice:bob/read",
            &alice,
            json!({"seq": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"conversation": "dm:alice:bob", "read_seq": 2, "unread": 1})
    );
    // Beyond the last seq, zero, or someone else's conversation: refused.
    let (s, body) = stack
        .put(
            "/api/conversations/dm:alice:bob/read",
            &alice,
            json!({"seq": 9}),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = stack
        .put(
            "/api/conversations/dm:alice:bob/read",
            &alice,
            json!({"seq": 0}),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = stack
        .put(
            "/api/conversations/dm:alice:bob/read",
            &carol,
            json!({"seq": 1}),
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "forbidden");
    phone
        .send_json(&json!({"type": "read", "conversation": "dm:alice:bob", "seq": 7}))
        .await;
    let error = phone.recv_type("error").await;
    assert_eq!(error["code"], "bad_request", "{error}");

    let (s, body) = stack
        .put(
            "/api/conversations/dm:alice:bob/read",
            &alice,
            json!({"seq": 3}),
        )
        .await;
    assert_eq!((s, &body["unread"]), (StatusCode::OK, &json!(0)), "{body}");
    // The refused and unchanged calls sent nothing: the next `read` on the
    // laptop is the move to 3.
    let read = laptop.recv_type("read").await;
    assert_eq!((&read["seq"], &read["unread"]), (&json!(3), &json!(0)));
    let list = whole_list(&stack, &alice, 50).await;
    assert_eq!(find(&list, "dm:alice:bob")["unread"], 0);
    // Bob's marker is his own.
    let (_, one) = stack
        .get("/api/conversations/dm:alice:bob", Some(&bob))
        .await;
    assert_eq!(one["read_seq"], 3);
}

#[tokio::test]
async fn a_users_dm_list_is_bounded_and_keeps_the_most_recent() {
    let stack = spawn_stack_with(StackOptions {
        worker: vec![("DM_LIST_LIMIT", 3.to_string())],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    for i in 0..5 {
        let name = format!("sender{i}");
        let token = stack.user(&name).await;
        let (mut ws, _) = stack.connect(0, &token).await;
        ws.send_json(&send("c1", "user:alice", "hello")).await;
        ws.recv_type("sent").await;
    }
    let list = whole_list(&stack, &alice, 50).await;
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["dm:alice:sender4", "dm:alice:sender3", "dm:alice:sender2"]
    );
    // The older DMs left the list, not history.
    let (s, page) = stack
        .get("/api/conversations/dm:alice:sender0/messages", Some(&alice))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
}
