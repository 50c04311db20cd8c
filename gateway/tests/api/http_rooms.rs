use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, send, spawn_stack};

#[tokio::test]
async fn rooms_lifecycle_and_members_with_online_flags() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;

    let (s, room) = stack
        .post(
            "/api/rooms",
            Some(&alice),
            json!({"name": "general", "topic": "chat"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{room}");
    assert_eq!(room["topic"], "chat");
    stack.join_room(&bob, "general").await;

    let (_alice_ws, _) = stack.connect(0, &alice).await;
    let (s, members) = stack.get("/api/rooms/general/members", Some(&bob)).await;
    assert_eq!(s, StatusCode::OK, "{members}");
    let flags: Vec<(String, bool)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_owned(),
                m["online"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(flags, [("alice".into(), true), ("bob".into(), false)]);

    // The presence hash is a real hash table from the start (see
    // gateway::presence::TABLE_FIELD), so chat-service's HMGETs stay O(k).
    let users_key =
        chat_redis::keys::Keys::new(stack._storage.redis_prefix.clone()).gateway_users("gw0");
    let mut redis = stack._storage.redis().await;
    let (encoding, alice_sockets): (String, Option<i64>) = redis::pipe()
        .cmd("OBJECT")
        .arg("ENCODING")
        .arg(&users_key)
        .cmd("HGET")
        .arg(&users_key)
        .arg("alice")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!((encoding.as_str(), alice_sockets), ("hashtable", Some(1)));

    let (s, rooms) = stack.get("/api/rooms", Some(&bob)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(rooms["rooms"][0]["name"], "general");
    assert_eq!(rooms["rooms"][0]["role"], "member");

    let (s, _) = stack
        .post("/api/rooms/general/leave", Some(&bob), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, rooms) = stack.get("/api/rooms", Some(&bob)).await;
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn room_errors() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    stack.create_room(&alice, "general").await;

    let (s, b) = stack
        .post("/api/rooms", Some(&bob), json!({"name": "general"}))
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");
    let (s, b) = stack
        .post("/api/rooms", Some(&bob), json!({"name": "No Spaces"}))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = stack.post("/api/rooms", None, json!({"name": "x"})).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, b) = stack
        .post("/api/rooms/missing/join", Some(&bob), json!({}))
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = stack
        .post("/api/rooms/general/leave", Some(&bob), json!({}))
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");
    let (s, b) = stack.get("/api/rooms/missing/members", Some(&bob)).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn conversation_history_is_for_members_only() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    stack.create_room(&alice, "general").await;

    let (mut ws, _) = stack.connect(0, &alice).await;
    for i in 0..3 {
        ws.send_json(&send(&format!("r{i}"), "room:general", &format!("hi {i}")))
            .await;
        assert_eq!(ws.recv_type("sent").await["client_id"], format!("r{i}"));
    }
    ws.send_json(&send("d1", "user:bob", "psst")).await;
    ws.recv_type("sent").await;

    let (s, page) = stack
        .get(
            "/api/conversations/room:general/messages?limit=2",
            Some(&alice),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(page["has_more"], true);
    let (_, page) = stack
        .get(
            "/api/conversations/room:general/messages?before=2",
            Some(&alice),
        )
        .await;
    assert_eq!(page["messages"][0]["body"], "hi 0");

    let (s, page) = stack
        .get("/api/conversations/dm:alice:bob/messages", Some(&bob))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["messages"][0]["body"], "psst");

    let (s, b) = stack
        .get("/api/conversations/room:general/messages", Some(&bob))
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = stack
        .get("/api/conversations/dm:alice:bob/messages", Some(&carol))
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = stack
        .get("/api/conversations/nonsense/messages", Some(&bob))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = stack
        .get(
            "/api/conversations/room:general/messages?limit=500",
            Some(&alice),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = stack
        .get(
            "/api/conversations/room:general/messages?before=abc",
            Some(&alice),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn members_are_visible_to_members_only() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let mallory = stack.user("mallory").await;
    stack.create_room(&alice, "staff").await;
    let (s, body) = stack.get("/api/rooms/staff/members", Some(&mallory)).await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "forbidden");
    let (s, body) = stack.get("/api/rooms/staff/members", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}
