//! Membership events: joins, leaves, kicks, bans and role changes take seqs
//! in their room's timeline, live, in history, in offline queues and in the
//! conversation list alike; they cannot be edited or deleted; and a change
//! committed while Redis is unreachable reaches the timeline once it is
//! back, exactly once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{StackOptions, TestStack, send, spawn_stack_with};

/// The room's history, oldest first, as (seq, action or body, user).
async fn timeline(stack: &TestStack, token: &str, room: &str) -> Vec<(u64, String, String)> {
    let (s, page) = stack
        .get(
            &format!("/api/conversations/room:{room}/messages?limit=200"),
            Some(token),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let mut rows: Vec<(u64, String, String)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(row)
        .collect();
    rows.sort();
    rows
}

fn row(m: &Value) -> (u64, String, String) {
    let seq = m["seq"].as_u64().unwrap();
    match m.get("member") {
        Some(e) => (
            seq,
            e["action"].as_str().unwrap().to_owned(),
            e["user"].as_str().unwrap().to_owned(),
        ),
        None => (
            seq,
            m["body"].as_str().unwrap().to_owned(),
            m["from"].as_str().unwrap().to_owned(),
        ),
    }
}

fn ev(seq: u64, action: &str, user: &str) -> (u64, String, String) {
    (seq, action.to_owned(), user.to_owned())
}

#[tokio::test]
async fn membership_changes_take_seqs_in_the_timeline_everywhere() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let owner = stack.user("owner").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    let troll = stack.user("troll").await;
    stack.create_room(&owner, "club").await;
    let (mut o, _) = stack.connect(0, &owner).await;

    // Live, in seq order: carol joins (1), bob joins (2), a message (3).
    stack.join_room(&carol, "club").await;
    let joined = o.recv_type("message").await;
    assert_eq!(
        (
            &joined["seq"],
            &joined["from"],
            &joined["member"],
            &joined["body"]
        ),
        (
            &json!(1),
            &json!("carol"),
            &json!({"action": "join", "user": "carol"}),
            &json!("carol joined")
        ),
        "{joined}"
    );
    stack.join_room(&bob, "club").await;
    assert_eq!(o.recv_type("message").await["member"]["user"], "bob");
    // Joining again changes nothing, and makes no event.
    stack.join_room(&bob, "club").await;
    o.send_json(&send("o1", "room:club", "welcome")).await;
    assert_eq!(o.recv_type("sent").await["seq"], 3, "no event for a rejoin");

    // carol goes offline; the rest happens while she is away.
    let (s, _) = stack
        .put(
            "/api/rooms/club/members/bob/role",
            &owner,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let role = o.recv_type("message").await;
    assert_eq!(
        (&role["seq"], &role["from"], &role["member"], &role["body"]),
        (
            &json!(4),
            &json!("owner"),
            &json!({"action": "role", "user": "bob", "role": "admin"}),
            &json!("owner made bob admin")
        ),
        "{role}"
    );
    stack.join_room(&troll, "club").await;
    let (s, _) = stack
        .post(
            "/api/rooms/club/kick",
            Some(&bob),
            json!({"user": "troll", "reason": "rude"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = stack
        .post("/api/rooms/club/bans", Some(&bob), json!({"user": "troll"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = stack
        .post("/api/rooms/club/leave", Some(&bob), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let want = vec![
        ev(1, "join", "carol"),
        ev(2, "join", "bob"),
        ev(3, "welcome", "owner"),
        ev(4, "role", "bob"),
        ev(5, "join", "troll"),
        ev(6, "kick", "troll"),
        ev(7, "ban", "troll"),
        ev(8, "leave", "bob"),
    ];
    let mut live = Vec::new();
    while live.len() < 4 {
        live.push(row(&o.recv_type("message").await));
    }
    assert_eq!(live, want[4..], "the owner's socket saw each, in order");
    assert_eq!(timeline(&stack, &owner, "club").await, want, "history");

    // carol's offline queue holds everything after her join, in order.
    let (_, offline) = stack.connect(0, &carol).await;
    let queued: Vec<(u64, String, String)> = offline["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["conversation"] == "room:club")
        .map(row)
        .collect();
    assert_eq!(queued, want[1..], "{offline}");

    // The list's preview is the last message; unread counts seqs after
    // the marker, events included, like edits.
    let (_, list) = stack.get("/api/conversations", Some(&carol)).await;
    let club = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "room:club")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            &club["last_seq"],
            &club["read_seq"],
            &club["unread"],
            &club["last_message"]["body"]
        ),
        (&json!(8), &json!(1), &json!(7), &json!("welcome")),
        "{club}"
    );

    // An event is nobody's message: it cannot be edited or deleted.
    for (cid, frame) in [
        (
            "x1",
            json!({"type": "edit", "client_id": "x1", "conversation": "room:club", "seq": 1, "body": "no"}),
        ),
        (
            "x2",
            json!({"type": "delete", "client_id": "x2", "conversation": "room:club", "seq": 4}),
        ),
    ] {
        o.send_json(&frame).await;
        let e = o.recv_type("error").await;
        assert_eq!(
            (e["code"].as_str(), e["ref"].as_str()),
            (Some("bad_request"), Some(cid)),
            "{e}"
        );
    }
    assert_eq!(timeline(&stack, &owner, "club").await, want, "unchanged");
}

#[tokio::test]
async fn a_change_committed_while_redis_is_unreachable_reaches_the_timeline_once() {
    if testkit::redis_cluster() {
        // A proxy stands for one node.
        return;
    }
    let stack = spawn_stack_with(StackOptions {
        user_redis_link: true,
        ..StackOptions::default()
    })
    .await;
    let owner = stack.user("owner").await;
    let troll = stack.user("troll").await;
    let newbie = stack.user("newbie").await;
    stack.create_room(&owner, "club").await;
    stack.join_room(&troll, "club").await;
    let link = stack.user_redis_link.as_ref().unwrap();
    testkit::wait::eventually("troll's join event", Duration::from_secs(10), || async {
        (timeline(&stack, &owner, "club").await == vec![ev(1, "join", "troll")]).then_some(())
    })
    .await;

    // user-service loses Redis: the kick is committed, its event waits.
    link.set(testkit::proxy::Mode::Refuse);
    let (s, body) = stack
        .post(
            "/api/rooms/club/kick",
            Some(&owner),
            json!({"user": "troll"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // A join needs the room's seq (where a since-join history starts):
    // refused, and nothing changes.
    let (s, body) = stack
        .post("/api/rooms/club/join", Some(&newbie), json!({}))
        .await;
    crate::helpers::assert_error(s, &body, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let (mut o, _) = stack.connect(0, &owner).await;
    o.send_json(&send("o1", "room:club", "quiet now")).await;
    assert_eq!(o.recv_type("sent").await["seq"], 2);
    assert_eq!(
        timeline(&stack, &owner, "club").await,
        vec![ev(1, "join", "troll"), ev(2, "quiet now", "owner")],
        "the event cannot have been relayed without Redis"
    );

    // Back: the relay's next pass writes it, once.
    link.set(testkit::proxy::Mode::Pass);
    let kick = o.recv_type("message").await;
    assert_eq!(
        (&kick["seq"], &kick["member"]["action"]),
        (&json!(3), &json!("kick")),
        "{kick}"
    );
    o.send_json(&send("o2", "room:club", "after")).await;
    assert_eq!(o.recv_type("sent").await["seq"], 4);
    assert_eq!(
        timeline(&stack, &owner, "club").await,
        vec![
            ev(1, "join", "troll"),
            ev(2, "quiet now", "owner"),
            ev(3, "kick", "troll"),
            ev(4, "after", "owner"),
        ]
    );
    let (_, members) = stack.get("/api/rooms/club/members", Some(&owner)).await;
    let names: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["owner"], "the refused join left no membership");
}

#[tokio::test]
async fn a_join_leave_loop_is_cut_off_and_makes_no_more_events() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("MEMBERSHIP_CHANGES_PER_USER", 4.to_string())],
        ..StackOptions::default()
    })
    .await;
    let owner = stack.user("owner").await;
    let troll = stack.user("troll").await;
    stack.create_room(&owner, "club").await;
    for k in 0..4 {
        let path = if k % 2 == 0 { "join" } else { "leave" };
        let (s, body) = stack
            .post(&format!("/api/rooms/club/{path}"), Some(&troll), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
    }
    let r = stack
        .http
        .post(stack.url("/api/rooms/club/join"))
        .bearer_auth(&troll)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let want = vec![
        ev(1, "join", "troll"),
        ev(2, "leave", "troll"),
        ev(3, "join", "troll"),
        ev(4, "leave", "troll"),
    ];
    testkit::wait::eventually("the four events", Duration::from_secs(10), || async {
        (timeline(&stack, &owner, "club").await.len() >= 4).then_some(())
    })
    .await;
    assert_eq!(timeline(&stack, &owner, "club").await, want, "no fifth");
    let (_, rooms) = stack.get("/api/rooms", Some(&troll)).await;
    assert_eq!(
        rooms["rooms"],
        json!([]),
        "the refused join changed nothing"
    );
}
