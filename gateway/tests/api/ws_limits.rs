use std::time::Duration;

use serde_json::json;
use testkit::{WsClient, ws::WsEnd};

use crate::helpers::{StackOptions, send, spawn_stack_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_4008_and_slows_no_one() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("OUTBOUND_QUEUE", 256.to_string()),
            ("RATE_PER_SEC", 100_000.to_string()),
            ("ACCOUNT_MESSAGES_PER_SEC", 0.to_string()),
            ("RATE_BURST", 100_000.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    stack.create_room(&alice, "general").await;
    stack.join_room(&bob, "general").await;
    stack.join_room(&carol, "general").await;

    let port = stack.gateways[0];
    let mut slow = WsClient::connect_small_buffer(port, &bob).await;
    assert_eq!(slow.recv().await["type"], "hello");
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut c, _) = stack.connect(0, &carol).await;

    // bob never reads, until the gateway has flagged him as a slow
    // consumer: then he looks at once, and finds the socket ending with
    // 4008 (the close waits CLOSE_WAIT, 5 s, for him to read that far).
    let (http, ops) = (stack.http.clone(), stack.ops[0]);
    let bob_looks = tokio::spawn(async move {
        testkit::wait::eventually(
            "the gateway to flag a slow consumer",
            Duration::from_secs(60),
            || {
                let http = http.clone();
                async move {
                    let text = http
                        .get(format!("http://127.0.0.1:{ops}/metrics"))
                        .send()
                        .await
                        .ok()?
                        .text()
                        .await
                        .ok()?;
                    text.lines()
                        .any(|l| {
                            l.starts_with("gateway_slow_consumers_total ") && !l.ends_with(" 0")
                        })
                        .then_some(())
                }
            },
        )
        .await;
        loop {
            match slow.next_frame(Duration::from_secs(20)).await {
                Ok(_) => continue,
                Err(WsEnd::Closed(frame)) => break frame.map(|f| u16::from(f.code)),
                Err(other) => panic!("expected a close frame, got {other:?}"),
            }
        }
    });

    const N: usize = 3000;
    let reader = tokio::spawn(async move {
        let mut got = std::collections::HashSet::new();
        while got.len() < N {
            let m = c.recv_type("message").await;
            got.insert(m["id"].as_str().unwrap().to_owned());
        }
        got.len()
    });
    let body = "x".repeat(4000);
    for chunk in 0..N / 100 {
        for i in 0..100 {
            a.send_json(&send(&format!("m{chunk}-{i}"), "room:general", &body))
                .await;
        }
        for _ in 0..100 {
            a.recv_type("sent").await;
        }
    }
    let received = testkit::within(
        "carol to get every message",
        Duration::from_secs(60),
        reader,
    )
    .await
    .unwrap();
    assert_eq!(received, N, "the reading member got everything");
    let code = testkit::within("bob's socket to close", Duration::from_secs(60), bob_looks)
        .await
        .unwrap();
    assert_eq!(code, Some(4008));
}

#[tokio::test]
async fn silent_connections_are_closed_and_answering_ones_are_not() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("HEARTBEAT_MS", 100.to_string()),
            ("IDLE_TIMEOUT_MS", 500.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut silent, _) = stack.connect(0, &alice).await;
    let (mut awake, _) = stack.connect(0, &bob).await;

    // bob keeps reading, so his client answers the server's pings.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        match awake.next_frame(Duration::from_millis(100)).await {
            Err(WsEnd::Error(e)) if e == "timed out" => {}
            other => panic!("bob's socket should stay quiet and open: {other:?}"),
        }
    }
    awake.send_json(&json!({"type": "ping"})).await;
    assert_eq!(awake.recv().await["type"], "pong");

    // alice read nothing for 1.5 s, so she never answered a ping.
    assert_eq!(silent.closed_code(Duration::from_secs(5)).await, Some(4000));
}

#[tokio::test]
async fn a_gateway_at_its_connection_limit_answers_503() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("MAX_CONNECTIONS", 2.to_string())],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let (_one, _) = stack.connect(0, &alice).await;
    let (_two, _) = stack.connect(0, &alice).await;
    assert!(matches!(
        WsClient::connect(stack.gateways[0], &alice).await,
        Err(WsEnd::Refused(503))
    ));
}
