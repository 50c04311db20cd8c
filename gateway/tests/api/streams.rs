//! The streaming transport: server frames as server-sent events, client
//! frames POSTed to any gateway; the same protocol and session rules as a
//! WebSocket.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::{StackOptions, TestStack, assert_error, send, spawn_stack_with};

/// A stream's client: its events as (event, data), read by a task.
struct Stream {
    conn: String,
    events: mpsc::UnboundedReceiver<(String, String)>,
}

impl Stream {
    async fn open(stack: &TestStack, gateway: usize, token: &str) -> Result<Self, StatusCode> {
        let url = format!("http://127.0.0.1:{}/api/stream", stack.gateways[gateway]);
        let response = stack
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        if response.status() != StatusCode::OK {
            return Err(response.status());
        }
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an event stream"
        );
        let mut events = testkit::sse::events(response);
        let (event, data) = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("the connection event")
            .expect("stream open");
        assert_eq!(event, "connection", "{data}");
        let conn = serde_json::from_str::<Value>(&data).unwrap()["conn"]
            .as_str()
            .unwrap()
            .to_owned();
        Ok(Self { conn, events })
    }

    /// The next server frame; panics on the close event or after 10 s.
    async fn frame(&mut self) -> Value {
        let (event, data) = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("a frame within 10 s")
            .expect("the stream is open");
        assert_eq!(event, "message", "{data}");
        serde_json::from_str(&data).unwrap()
    }

    async fn frame_of(&mut self, kind: &str) -> Value {
        loop {
            let f = self.frame().await;
            if f["type"] == kind {
                return f;
            }
        }
    }

    /// Reads to the close event; its code.
    async fn closed(&mut self) -> u64 {
        loop {
            let (event, data) = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .expect("the close event within 10 s")
                .expect("a close event before the end");
            if event == "close" {
                return serde_json::from_str::<Value>(&data).unwrap()["code"]
                    .as_u64()
                    .unwrap();
            }
        }
    }
}

async fn post(
    stack: &TestStack,
    gateway: usize,
    token: &str,
    conn: &str,
    body: Value,
) -> (StatusCode, Value) {
    let url = format!(
        "http://127.0.0.1:{}/api/stream/{conn}",
        stack.gateways[gateway]
    );
    let r = stack
        .http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_stream_speaks_the_protocol_with_posts_to_any_gateway() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    // Bob's DM waits in alice's offline queue.
    let (mut b, _) = stack.connect(1, &bob).await;
    b.send_json(&send("b1", "user:alice", "while you were away"))
        .await;
    b.recv_type("sent").await;

    let mut s = Stream::open(&stack, 0, &alice).await.unwrap();
    let hello = s.frame().await;
    assert_eq!(
        (hello["type"].as_str(), hello["gateway"].as_str()),
        (Some("hello"), Some("gw0"))
    );
    let offline = s.frame().await;
    assert_eq!(offline["type"], "offline");
    assert_eq!(offline["messages"][0]["body"], "while you were away");
    // The ack, a send and a ping in one POST, to the other gateway.
    let (status, body) = post(
        &stack,
        1,
        &alice,
        &s.conn,
        json!([{"type": "offline_ack"}, send("a1", "user:bob", "hi from a stream"), {"type": "ping"}]),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (StatusCode::ACCEPTED, Some(3)),
        "{body}"
    );
    let sent = s.frame_of("sent").await;
    assert_eq!(
        (sent["client_id"].as_str(), sent["seq"].as_u64()),
        (Some("a1"), Some(2))
    );
    let got = b.recv_type("message").await;
    assert_eq!(got["body"], "hi from a stream");
    // A re-send is answered from its dedup record, as on a socket.
    post(
        &stack,
        0,
        &alice,
        &s.conn,
        send("a1", "user:bob", "hi from a stream"),
    )
    .await;
    assert_eq!(s.frame_of("sent").await["seq"], 2);
    // Live deliveries and history replies come on the stream.
    b.send_json(&send("b2", "user:alice", "live")).await;
    assert_eq!(s.frame_of("message").await["body"], "live");
    post(
        &stack,
        1,
        &alice,
        &s.conn,
        json!({"type": "history", "ref": "h1", "conversation": "dm:alice:bob", "limit": 10}),
    )
    .await;
    let page = s.frame_of("history").await;
    assert_eq!(page["ref"], "h1");
    assert_eq!(page["messages"].as_array().unwrap().len(), 3);
    // A bad frame gets its error on the stream, like on a socket.
    post(
        &stack,
        1,
        &alice,
        &s.conn,
        json!({"type": "send", "client_id": "x", "to": "user:bob"}),
    )
    .await;
    let e = s.frame_of("error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("bad_request"), Some("x"))
    );
}

#[tokio::test]
async fn posts_are_checked_and_change_nothing_when_refused() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let mallory = stack.user("mallory").await;
    let mut s = Stream::open(&stack, 0, &alice).await.unwrap();
    s.frame_of("offline").await;
    let ping = json!({"type": "ping"});
    for gateway in [0, 1] {
        let (st, b) = post(&stack, gateway, &mallory, &s.conn, ping.clone()).await;
        assert_error(st, &b, StatusCode::FORBIDDEN, "forbidden");
        let (st, b) = post(&stack, gateway, "garbage", &s.conn, ping.clone()).await;
        assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // A made-up MAC is someone else's stream as far as anyone can tell.
    let (holder, rest) = s.conn.split_once('.').unwrap();
    let id = rest.split('.').next().unwrap();
    let forged = format!("{holder}.{id}.{}", "0".repeat(32));
    let (st, b) = post(&stack, 1, &alice, &forged, ping.clone()).await;
    assert_error(st, &b, StatusCode::FORBIDDEN, "forbidden");
    // A token of a gateway nobody runs has a MAC nobody could forge: 403.
    let (st, b) = post(
        &stack,
        1,
        &alice,
        "gw9.1.00000000000000000000000000000001",
        ping.clone(),
    )
    .await;
    assert_error(st, &b, StatusCode::FORBIDDEN, "forbidden");
    for unknown in ["nonsense", "gw0.1.1"] {
        let (st, b) = post(&stack, 1, &alice, unknown, ping.clone()).await;
        assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
    }
    for bad in [json!("ping"), json!([]), json!(vec![ping.clone(); 33])] {
        let (st, b) = post(&stack, 0, &alice, &s.conn, bad).await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
    }
    // Nothing of that reached the stream: the next frame answers this ping.
    post(
        &stack,
        0,
        &alice,
        &s.conn,
        json!({"type": "ping", "ref": "p"}),
    )
    .await;
    assert_eq!(s.frame().await["type"], "pong");
}

#[tokio::test]
async fn a_stream_closes_as_a_socket_would_and_transports_can_be_turned_off() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let login = stack.login_registered("alice").await;
    let token = login["token"].as_str().unwrap().to_owned();
    let mut s = Stream::open(&stack, 0, &token).await.unwrap();
    s.frame_of("offline").await;
    let (st, _) = stack.post("/api/logout", Some(&token), json!({})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.closed().await, 4001, "a revoked session's stream closes");
    assert_eq!(
        Stream::open(&stack, 0, &token).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );

    let only_ws = spawn_stack_with(StackOptions {
        gateway: vec![("TRANSPORTS", "websocket".into())],
        ..StackOptions::default()
    })
    .await;
    let bob = only_ws.user("bob").await;
    assert_eq!(
        Stream::open(&only_ws, 0, &bob).await.err(),
        Some(StatusCode::FORBIDDEN)
    );
    only_ws.connect(0, &bob).await;

    let only_stream = spawn_stack_with(StackOptions {
        gateway: vec![("TRANSPORTS", "stream".into())],
        ..StackOptions::default()
    })
    .await;
    let carol = only_stream.user("carol").await;
    assert!(matches!(
        testkit::WsClient::connect(only_stream.gateways[0], &carol).await,
        Err(testkit::ws::WsEnd::Refused(403))
    ));
    Stream::open(&only_stream, 0, &carol).await.unwrap();
}
