//! An account's profile, export and deletion: what deletion erases, and
//! that a re-registered name inherits nothing.

use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{StackOptions, assert_error, send, spawn_stack_with};

#[tokio::test]
async fn the_profile_changes_and_the_export_pages_through_every_message_sent() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    stack.create_room(&alice, "plans").await;
    stack.join_room(&bob, "plans").await;

    let (s, me) = stack
        .patch("/api/me", &alice, json!({"display_name": "Alice L."}))
        .await;
    assert_eq!(
        (s, me["display_name"].as_str()),
        (StatusCode::OK, Some("Alice L."))
    );
    let (s, b) = stack
        .patch("/api/me", &alice, json!({"display_name": "x".repeat(65)}))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (_, members) = stack.get("/api/rooms/plans/members", Some(&bob)).await;
    let shown: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["Alice L.", "bob"]);

    let (mut a, _) = stack.connect(0, &alice).await;
    for i in 0..3 {
        a.send_json(&send(&format!("r{i}"), "room:plans", &format!("room {i}")))
            .await;
        a.recv_type("sent").await;
    }
    a.send_json(&send("d0", "user:bob", "dm 0")).await;
    a.recv_type("sent").await;
    let (mut b, _) = stack.connect(0, &bob).await;
    b.send_json(&send("bob0", "room:plans", "not alice's"))
        .await;
    b.recv_type("sent").await;

    let (s, b) = stack
        .get("/api/me/export?cursor=nonsense", Some(&alice))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, first) = stack.get("/api/me/export", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["account"]["display_name"], "Alice L.");
    assert_eq!(first["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(first["rooms"][0]["name"], "plans");
    assert_eq!(
        first["conversations"],
        json!(["dm:alice:bob", "room:plans"])
    );
    let mut bodies: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        for m in page["messages"].as_array().unwrap() {
            assert_eq!(m["from"], "alice", "only the caller's own: {m}");
            bodies.push(m["body"].as_str().unwrap().to_owned());
        }
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) else {
            break;
        };
        let (s, next) = stack
            .get(&format!("/api/me/export?cursor={cursor}"), Some(&alice))
            .await;
        assert_eq!(s, StatusCode::OK, "{next}");
        assert!(next["account"].is_null());
        page = next;
    }
    assert_eq!(bodies, ["dm 0", "room 0", "room 1", "room 2"]);
}

#[tokio::test]
async fn a_deleted_account_is_erased_and_its_name_inherits_nothing() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    stack.create_room(&alice, "plans").await;
    stack.join_room(&bob, "plans").await;
    // Alice is offline: bob's DM waits in her queue; she has read markers.
    let (mut b, _) = stack.connect(0, &bob).await;
    b.send_json(&send("b1", "user:alice", "are you there?"))
        .await;
    b.recv_type("sent").await;
    let (s, body) = stack
        .put(
            "/api/conversations/dm:alice:bob/read",
            &alice,
            json!({"seq": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (mut a, _) = stack.connect(0, &alice).await;
    a.send_json(&send("a1", "room:plans", "bye all")).await;
    a.recv_type("sent").await;
    drop(a);

    let (s, b_) = stack
        .delete("/api/me", &alice, json!({"password": "wrong password"}))
        .await;
    assert_error(s, &b_, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, _) = stack.get("/api/me", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK, "a wrong password deletes nothing");
    let (s, b_) = stack.delete("/api/me", &alice, json!({})).await;
    assert_error(s, &b_, StatusCode::BAD_REQUEST, "bad_request");

    let (s, _) = stack
        .delete("/api/me", &alice, json!({"password": "password123"}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = stack.get("/api/me", Some(&alice)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "its session is gone");

    // What Redis kept for the account is gone.
    let storage = &stack._storage;
    let mut redis = storage.redis().await;
    for key in ["{user:alice}:offline", "{user:alice}:dms"] {
        let exists: bool = redis.exists(storage.key(key)).await.unwrap();
        assert!(!exists, "{key} erased");
    }
    for conversation in ["dm:alice:bob", "room:plans"] {
        let marker: Option<u64> = redis
            .hget(storage.key(&format!("{{{conversation}}}:read")), "alice")
            .await
            .unwrap();
        assert_eq!(marker, None, "read marker in {conversation}");
    }
    // The room lives on with bob as its owner; the message stays.
    let (_, members) = stack.get("/api/rooms/plans/members", Some(&bob)).await;
    let members = members["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (&members[0]["username"], &members[0]["role"]),
        (&json!("bob"), &json!("owner"))
    );
    // Her leaving is the room's last event.
    let bodies: Vec<Value> = testkit::wait::eventually(
        "alice's leave in the timeline",
        std::time::Duration::from_secs(10),
        || async {
            let (_, history) = stack
                .get("/api/conversations/room:plans/messages", Some(&bob))
                .await;
            let bodies: Vec<Value> = history["messages"]
                .as_array()?
                .iter()
                .map(|m| m["body"].clone())
                .collect();
            (bodies.len() == 3).then_some(bodies)
        },
    )
    .await;
    assert_eq!(
        bodies,
        [json!("bob joined"), json!("bye all"), json!("alice left")]
    );

    // The name is retired: nobody registers it and inherits her DMs.
    let (s, b_) = stack
        .post(
            "/api/register",
            None,
            json!({"username": "alice", "password": "password123"}),
        )
        .await;
    assert_error(s, &b_, StatusCode::CONFLICT, "conflict");
    let (s, _) = stack
        .post(
            "/api/login",
            None,
            json!({"username": "alice", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // And nobody can DM it, once chat-service's cache of who exists
    // (MEMBERSHIP_TTL_MS, 200 ms here) has let go of it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for i in 0.. {
        let id = format!("b2-{i}");
        b.send_json(&send(&id, "user:alice", "hello?")).await;
        let answer = loop {
            let f = b.recv().await;
            if f["type"] == "error" || f["type"] == "sent" {
                break f;
            }
        };
        if answer["type"] == "error" {
            assert_eq!(
                (answer["code"].as_str(), answer["ref"].as_str()),
                (Some("not_found"), Some(id.as_str()))
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DMs to a deleted account still taken"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
