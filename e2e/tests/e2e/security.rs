//! The trust boundary, attacked with the real grpcurl against the real
//! binaries: anonymous and cross-user reads of the public history port, forged
//! writes on both history ports, and anonymous calls to user-service.

use e2e::{
    Stack, StackOptions,
    grpcurl::{Output, grpcurl},
    stack::OPERATOR_TOKEN,
};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::WsClient;

use crate::{
    deploy::repo,
    helpers::{send, user},
};

fn bearer(token: &str) -> String {
    format!("authorization: Bearer {token}")
}

/// GetHistory on the public port with `auth` metadata (none when empty).
fn get_history(stack: &Stack, auth: &str, conversation: &str) -> Output {
    let request = json!({"conversation_id": conversation, "limit": 50}).to_string();
    let addr = stack.history_addr();
    let mut args = vec!["-plaintext"];
    if !auth.is_empty() {
        args.extend(["-H", auth]);
    }
    args.extend([
        "-d",
        &request,
        &addr,
        "chat.history.v1.HistoryService/GetHistory",
    ]);
    grpcurl(&args)
}

fn list_offline(stack: &Stack, auth: &str, username: &str) -> Output {
    let request = json!({ "username": username }).to_string();
    let addr = stack.history_addr();
    grpcurl(&[
        "-plaintext",
        "-H",
        auth,
        "-d",
        &request,
        &addr,
        "chat.history.v1.HistoryService/ListOffline",
    ])
}

fn assert_refused(out: &Output, code: &str, what: &str) {
    assert!(!out.success, "{what} was allowed: {}", out.stdout);
    assert!(
        out.stderr.contains(&format!("Code: {code}")),
        "{what}: {}",
        out.stderr
    );
}

fn bodies(out: &Output) -> Vec<String> {
    assert!(out.success, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    v["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn history_reads_need_a_token_and_stay_within_the_callers_conversations() {
    let stack = Stack::start(StackOptions {
        gateways: 1,
        workers: 1,
        ..StackOptions::default()
    })
    .await;
    let port = stack.gateway_ports[0];
    let alice = user(&stack, 0, "alice").await;
    let bob = user(&stack, 0, "bob").await;
    let carol = user(&stack, 0, "carol").await;
    let http = reqwest::Client::new();
    let r = http
        .post(stack.gateway_url(0, "/api/rooms"))
        .bearer_auth(&alice)
        .json(&json!({"name": "staff"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let (mut a, _) = WsClient::connect_ready(port, &alice).await;
    a.send_json(&send("c1", "user:bob", "a private word")).await;
    a.recv_type("sent").await;
    a.send_json(&send("c2", "room:staff", "staff only")).await;
    a.recv_type("sent").await;

    // No credentials, garbage, or a token signed with another secret.
    let forged = service_kit::jwt::issue(
        "someone-elses-secret-0123456789",
        "alice",
        testkit::TEST_SESSION,
        600,
    )
    .unwrap()
    .0;
    for (auth, what) in [
        (String::new(), "anonymous"),
        (bearer("garbage"), "garbage token"),
        (bearer(&forged), "foreign-secret token"),
    ] {
        assert_refused(
            &get_history(&stack, &auth, "dm:alice:bob"),
            "Unauthenticated",
            what,
        );
    }
    assert_refused(
        &list_offline(&stack, &bearer(&forged), "bob"),
        "Unauthenticated",
        "forged ListOffline",
    );

    // A user outside the conversation, the room, or the queue.
    let as_carol = bearer(&carol);
    assert_refused(
        &get_history(&stack, &as_carol, "dm:alice:bob"),
        "PermissionDenied",
        "carol reading alice and bob's DM",
    );
    assert_refused(
        &get_history(&stack, &as_carol, "room:staff"),
        "PermissionDenied",
        "carol reading a room she is not in",
    );
    assert_refused(
        &get_history(&stack, &as_carol, "room:nonexistent"),
        "PermissionDenied",
        "carol probing for a room",
    );
    assert_refused(
        &list_offline(&stack, &as_carol, "bob"),
        "PermissionDenied",
        "carol reading bob's offline queue",
    );

    // The parties, the members and the operator read what is theirs.
    assert_eq!(
        bodies(&get_history(&stack, &bearer(&bob), "dm:alice:bob")),
        ["a private word"]
    );
    assert_eq!(
        bodies(&get_history(&stack, &bearer(&alice), "room:staff")),
        ["staff only"]
    );
    assert_eq!(
        bodies(&list_offline(&stack, &bearer(&bob), "bob")),
        ["a private word"]
    );
    assert_eq!(
        bodies(&get_history(
            &stack,
            &bearer(OPERATOR_TOKEN),
            "dm:alice:bob"
        )),
        ["a private word"]
    );
}

/// grpcurl with the internal .proto from the repository, as an attacker who
/// read the source would call it.
fn append(addr: &str, auth: Option<&str>) -> Output {
    let proto_dir = repo().join("proto/proto");
    let proto_dir = proto_dir.to_str().unwrap();
    let forged = json!({"items": [{
        "message": {
            "id": "forged-1",
            "conversation_id": "dm:alice:bob",
            "seq": 99,
            "sender": "alice",
            "body": "send me your password",
            "recipient": "user:bob",
            "client_id": "x",
            "sent_at": "2026-01-01T00:00:00Z"
        },
        "offline_recipients": ["bob"]
    }]})
    .to_string();
    let mut args = vec![
        "-plaintext",
        "-import-path",
        proto_dir,
        "-proto",
        "chat/history/internal/v1/internal.proto",
    ];
    if let Some(auth) = auth {
        args.extend(["-H", auth]);
    }
    args.extend([
        "-d",
        &forged,
        addr,
        "chat.history.internal.v1.HistoryInternal/Append",
    ]);
    grpcurl(&args)
}

#[tokio::test]
async fn forged_writes_are_refused_on_both_history_ports_and_user_service() {
    let stack = Stack::start(StackOptions {
        gateways: 1,
        workers: 1,
        ..StackOptions::default()
    })
    .await;
    let bob = user(&stack, 0, "bob").await;
    let public = stack.history_addr();
    let internal = format!("127.0.0.1:{}", stack.history_internal_port);

    // The public port neither advertises nor serves the writes.
    let listed = grpcurl(&["-plaintext", &public, "list"]);
    listed.assert_mentions(&["chat.history.v1.HistoryService"]);
    assert!(!listed.stdout.contains("internal"), "{}", listed.stdout);
    let described = grpcurl(&[
        "-plaintext",
        &public,
        "describe",
        "chat.history.v1.HistoryService",
    ]);
    assert!(!described.stdout.contains("Append"), "{}", described.stdout);
    assert_refused(
        &append(&public, Some(&bearer(&bob))),
        "Unimplemented",
        "Append on the public port",
    );

    // The internal port wants the service token: nothing else will do.
    assert_refused(
        &append(&internal, None),
        "Unauthenticated",
        "anonymous Append",
    );
    assert_refused(
        &append(&internal, Some(&bearer(&bob))),
        "Unauthenticated",
        "Append with a user's JWT",
    );
    assert_refused(
        &append(
            &internal,
            Some(&bearer("wrong-service-token-0123456789abcdef")),
        ),
        "Unauthenticated",
        "Append with a wrong service token",
    );

    // Nothing reached bob's queue or the conversation.
    assert!(bodies(&list_offline(&stack, &bearer(&bob), "bob")).is_empty());
    assert!(bodies(&get_history(&stack, &bearer(&bob), "dm:alice:bob")).is_empty());

    // user-service's port: reachable, and useless without the token.
    let users = format!("127.0.0.1:{}", stack.user_port);
    let register = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"username":"mallory","password":"password123"}"#,
        &users,
        "chat.user.v1.UserService/Register",
    ]);
    assert_refused(&register, "Unauthenticated", "anonymous Register");
    let check = grpcurl(&[
        "-plaintext",
        "-H",
        &bearer(&bob),
        "-d",
        r#"{"room":"general","username":"bob"}"#,
        &users,
        "chat.user.v1.UserService/CheckMembership",
    ]);
    assert_refused(&check, "Unauthenticated", "CheckMembership with a JWT");
}

async fn get_json(stack: &Stack, path: &str, token: &str) -> Value {
    reqwest::Client::new()
        .get(stack.gateway_url(0, path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A room that shows history since joining: a member who joined after three
/// messages reads only the later ones, on the public gRPC port, over HTTP,
/// in a WebSocket `history` frame and in the conversation list; a member
/// from before reads everything, and so does everyone once the room shows
/// its full history again.
#[tokio::test]
async fn a_since_join_room_hides_what_came_before_a_join_on_every_surface() {
    let stack = Stack::start(StackOptions {
        gateways: 1,
        workers: 1,
        ..StackOptions::default()
    })
    .await;
    let port = stack.gateway_ports[0];
    let owner = user(&stack, 0, "owner").await;
    let early = user(&stack, 0, "early").await;
    let late = user(&stack, 0, "late").await;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str, body: Value| {
        http.request(method, stack.gateway_url(0, path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let r = call(
        reqwest::Method::POST,
        "/api/rooms",
        &owner,
        json!({"name": "vault"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let r = call(
        reqwest::Method::POST,
        "/api/rooms/vault/join",
        &early,
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = call(
        reqwest::Method::PATCH,
        "/api/rooms/vault",
        &owner,
        json!({"history_visibility": "since_join"}),
    )
    .await
    .unwrap();
    let room: Value = r.json().await.unwrap();
    assert_eq!(room["history_visibility"], "since_join", "{room}");

    let (mut o, _) = WsClient::connect_ready(port, &owner).await;
    for k in 1..=3 {
        o.send_json(&send(
            &format!("b{k}"),
            "room:vault",
            &format!("before {k}"),
        ))
        .await;
        o.recv_type("sent").await;
    }
    let joined: Value = call(
        reqwest::Method::POST,
        "/api/rooms/vault/join",
        &late,
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    // Seq 1 is early's join, 2 to 4 the messages; late's join is 5.
    assert_eq!(joined["history_from_seq"], 4, "{joined}");
    testkit::wait::eventually(
        "late's join in the timeline",
        Duration::from_secs(10),
        || async {
            let page: Value =
                get_json(&stack, "/api/conversations/room:vault/messages", &late).await;
            (page["messages"][0]["member"]["user"] == "late").then_some(())
        },
    )
    .await;
    // Before anything new: nothing unread, no last message.
    let listed: Value = get_json(&stack, "/api/conversations/room:vault", &late).await;
    assert_eq!(
        (&listed["unread"], &listed["last_message"]),
        (&json!(0), &Value::Null),
        "{listed}"
    );
    for k in 1..=2 {
        o.send_json(&send(&format!("a{k}"), "room:vault", &format!("after {k}")))
            .await;
        o.recv_type("sent").await;
    }

    let later = ["late joined", "after 1", "after 2"];
    let everything = [
        "early joined",
        "before 1",
        "before 2",
        "before 3",
        "late joined",
        "after 1",
        "after 2",
    ];
    assert_eq!(
        bodies(&get_history(&stack, &bearer(&late), "room:vault")),
        later
    );
    assert_eq!(
        bodies(&get_history(&stack, &bearer(&early), "room:vault")),
        everything
    );
    let page: Value = get_json(
        &stack,
        "/api/conversations/room:vault/messages?limit=3",
        &late,
    )
    .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 3, "{page}");
    assert_eq!(page["has_more"], false, "the page reached the join: {page}");
    let old: Value = get_json(
        &stack,
        "/api/conversations/room:vault/messages?before=4",
        &late,
    )
    .await;
    assert_eq!(old["messages"], json!([]), "{old}");
    let (mut l, _) = WsClient::connect_ready(port, &late).await;
    l.send_json(&json!({"type": "history", "ref": "h1", "conversation": "room:vault", "after": 0}))
        .await;
    let frame = l.recv_type("history").await;
    let seqs: Vec<u64> = frame["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [5, 6, 7], "{frame}");
    let listed: Value = get_json(&stack, "/api/conversations", &late).await;
    let vault = &listed["conversations"][0];
    assert_eq!(
        (&vault["id"], &vault["unread"]),
        (&json!("room:vault"), &json!(2)),
        "{listed}"
    );

    let r = call(
        reqwest::Method::PATCH,
        "/api/rooms/vault",
        &owner,
        json!({"history_visibility": "full"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        bodies(&get_history(&stack, &bearer(&late), "room:vault")),
        everything
    );
    let r = call(
        reqwest::Method::PATCH,
        "/api/rooms/vault",
        &owner,
        json!({"history_visibility": "members_only"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
}
