//! Long-polling: the session's frames in Redis for polls on any gateway,
//! a cursor that acknowledges and repeats, frames POSTed as on a stream.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{StackOptions, TestStack, assert_error, send, spawn_stack_with};

async fn open(stack: &TestStack, gateway: usize, token: &str) -> (StatusCode, Value) {
    let r = stack
        .http
        .post(format!(
            "http://127.0.0.1:{}/api/poll",
            stack.gateways[gateway]
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn poll(
    stack: &TestStack,
    gateway: usize,
    token: &str,
    conn: &str,
    cursor: &str,
    wait_ms: u64,
) -> (StatusCode, Value) {
    let r = stack
        .http
        .get(format!(
            "http://127.0.0.1:{}/api/poll/{conn}?cursor={cursor}&wait_ms={wait_ms}",
            stack.gateways[gateway]
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls (on alternating gateways) until a frame of `kind`; the frames
/// seen and the cursor after them.
async fn until_frame(
    stack: &TestStack,
    token: &str,
    conn: &str,
    mut cursor: String,
    kind: &str,
) -> (Vec<Value>, String) {
    let mut seen = Vec::new();
    for round in 0..20 {
        let (s, answer) = poll(stack, round % 2, token, conn, &cursor, 2000).await;
        assert_eq!(s, StatusCode::OK, "{answer}");
        cursor = answer["cursor"].as_str().unwrap().to_owned();
        for f in answer["frames"].as_array().unwrap() {
            seen.push(f.clone());
        }
        if seen.iter().any(|f| f["type"] == kind) {
            return (seen, cursor);
        }
    }
    panic!("no {kind} frame in {seen:?}");
}

#[tokio::test]
async fn long_polls_carry_the_protocol_on_any_gateway() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut b, _) = stack.connect(1, &bob).await;
    let (s, opened) = open(&stack, 0, &alice).await;
    assert_eq!(s, StatusCode::OK, "{opened}");
    let conn = opened["conn"].as_str().unwrap().to_owned();
    let (frames, cursor) = until_frame(&stack, &alice, &conn, "0-0".into(), "offline").await;
    assert_eq!(frames[0]["type"], "hello");

    // A send POSTed on the other gateway; its `sent` comes to a poll.
    let url = format!("http://127.0.0.1:{}/api/stream/{conn}", stack.gateways[1]);
    let r = stack
        .http
        .post(url)
        .bearer_auth(&alice)
        .json(&json!([{"type": "offline_ack"}, send("p1", "user:bob", "by long-poll")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(b.recv_type("message").await["body"], "by long-poll");
    let (frames, next) = until_frame(&stack, &alice, &conn, cursor.clone(), "sent").await;
    assert!(frames.iter().any(|f| f["client_id"] == "p1"));
    // The answer was "lost": the same cursor gets the same frames again.
    let (_, again) = poll(&stack, 1, &alice, &conn, &cursor, 0).await;
    assert!(
        again["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["client_id"] == "p1"),
        "{again}"
    );
    // Nothing new: an empty answer after the wait, the cursor unchanged.
    let (s, empty) = poll(&stack, 0, &alice, &conn, &next, 300).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            empty["frames"].as_array().unwrap().len(),
            empty["cursor"].as_str()
        ),
        (0, Some(next.as_str()))
    );
    // Live deliveries come to polls. One waits on each gateway in turn
    // for a DM that comes while it waits: the holder's writer wakes it
    // (here, or through the other gateway's inbound channel).
    let mut cursor = next;
    for (gw, k) in [(0, 1), (1, 2)] {
        let waiting = {
            let (stack, alice, conn, cursor) = (&stack, &alice, &conn, cursor.clone());
            async move { poll(stack, gw, alice, conn, &cursor, 20_000).await }
        };
        let sending = async {
            // Once the poll waits (it has left word where to wake it).
            let redis = stack._storage.redis().await;
            // The token is <holder>.<id>.<mac>; the holder may hold dots.
            let mut parts = conn.rsplitn(3, '.');
            let (_, id, holder) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
            let word = stack._storage.key(&format!("{{poll:{holder}.{id}}}:w"));
            testkit::eventually(
                "the poll to wait",
                std::time::Duration::from_secs(10),
                || {
                    let (mut redis, word) = (redis.clone(), word.clone());
                    async move {
                        let waiting: bool =
                            redis::AsyncCommands::exists(&mut redis, &word).await.ok()?;
                        waiting.then_some(())
                    }
                },
            )
            .await;
            b.send_json(&send(&format!("b{k}"), "user:alice", "to a poller"))
                .await;
        };
        let ((s, got), ()) = tokio::join!(waiting, sending);
        assert_eq!(s, StatusCode::OK, "{got}");
        assert!(
            got["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["body"] == "to a poller"),
            "{got}"
        );
        cursor = got["cursor"].as_str().unwrap().to_owned();
    }
    for ops in &stack.ops {
        let metrics = stack
            .http
            .get(format!("http://127.0.0.1:{ops}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("gateway_poll_wakeups_total") && !l.ends_with(" 0")),
            "each gateway woke a waiting poll:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn polls_are_checked_and_a_signed_out_connection_says_so() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let login = stack.login_registered("alice").await;
    let alice = login["token"].as_str().unwrap().to_owned();
    let mallory = stack.user("mallory").await;
    let (_, opened) = open(&stack, 0, &alice).await;
    let conn = opened["conn"].as_str().unwrap().to_owned();
    let (s, b) = poll(&stack, 0, &mallory, &conn, "0-0", 0).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = poll(&stack, 0, &alice, &conn, "nonsense", 0).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = poll(&stack, 0, &alice, &conn, "0-0", 25_001).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = poll(&stack, 0, &alice, "nonsense", "0-0", 0).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (cursor, _) = {
        let (frames, cursor) = until_frame(&stack, &alice, &conn, "0-0".into(), "offline").await;
        (cursor, frames)
    };
    let (s, _) = stack.post("/api/logout", Some(&alice), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    // The next polls are refused (the token's session is gone) ...
    let (s, b) = poll(&stack, 0, &alice, &conn, &cursor, 0).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    // ... and the connection's last entry says why, for a client that polls
    // with a fresh session of the same user: 4001.
    let fresh = stack.login("alice", "").await;
    let fresh = fresh["token"].as_str().unwrap();
    let mut close = Value::Null;
    for _ in 0..20 {
        let (s, answer) = poll(&stack, 0, fresh, &conn, &cursor, 1000).await;
        assert_eq!(s, StatusCode::OK, "{answer}");
        if !answer["close"].is_null() {
            close = answer["close"].clone();
            break;
        }
    }
    assert_eq!(close["code"], 4001, "{close}");
}

#[tokio::test]
async fn long_polling_can_be_turned_off() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("TRANSPORTS", "websocket,stream".into())],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let (s, b) = open(&stack, 0, &alice).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden");
}
