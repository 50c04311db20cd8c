//! Running a room over HTTP: private rooms answer strangers as missing ones
//! do on every route; invites; kicks, bans and mutes enforced for the very
//! next send; settings, the directory, bans and the moderation log.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{StackOptions, assert_error, send, spawn_stack_with};

#[tokio::test]
async fn a_private_room_is_invisible_to_strangers_and_open_to_the_invited() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let alice = stack.user("alice").await;
    let eve = stack.user("eve").await;
    let bob = stack.user("bob").await;
    let (s, room) = stack
        .post(
            "/api/rooms",
            Some(&alice),
            json!({"name": "secret", "visibility": "private"}),
        )
        .await;
    assert_eq!(
        (s, room["visibility"].as_str()),
        (StatusCode::CREATED, Some("private"))
    );

    // Every surface answers eve the same for "secret" and for "nowhere".
    for (method, path) in [
        ("post", "/api/rooms/{}/join"),
        ("get", "/api/rooms/{}/members"),
        ("get", "/api/conversations/room:{}/messages"),
        ("get", "/api/conversations/room:{}"),
        ("get", "/api/rooms/{}/bans"),
        ("post", "/api/rooms/{}/invites"),
    ] {
        let mut answers = Vec::new();
        for room in ["secret", "nowhere"] {
            let url = path.replace("{}", room);
            let (s, body) = match method {
                "post" => stack.post(&url, Some(&eve), json!({"user": "bob"})).await,
                _ => stack.get(&url, Some(&eve)).await,
            };
            answers.push((
                s,
                body["error"]["code"].clone(),
                body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .replace(room, "X"),
            ));
        }
        assert_eq!(answers[0], answers[1], "{method} {path}");
        assert_eq!(answers[0].0, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (mut e, _) = stack.connect(0, &eve).await;
    for (cid, room) in [("e1", "room:secret"), ("e2", "room:nowhere")] {
        e.send_json(&send(cid, room, "anyone?")).await;
        let err = e.recv_type("error").await;
        assert_eq!(err["code"], "not_found", "{cid}: {err}");
    }
    let (_, dir) = stack.get("/api/rooms/directory", Some(&eve)).await;
    assert_eq!(dir["rooms"], json!([]), "a private room is unlisted");

    // Invited, bob sees the invite, accepts, and chats.
    let (s, inv) = stack
        .post(
            "/api/rooms/secret/invites",
            Some(&alice),
            json!({"user": "bob"}),
        )
        .await;
    assert_eq!(
        (s, inv["invited_by"].as_str()),
        (StatusCode::CREATED, Some("alice"))
    );
    let (_, mine) = stack.get("/api/invites", Some(&bob)).await;
    assert_eq!(mine["invites"][0]["room"], "secret");
    let (s, joined) = stack
        .post("/api/invites/secret/accept", Some(&bob), json!({}))
        .await;
    assert_eq!(
        (s, joined["role"].as_str()),
        (StatusCode::OK, Some("member"))
    );
    let (mut b, _) = stack.connect(0, &bob).await;
    b.send_json(&send("b1", "room:secret", "thanks")).await;
    assert_eq!(b.recv_type("sent").await["client_id"], "b1");
    let (s, body) = stack
        .post("/api/invites/secret/accept", Some(&bob), json!({}))
        .await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn kicks_bans_and_mutes_hold_for_the_very_next_send() {
    let stack = spawn_stack_with(StackOptions {
        worker: vec![("MEMBERSHIP_TTL_MS", 60_000.to_string())],
        ..StackOptions::default()
    })
    .await;
    let owner = stack.user("owner").await;
    let admin = stack.user("admin").await;
    let troll = stack.user("troll").await;
    stack.create_room(&owner, "lobby").await;
    stack.join_room(&admin, "lobby").await;
    stack.join_room(&troll, "lobby").await;
    let (s, _) = stack
        .put(
            "/api/rooms/lobby/members/admin/role",
            &owner,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (mut t, _) = stack.connect(0, &troll).await;
    t.send_json(&send("t1", "room:lobby", "hello")).await;
    assert_eq!(t.recv_type("sent").await["client_id"], "t1");

    // Muted: reads, but the next send is refused.
    let (s, done) = stack
        .post(
            "/api/rooms/lobby/mutes",
            Some(&admin),
            json!({"user": "troll", "duration_secs": 600, "reason": "spam"}),
        )
        .await;
    assert_eq!((s, done["action"].as_str()), (StatusCode::OK, Some("mute")));
    t.send_json(&send("t2", "room:lobby", "more spam")).await;
    let e = t.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("forbidden"), Some("t2")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("muted"), "{e}");
    let (s, _) = stack
        .delete("/api/rooms/lobby/mutes/troll", &admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    t.send_json(&send("t3", "room:lobby", "sorry")).await;
    assert_eq!(t.recv_type("sent").await["client_id"], "t3");

    // A member may not kick; an admin may, and the next send is refused.
    let (s, body) = stack
        .post(
            "/api/rooms/lobby/kick",
            Some(&troll),
            json!({"user": "admin"}),
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "forbidden");
    let (s, _) = stack
        .post(
            "/api/rooms/lobby/kick",
            Some(&admin),
            json!({"user": "troll", "reason": "rude"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let told = t.recv_type("removed").await;
    assert_eq!(
        (told["room"].as_str(), told["action"].as_str()),
        (Some("lobby"), Some("kick")),
        "the kicked member's socket hears it at once: {told}"
    );
    t.send_json(&send("t4", "room:lobby", "still here?")).await;
    assert_eq!(t.recv_type("error").await["code"], "forbidden");

    // Banned for good: cannot rejoin until lifted.
    stack.join_room(&troll, "lobby").await;
    let (s, _) = stack
        .post(
            "/api/rooms/lobby/bans",
            Some(&admin),
            json!({"user": "troll"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = stack
        .post("/api/rooms/lobby/join", Some(&troll), json!({}))
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "forbidden");
    let (_, bans) = stack.get("/api/rooms/lobby/bans", Some(&admin)).await;
    assert_eq!(
        (bans["bans"][0]["user"].as_str(), &bans["bans"][0]["until"]),
        (Some("troll"), &json!(null))
    );
    let (s, _) = stack.get("/api/rooms/lobby/bans", Some(&troll)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a non-member of a public room");

    // The log has it all, newest first, in pages.
    let (_, log) = stack
        .get("/api/rooms/lobby/moderation?limit=2", Some(&owner))
        .await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["ban", "kick"]);
    let cursor = log["next_cursor"].as_str().unwrap();
    let (_, older) = stack
        .get(
            &format!("/api/rooms/lobby/moderation?cursor={cursor}"),
            Some(&owner),
        )
        .await;
    let actions: Vec<&str> = older["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unmute", "mute", "set_role:admin"]);
    assert_eq!(older["entries"][1]["reason"], "spam");

    // Bad input: the documented error, nothing changes.
    for (path, body) in [
        (
            "/api/rooms/lobby/bans",
            json!({"user": "admin", "duration_secs": 0}),
        ),
        ("/api/rooms/lobby/bans", json!({"user": "Not A Name"})),
        (
            "/api/rooms/lobby/kick",
            json!({"user": "owner", "reason": "x".repeat(300)}),
        ),
        ("/api/rooms/lobby/transfer", json!({"user": "owner"})),
    ] {
        let (s, b) = stack.post(path, Some(&owner), body.clone()).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (s, b) = stack
        .get("/api/rooms/lobby/moderation?cursor=abc", Some(&owner))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (_, members) = stack.get("/api/rooms/lobby/members", Some(&owner)).await;
    assert_eq!(
        members["members"].as_array().unwrap().len(),
        2,
        "owner and admin"
    );
}

#[tokio::test]
async fn settings_the_directory_and_ownership() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let ann = stack.user("ann").await;
    let ben = stack.user("ben").await;
    for name in ["alpha", "alps", "beta", "b_c"] {
        stack.create_room(&ann, name).await;
    }
    let (_, page) = stack
        .get("/api/rooms/directory?q=al&limit=1", Some(&ben))
        .await;
    assert_eq!(page["rooms"][0]["name"], "alpha");
    assert_eq!(page["rooms"][0]["members"], 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = stack
        .get(
            &format!("/api/rooms/directory?q=al&cursor={cursor}"),
            Some(&ben),
        )
        .await;
    assert_eq!(
        (next["rooms"][0]["name"].as_str(), &next["next_cursor"]),
        (Some("alps"), &json!(null))
    );
    let (_, underscore) = stack.get("/api/rooms/directory?q=b_", Some(&ben)).await;
    assert_eq!(
        underscore["rooms"].as_array().unwrap().len(),
        1,
        "_ is no wildcard: {underscore}"
    );
    let (s, b) = stack.get("/api/rooms/directory?q=%25", Some(&ben)).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");

    // Settings: admins and the owner; going private unlists the room.
    stack.join_room(&ben, "beta").await;
    let (s, b) = stack
        .patch("/api/rooms/beta", &ben, json!({"topic": "mine now"}))
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, room) = stack
        .patch(
            "/api/rooms/beta",
            &ann,
            json!({"topic": "release train", "visibility": "private"}),
        )
        .await;
    assert_eq!(
        (s, room["topic"].as_str(), room["visibility"].as_str()),
        (StatusCode::OK, Some("release train"), Some("private"))
    );
    let (_, all) = stack.get("/api/rooms/directory", Some(&ben)).await;
    assert!(
        all["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "beta")
    );
    let (s, b) = stack
        .patch("/api/rooms/beta", &ann, json!({"visibility": "secret"}))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");

    // The owner hands the room on before leaving; then may leave.
    let (s, b) = stack
        .post("/api/rooms/beta/leave", Some(&ann), json!({}))
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");
    let (s, _) = stack
        .post(
            "/api/rooms/beta/transfer",
            Some(&ann),
            json!({"user": "ben"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = stack
        .post("/api/rooms/beta/leave", Some(&ann), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, mine) = stack.get("/api/rooms", Some(&ben)).await;
    assert_eq!(mine["rooms"][0]["role"], "owner");

    // Deleting: the owner only; afterwards the room is gone everywhere.
    let (s, _) = stack.delete("/api/rooms/alpha", &ben, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, done) = stack.delete("/api/rooms/alpha", &ann, json!({})).await;
    assert_eq!(
        (s, done["action"].as_str()),
        (StatusCode::OK, Some("delete_room"))
    );
    let (s, _) = stack
        .get("/api/conversations/room:alpha/messages", Some(&ann))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = stack
        .post("/api/rooms", Some(&ben), json!({"name": "alpha"}))
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn slow_mode_spaces_a_members_messages_and_spares_moderators() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let owner = stack.user("owner").await;
    let chatty = stack.user("chatty").await;
    stack.create_room(&owner, "calm").await;
    stack.join_room(&chatty, "calm").await;
    let (s, room) = stack
        .patch("/api/rooms/calm", &owner, json!({"slow_mode_secs": 2}))
        .await;
    assert_eq!((s, &room["slow_mode_secs"]), (StatusCode::OK, &json!(2)));
    let (mut c, _) = stack.connect(0, &chatty).await;
    c.send_json(&send("c1", "room:calm", "first")).await;
    let first = c.recv_type("sent").await;
    assert_eq!(first["client_id"], "c1");
    c.send_json(&send("c2", "room:calm", "too soon")).await;
    let e = c.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("rate_limited"), Some("c2")),
        "{e}"
    );
    let wait = e["retry_after_ms"]
        .as_u64()
        .expect("a slow-mode refusal says when");
    assert!((1..=2000).contains(&wait), "{e}");
    // A re-send of what was stored is answered with its ack, not refused.
    c.send_json(&send("c1", "room:calm", "first")).await;
    assert_eq!(c.recv_type("sent").await["seq"], first["seq"]);
    // The owner is exempt.
    let (mut o, _) = stack.connect(0, &owner).await;
    for k in 0..3 {
        o.send_json(&send(&format!("o{k}"), "room:calm", "announcements"))
            .await;
        assert_eq!(o.recv_type("sent").await["client_id"], format!("o{k}"));
    }
    // After the interval the member may write again.
    let started = std::time::Instant::now();
    let mut k = 0;
    loop {
        k += 1;
        c.send_json(&send(&format!("c3-{k}"), "room:calm", "later"))
            .await;
        let f = loop {
            let f = c.recv().await;
            if f["type"] == "sent" || f["type"] == "error" {
                break f;
            }
        };
        if f["type"] == "sent" {
            break;
        }
        assert_eq!(f["code"], "rate_limited", "{f}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never let through"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1000),
        "let through {:?} after a refusal in a 2 s slow mode",
        started.elapsed()
    );
    let (s, b) = stack
        .patch("/api/rooms/calm", &owner, json!({"slow_mode_secs": 21_601}))
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn a_deleted_room_leaves_every_list_and_refuses_every_read_and_send() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let owner = stack.user("owner").await;
    let member = stack.user("member").await;
    stack.create_room(&owner, "doomed").await;
    stack.join_room(&member, "doomed").await;
    let (mut m, _) = stack.connect(0, &member).await;
    m.send_json(&send("m1", "room:doomed", "last words")).await;
    let sent = m.recv_type("sent").await;
    let (s, _) = stack
        .put(
            "/api/conversations/room:doomed/read",
            &member,
            json!({"seq": sent["seq"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, before) = stack.get("/api/conversations", Some(&member)).await;
    assert!(before.to_string().contains("room:doomed"), "{before}");

    let (s, _) = stack.delete("/api/rooms/doomed", &owner, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    // The member's socket hears it at once.
    let told = m.recv_type("removed").await;
    assert_eq!(
        (&told["room"], &told["action"]),
        (&json!("doomed"), &json!("delete_room"))
    );
    // Gone from every list, for the owner and the member.
    for token in [&owner, &member] {
        let (_, list) = stack.get("/api/conversations", Some(token)).await;
        assert!(!list.to_string().contains("room:doomed"), "{list}");
        let (_, rooms) = stack.get("/api/rooms", Some(token)).await;
        assert!(!rooms.to_string().contains("doomed"), "{rooms}");
    }
    // Every read answers as for a room that never existed.
    for path in [
        "/api/conversations/room:doomed",
        "/api/conversations/room:doomed/messages",
        "/api/rooms/doomed/members",
    ] {
        let (s, b) = stack.get(path, Some(&member)).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
    let (s, b) = stack
        .put(
            "/api/conversations/room:doomed/read",
            &member,
            json!({"seq": 1}),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    m.send_json(&send("m2", "room:doomed", "anyone?")).await;
    let e = m.recv_type("error").await;
    assert_eq!(
        (&e["code"], &e["ref"]),
        (&json!("not_found"), &json!("m2")),
        "{e}"
    );
}

#[tokio::test]
async fn a_rooms_display_name_changes_and_its_name_does_not() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let owner = stack.user("owner").await;
    let member = stack.user("member").await;
    stack.create_room(&owner, "den").await;
    stack.join_room(&member, "den").await;
    let (s, room) = stack
        .patch(
            "/api/rooms/den",
            &owner,
            json!({"display_name": "  The Den  "}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{room}");
    assert_eq!(
        (&room["name"], &room["display_name"]),
        (&json!("den"), &json!("The Den"))
    );
    let (_, mine) = stack.get("/api/rooms", Some(&member)).await;
    assert_eq!(mine["rooms"][0]["display_name"], "The Den", "{mine}");
    for bad in [json!("x".repeat(65)), json!("new\nline")] {
        let (s, b) = stack
            .patch("/api/rooms/den", &owner, json!({ "display_name": bad }))
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (s, b) = stack
        .patch(
            "/api/rooms/den",
            &member,
            json!({"display_name": "Mine now"}),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (_, mine) = stack.get("/api/rooms", Some(&member)).await;
    assert_eq!(
        mine["rooms"][0]["display_name"], "The Den",
        "refusals change nothing: {mine}"
    );
    let (_, room) = stack
        .patch("/api/rooms/den", &owner, json!({"display_name": ""}))
        .await;
    assert_eq!(room["display_name"], "", "{room}");
}
