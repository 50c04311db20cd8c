//! Who gets a socket: one-time tickets instead of tokens in URLs, caps per
//! user and per address, and backpressure when the ingress backlog is long.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{WsClient, ws::WsEnd};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{StackOptions, TestStack, assert_error, send, spawn_stack_with};

async fn ticket(stack: &TestStack, token: &str) -> String {
    let (s, body) = stack.post("/api/ws-ticket", Some(token), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 30);
    body["ticket"].as_str().unwrap().to_owned()
}

async fn open(port: u16, query: &str, forwarded_for: Option<&str>) -> Result<WsClient, WsEnd> {
    let mut request = format!("ws://127.0.0.1:{port}/ws?{query}")
        .into_client_request()
        .unwrap();
    if let Some(ip) = forwarded_for {
        request
            .headers_mut()
            .insert("x-forwarded-for", ip.parse().unwrap());
    }
    WsClient::open(request).await
}

#[tokio::test]
async fn a_ticket_opens_one_socket_on_any_gateway_once() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;

    let (s, body) = stack.post("/api/ws-ticket", None, json!({})).await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // Issued by gateway 0, spent on gateway 1.
    let t = ticket(&stack, &alice).await;
    let mut ws = open(stack.gateways[1], &format!("ticket={t}"), None)
        .await
        .expect("the ticket opens a socket");
    let hello = ws.recv().await;
    assert_eq!(
        (hello["type"].as_str(), hello["user"].as_str()),
        (Some("hello"), Some("alice"))
    );

    // Spent: neither gateway takes it again.
    for gw in 0..2 {
        assert!(matches!(
            open(stack.gateways[gw], &format!("ticket={t}"), None).await,
            Err(WsEnd::Refused(401))
        ));
    }
    // Made-up tickets, and a token passed as a ticket, are refused.
    for bogus in ["0".repeat(64), "x".into(), alice.clone()] {
        assert!(matches!(
            open(stack.gateways[0], &format!("ticket={bogus}"), None).await,
            Err(WsEnd::Refused(401))
        ));
    }
}

#[tokio::test]
async fn sockets_are_capped_per_user_and_per_address() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("MAX_CONNECTIONS_PER_USER", 2.to_string()),
            ("MAX_CONNECTIONS_PER_IP", 3.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let port = stack.gateways[0];
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    let dave = stack.user("dave").await;
    let from = |token: &str| format!("token={token}");

    let a1 = open(port, &from(&alice), Some("198.51.100.1"))
        .await
        .unwrap();
    let _a2 = open(port, &from(&alice), Some("198.51.100.2"))
        .await
        .unwrap();
    assert!(
        matches!(
            open(port, &from(&alice), Some("198.51.100.3")).await,
            Err(WsEnd::Refused(429))
        ),
        "a third socket for alice"
    );
    let _b = open(port, &from(&bob), Some("198.51.100.1")).await.unwrap();
    let _c = open(port, &from(&carol), Some("198.51.100.1"))
        .await
        .unwrap();
    assert!(
        matches!(
            open(port, &from(&dave), Some("198.51.100.1")).await,
            Err(WsEnd::Refused(429))
        ),
        "a fourth socket from one address"
    );
    assert!(open(port, &from(&dave), Some("198.51.100.9")).await.is_ok());

    // Closing a socket frees its places.
    drop(a1);
    testkit::eventually(
        "alice's place to free up",
        Duration::from_secs(10),
        || async { open(port, &from(&alice), Some("198.51.100.4")).await.ok() },
    )
    .await;
}

#[tokio::test]
async fn a_long_ingress_backlog_refuses_sends_with_a_retry_hint() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("INGRESS_BACKLOG_LIMIT", 100.to_string())],
        chat_worker: false,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;

    // No worker drains the stream: fill it past the limit.
    let mut redis = stack._storage.redis().await;
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
    // The gateway reads the backlog a few times a second: a send before it
    // noticed is still taken (no worker, so no `sent`), the next is refused.
    let (refused, client_id, accepted) =
        send_until_refused(&mut a, 0, Duration::from_millis(500)).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert_eq!(refused["ref"], client_id.as_str());
    assert_eq!(refused["retry_after_ms"], 1000);
    let len: u64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(len, 120 + accepted, "the refused send added nothing");
}

#[tokio::test]
async fn sends_are_shed_while_unread_entries_wait_too_long_but_not_for_a_dead_workers_pending_ones()
{
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("INGRESS_MAX_WAIT_MS", 300.to_string())],
        chat_worker: false,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;

    // A worker read an entry and died: it stays pending until claimed, and
    // says nothing about how busy the workers are.
    let mut redis = stack._storage.redis().await;
    let stream = stack._storage.key("{ingress:0}");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(chat_model::message::INGRESS_GROUP)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut redis)
        .await
        .unwrap();
    let added: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("filler")
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(chat_model::message::INGRESS_GROUP)
        .arg("dead-worker")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();
    // Let it grow older than the limit, and the gateway poll meanwhile.
    let added_ms: i64 = added.split('-').next().unwrap().parse().unwrap();
    let wait = added_ms + 800 - chat_model::time::now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    a.send_json(&send("c0", "user:bob", "hi")).await;
    assert!(
        a.next_frame(Duration::from_millis(250)).await.is_err(),
        "a send was refused for an entry a worker already holds"
    );

    // No worker reads: c0 and what follows wait, and past 300 ms the
    // gateway sheds.
    let (refused, client_id, accepted) =
        send_until_refused(&mut a, 1, Duration::from_millis(100)).await;
    assert_eq!(
        (
            &refused["code"],
            &refused["ref"],
            &refused["retry_after_ms"]
        ),
        (&json!("unavailable"), &json!(client_id), &json!(1000)),
        "{refused}"
    );
    let len: u64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(len, 1 + accepted, "the refused send added nothing");
}

/// With several ingress partitions, a send goes to its conversation's
/// partition only, and the gateway watches every partition's wait.
#[tokio::test]
async fn with_partitions_sends_go_to_their_conversations_partition_and_all_are_watched() {
    const PARTITIONS: usize = 5;
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("INGRESS_MAX_WAIT_MS", 300.to_string()),
            ("INGRESS_PARTITIONS", PARTITIONS.to_string()),
        ],
        chat_worker: false,
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let dm = chat_model::ids::ConversationId::dm("alice", "bob");
    let ours = chat_redis::keys::partition(dm.as_str(), PARTITIONS);
    assert_ne!(ours, 0, "the DM's partition is not the first one");

    // No worker reads: past 300 ms the gateway sheds, whichever partition.
    let (refused, client_id, accepted) =
        send_until_refused(&mut a, 0, Duration::from_millis(100)).await;
    assert_eq!(
        (&refused["code"], &refused["ref"]),
        (&json!("unavailable"), &json!(client_id)),
        "{refused}"
    );
    let mut redis = stack._storage.redis().await;
    for p in 0..PARTITIONS {
        let len: u64 = redis::cmd("XLEN")
            .arg(stack._storage.key(&format!("{{ingress:{p}}}")))
            .query_async(&mut redis)
            .await
            .unwrap();
        let want = if p == ours { accepted } else { 0 };
        assert_eq!(len, want, "partition {p} (the DM's is {ours})");
    }
}

/// Sends DMs to bob (client ids `c<first>`, `c<first + 1>`, …) until one is
/// answered, within 10 s; a send unanswered for `quiet` counts as taken
/// (there is no worker, so no `sent`). Returns the answer, the client_id it
/// answers and how many were taken before it, `first` included.
async fn send_until_refused(a: &mut WsClient, first: u64, quiet: Duration) -> (Value, String, u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut accepted = first;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no send was refused"
        );
        let client_id = format!("c{accepted}");
        a.send_json(&send(&client_id, "user:bob", "hi")).await;
        match a.next_frame(quiet).await {
            Ok(frame) => return (frame, client_id, accepted),
            Err(_) => accepted += 1,
        }
    }
}

#[tokio::test]
async fn a_refused_upgrade_does_not_spend_its_ticket_and_minting_is_limited() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("ALLOWED_ORIGINS", "http://chat.example".to_string()),
            ("MAX_CONNECTIONS_PER_USER", 1.to_string()),
            ("TICKETS_PER_USER", 5.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let t = ticket(&stack, &alice).await;
    // Refused for its origin, then as not an upgrade at all: the ticket stays.
    let mut request = format!("ws://127.0.0.1:{}/ws?ticket={t}", stack.gateways[0])
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    assert!(matches!(
        WsClient::open(request).await,
        Err(WsEnd::Refused(403))
    ));
    let plain = reqwest::get(stack.url(&format!("/ws?ticket={t}")))
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    // Refused at the per-user cap: still not spent.
    let (_held, _) = stack.connect(0, &alice).await;
    assert!(matches!(
        open(stack.gateways[0], &format!("ticket={t}"), None).await,
        Err(WsEnd::Refused(429))
    ));
    drop(_held);
    let mut ws = testkit::eventually("the cap to free", Duration::from_secs(5), || async {
        open(stack.gateways[0], &format!("ticket={t}"), None)
            .await
            .ok()
    })
    .await;
    assert_eq!(
        ws.recv().await["type"],
        "hello",
        "the accepted upgrade spends it"
    );
    drop(ws);
    assert!(matches!(
        open(stack.gateways[0], &format!("ticket={t}"), None).await,
        Err(WsEnd::Refused(401))
    ));
    // Five tickets a minute per user (one above was the first), then 429.
    for _ in 0..4 {
        ticket(&stack, &alice).await;
    }
    let (s, body) = stack.post("/api/ws-ticket", Some(&alice), json!({})).await;
    assert_error(s, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}
