//! Every error that answers a client frame carries its `ref`: each frame
//! kind walked through every error path it has (bad request, rate limit,
//! too large, forbidden, not found, unavailable, conflict), table-driven.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{WsClient, proxy::Mode};

use crate::helpers::{StackOptions, TestStack, send, spawn_stack_with};

/// One row: a frame with a reference, the code its error must have.
struct Case {
    what: &'static str,
    frame: Value,
    code: &'static str,
}

fn case(what: &'static str, frame: Value, code: &'static str) -> Case {
    Case { what, frame, code }
}

/// The reference a frame names: its client_id, else its ref.
fn reference(frame: &Value) -> String {
    frame["client_id"]
        .as_str()
        .or(frame["ref"].as_str())
        .expect("every case names a reference")
        .to_owned()
}

/// Sends every case and checks each is answered by an error with its code
/// and its ref (answers may come in any order: some come from the worker).
async fn walk(ws: &mut WsClient, cases: &[Case]) {
    for c in cases {
        ws.send_json(&c.frame).await;
    }
    let mut waiting: Vec<&Case> = cases.iter().collect();
    while !waiting.is_empty() {
        let f = testkit::within(
            &format!(
                "errors for {:?}",
                waiting.iter().map(|c| c.what).collect::<Vec<_>>()
            ),
            Duration::from_secs(15),
            ws.recv(),
        )
        .await;
        if f["type"] != "error" && f["type"] != "sent" && f["type"] != "history" {
            continue;
        }
        let referred = f["ref"]
            .as_str()
            .or(f["client_id"].as_str())
            .unwrap_or_default();
        let Some(i) = waiting.iter().position(|c| reference(&c.frame) == referred) else {
            continue;
        };
        let c = waiting.remove(i);
        assert_eq!(
            (f["type"].as_str(), f["code"].as_str()),
            (Some("error"), Some(c.code)),
            "{}: {f}",
            c.what
        );
        assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()), "{f}");
    }
}

async fn users(stack: &TestStack) -> (String, String, String) {
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    stack.create_room(&carol, "ops").await;
    (alice, bob, carol)
}

#[tokio::test]
async fn refusals_of_every_frame_kind_carry_their_ref() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let (alice, bob, _) = users(&stack).await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(0, &bob).await;
    a.send_json(&send("mine", "user:bob", "alice's")).await;
    let mine = a.recv_type("sent").await;
    b.send_json(&send("theirs", "user:alice", "bob's")).await;
    let theirs = b.recv_type("sent").await;
    let dm = "dm:alice:bob";
    let big = "x".repeat(4097);
    let cases = [
        case(
            "send, bad target",
            json!({"type": "send", "client_id": "s-bad", "to": "nowhere", "body": "x"}),
            "bad_request",
        ),
        case(
            "send, too large",
            json!({"type": "send", "client_id": "s-big", "to": "user:bob", "body": big}),
            "too_large",
        ),
        case(
            "send, not a member",
            send("s-forbidden", "room:ops", "x"),
            "forbidden",
        ),
        case(
            "send, no such user",
            send("s-missing", "user:nobody_here", "x"),
            "not_found",
        ),
        case(
            "send, client_id of another request",
            send("mine", "room:ops", "x"),
            "conflict",
        ),
        case(
            "edit, seq 0",
            json!({"type": "edit", "client_id": "e-bad", "conversation": dm, "seq": 0, "body": "x"}),
            "bad_request",
        ),
        case(
            "edit, too large",
            json!({"type": "edit", "client_id": "e-big", "conversation": dm, "seq": mine["seq"], "body": big}),
            "too_large",
        ),
        case(
            "edit, someone else's",
            json!({"type": "edit", "client_id": "e-forbidden", "conversation": dm, "seq": theirs["seq"], "body": "x"}),
            "forbidden",
        ),
        case(
            "edit, not a party",
            json!({"type": "edit", "client_id": "e-party", "conversation": "dm:bob:carol", "seq": 1, "body": "x"}),
            "forbidden",
        ),
        case(
            "edit, no such message",
            json!({"type": "edit", "client_id": "e-missing", "conversation": dm, "seq": 999, "body": "x"}),
            "not_found",
        ),
        case(
            "edit, client_id of another request",
            json!({"type": "edit", "client_id": "mine", "conversation": dm, "seq": mine["seq"], "body": "x"}),
            "conflict",
        ),
        case(
            "delete, bad conversation",
            json!({"type": "delete", "client_id": "d-bad", "conversation": "dm:bob:alice", "seq": 1}),
            "bad_request",
        ),
        case(
            "delete, someone else's",
            json!({"type": "delete", "client_id": "d-forbidden", "conversation": dm, "seq": theirs["seq"]}),
            "forbidden",
        ),
        case(
            "delete, no such message",
            json!({"type": "delete", "client_id": "d-missing", "conversation": dm, "seq": 999}),
            "not_found",
        ),
        case(
            "delete, client_id of another request",
            json!({"type": "delete", "client_id": "mine", "conversation": dm, "seq": theirs["seq"]}),
            "conflict",
        ),
        case(
            "history, limit 0",
            json!({"type": "history", "ref": "h-bad", "conversation": dm, "limit": 0}),
            "bad_request",
        ),
        case(
            "history, not a member",
            json!({"type": "history", "ref": "h-forbidden", "conversation": "room:ops"}),
            "forbidden",
        ),
        case(
            "history, no such room",
            json!({"type": "history", "ref": "h-missing", "conversation": "room:nosuch"}),
            "not_found",
        ),
        case(
            "read, beyond the last seq",
            json!({"type": "read", "ref": "r-bad", "conversation": dm, "seq": 999}),
            "bad_request",
        ),
        case(
            "read, not a member",
            json!({"type": "read", "ref": "r-forbidden", "conversation": "room:ops", "seq": 1}),
            "forbidden",
        ),
        case(
            "read, no such room",
            json!({"type": "read", "ref": "r-missing", "conversation": "room:nosuch", "seq": 1}),
            "not_found",
        ),
        case(
            "typing, bad target",
            json!({"type": "typing", "ref": "t-bad", "to": "bogus"}),
            "bad_request",
        ),
        case(
            "typing, not a member",
            json!({"type": "typing", "ref": "t-forbidden", "to": "room:ops"}),
            "forbidden",
        ),
        case(
            "typing, no such user",
            json!({"type": "typing", "ref": "t-missing", "to": "user:nobody_here"}),
            "not_found",
        ),
    ];
    walk(&mut a, &cases).await;
}

#[tokio::test]
async fn rate_limited_frames_of_every_kind_carry_their_ref() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("RATE_PER_SEC", 1.to_string()),
            ("RATE_BURST", 2.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let (alice, _, _) = users(&stack).await;
    let (mut a, _) = stack.connect(0, &alice).await;
    // Spend the burst (garbage counts against the limit too).
    for _ in 0..2 {
        a.send_text("not json").await;
        assert_eq!(a.recv().await["code"], "bad_request");
    }
    let dm = "dm:alice:bob";
    let cases = [
        case("send", send("s-rl", "user:bob", "x"), "rate_limited"),
        case(
            "edit",
            json!({"type": "edit", "client_id": "e-rl", "conversation": dm, "seq": 1, "body": "x"}),
            "rate_limited",
        ),
        case(
            "delete",
            json!({"type": "delete", "client_id": "d-rl", "conversation": dm, "seq": 1}),
            "rate_limited",
        ),
        case(
            "history",
            json!({"type": "history", "ref": "h-rl", "conversation": dm}),
            "rate_limited",
        ),
        case(
            "read",
            json!({"type": "read", "ref": "r-rl", "conversation": dm, "seq": 1}),
            "rate_limited",
        ),
        case(
            "typing",
            json!({"type": "typing", "ref": "t-rl", "to": "user:bob"}),
            "rate_limited",
        ),
    ];
    walk(&mut a, &cases).await;
}

#[tokio::test]
async fn frames_refused_as_unavailable_carry_their_ref() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("INGRESS_BACKLOG_LIMIT", 100.to_string())],
        chat_worker: false,
        gateway_history_link: true,
        ..StackOptions::default()
    })
    .await;
    let (alice, bob, _) = users(&stack).await;
    // bob has a queued message, so his socket has an offline batch to ack.
    let mut redis = stack._storage.redis().await;
    let queued = json!({"id": "q1", "conversation": "dm:alice:bob", "seq": 1, "from": "alice",
        "to": "user:bob", "body": "queued", "ts": 1, "client_id": "q"});
    let _: () = redis::cmd("RPUSH")
        .arg(stack._storage.key("{user:bob}:offline"))
        .arg(queued.to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, offline) = stack.connect(0, &bob).await;
    assert_eq!(offline["messages"][0]["id"], "q1");
    // The ingress backlog past its limit: sends, edits and deletes are shed.
    let stream = stack._storage.key("{ingress:0}");
    for i in 0..120 {
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("filler")
            .arg(i)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let dm = "dm:alice:bob";
    // The gateway polls the backlog: probe until it sheds.
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            tokio::time::Instant::now() < end,
            "the backlog was never noticed"
        );
        a.send_json(&send("probe", "user:bob", "x")).await;
        if let Ok(f) = a.next_frame(Duration::from_millis(300)).await
            && f["code"] == "unavailable"
        {
            break;
        }
    }
    // history-service unreachable from the gateways.
    stack.history_link.as_ref().unwrap().set(Mode::Refuse);
    let cases = [
        case("send", send("s-un", "user:bob", "x"), "unavailable"),
        case(
            "edit",
            json!({"type": "edit", "client_id": "e-un", "conversation": dm, "seq": 1, "body": "x"}),
            "unavailable",
        ),
        case(
            "delete",
            json!({"type": "delete", "client_id": "d-un", "conversation": dm, "seq": 1}),
            "unavailable",
        ),
        case(
            "history",
            json!({"type": "history", "ref": "h-un", "conversation": dm}),
            "unavailable",
        ),
    ];
    walk(&mut a, &cases).await;
    walk(
        &mut b,
        &[case(
            "offline_ack",
            json!({"type": "offline_ack", "ref": "o-un"}),
            "unavailable",
        )],
    )
    .await;
}

#[tokio::test]
async fn frames_refused_while_redis_is_unreachable_carry_their_ref() {
    if testkit::redis_cluster() {
        // A proxy stands for one node; the cluster run covers the rest.
        return;
    }
    let stack = spawn_stack_with(StackOptions {
        gateway_redis_link: true,
        ..StackOptions::default()
    })
    .await;
    let (alice, _, _) = users(&stack).await;
    let (mut a, _) = stack.connect(0, &alice).await;
    stack.redis_link.as_ref().unwrap().set(Mode::Refuse);
    let dm = "dm:alice:bob";
    let cases = [
        case("send", send("s-nr", "user:bob", "x"), "unavailable"),
        case(
            "read",
            json!({"type": "read", "ref": "r-nr", "conversation": dm, "seq": 1}),
            "unavailable",
        ),
        case(
            "typing",
            json!({"type": "typing", "ref": "t-nr", "to": "user:bob"}),
            "unavailable",
        ),
    ];
    walk(&mut a, &cases).await;
}
