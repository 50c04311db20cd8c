//! Partial failures between chat-service and an online recipient's gateway:
//! only its pub/sub connection killed, or the whole gateway killed with -9.
//! The recipient stays online (or reconnects to another replica) and runs the
//! documented recovery on `resync` and on every reconnect; it must end up
//! with every message its sender got `sent` for.

use std::{collections::HashSet, sync::Arc, time::Duration};

use e2e::{Stack, StackOptions};
use serde_json::Value;
use testkit::{WsClient, recovery::Inbox, ws::WsEnd};
use tokio::sync::Mutex;

use crate::helpers::{send, user};

/// Sends `n` DMs from `sender` to `to`, `per_sec` a second, calling `fault`
/// once after `fault_at` of them; returns the ids acknowledged with `sent`.
async fn send_dms(
    sender: &mut WsClient,
    to: &str,
    n: usize,
    per_sec: u64,
    fault_at: usize,
    fault: impl AsyncFnOnce(),
) -> HashSet<String> {
    let mut fault = Some(fault);
    let mut acked = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / per_sec));
    for i in 0..n {
        tick.tick().await;
        if i == fault_at
            && let Some(f) = fault.take()
        {
            f().await;
        }
        sender
            .send_json(&send(&format!("c{i}"), to, &format!("message {i}")))
            .await;
    }
    // Every send is acknowledged: the sender's gateway is never touched.
    while acked.len() < n {
        let sent = sender.recv_type("sent").await;
        acked.insert(sent["id"].as_str().unwrap().to_owned());
    }
    acked
}

/// The recipient: reads frames, keeps messages, recovers on `resync`; on a
/// lost connection it reconnects to `fallback` and recovers. Counts resyncs.
struct Recipient {
    inbox: Inbox,
    resyncs: usize,
    reconnects: usize,
}

async fn run_recipient(
    state: Arc<Mutex<Recipient>>,
    mut ws: WsClient,
    base: Vec<String>,
    fallback_port: u16,
    token: String,
    want: Arc<Mutex<Option<HashSet<String>>>>,
) {
    let http = reqwest::Client::new();
    let mut base_now = base[0].clone();
    loop {
        if let Some(want) = want.lock().await.as_ref() {
            let s = state.lock().await;
            if want.iter().all(|id| s.inbox.ids.contains(id)) {
                return;
            }
        }
        match ws.next_frame(Duration::from_millis(300)).await {
            Ok(frame) => {
                let mut s = state.lock().await;
                match frame["type"].as_str() {
                    Some("message") => {
                        s.inbox.add(&frame, true);
                    }
                    Some("resync") => {
                        s.resyncs += 1;
                        s.inbox
                            .recover(&http, &base_now, &token)
                            .await
                            .expect("recovery");
                    }
                    _ => {}
                }
            }
            Err(WsEnd::Error(e)) if e == "timed out" => {}
            Err(_) => {
                // The gateway is gone: another replica, and the recovery that
                // runs on every reconnect.
                let (fresh, offline) = WsClient::connect_ready(fallback_port, &token).await;
                ws = fresh;
                base_now = base[1].clone();
                let mut s = state.lock().await;
                s.reconnects += 1;
                for m in offline["messages"].as_array().unwrap() {
                    s.inbox.add(m, true);
                }
                s.inbox
                    .recover(&http, &base_now, &token)
                    .await
                    .expect("recovery");
            }
        }
    }
}

/// Runs one scenario: alice on gateway 0 sends `n` DMs to bob on gateway 1;
/// `fault` strikes partway. Returns (acked, bob's state).
async fn scenario(
    n: usize,
    fault: impl AsyncFnOnce(&Stack),
) -> (HashSet<String>, Recipient, Stack) {
    let stack = Stack::start(StackOptions::default()).await;
    let alice = user(&stack, 0, "alice").await;
    let bob = user(&stack, 1, "bob").await;
    let (mut a, _) = WsClient::connect_ready(stack.gateway_ports[0], &alice).await;
    let (b, _) = WsClient::connect_ready(stack.gateway_ports[1], &bob).await;

    let state = Arc::new(Mutex::new(Recipient {
        inbox: Inbox::default(),
        resyncs: 0,
        reconnects: 0,
    }));
    let want = Arc::new(Mutex::new(None));
    let mut reader = tokio::spawn(run_recipient(
        state.clone(),
        b,
        vec![stack.gateway_url(1, ""), stack.gateway_url(0, "")],
        stack.gateway_ports[0],
        bob.clone(),
        want.clone(),
    ));
    let acked = send_dms(&mut a, "user:bob", n, 15, n / 3, async || {
        fault(&stack).await
    })
    .await;
    *want.lock().await = Some(acked.clone());
    // Recovery must finish by itself; the deadline only bounds a failure.
    if tokio::time::timeout(Duration::from_secs(30), &mut reader)
        .await
        .is_err()
    {
        reader.abort();
        let _ = reader.await;
    }
    let state = Arc::try_unwrap(state)
        .ok()
        .map(Mutex::into_inner)
        .unwrap_or_else(|| panic!("the recipient task still runs"));
    (acked, state, stack)
}

fn report(what: &str, acked: &HashSet<String>, bob: &Recipient) -> Vec<String> {
    let missing: Vec<String> = acked
        .iter()
        .filter(|id| !bob.inbox.ids.contains(*id))
        .cloned()
        .collect();
    println!(
        "{what}: {} acked; bob has {} ({} live, {} recovered, {} duplicate frames), {} missing; {} resync frames, {} reconnects",
        acked.len(),
        bob.inbox.ids.len(),
        bob.inbox.live,
        bob.inbox.recovered,
        bob.inbox.duplicates,
        missing.len(),
        bob.resyncs,
        bob.reconnects
    );
    missing
}

#[tokio::test]
async fn killing_only_the_recipients_subscriber_connection_loses_nothing() {
    let (acked, bob, _stack) = scenario(150, async |stack: &Stack| {
        assert!(
            stack.kill_pubsub_connection(1).await,
            "gateway 1 has a pub/sub connection"
        );
    })
    .await;
    let missing = report("pub/sub connection killed", &acked, &bob);
    assert!(missing.is_empty(), "never reached bob: {missing:?}");
    assert!(bob.resyncs >= 1, "the gateway told its sockets to resync");
    assert_eq!(bob.reconnects, 0, "bob stayed connected");
}

#[tokio::test]
async fn killing_the_recipients_gateway_loses_nothing() {
    let (acked, bob, _stack) = scenario(90, async |stack: &Stack| {
        stack.gateways[1].signal("KILL");
    })
    .await;
    let missing = report("recipient's gateway killed", &acked, &bob);
    assert!(missing.is_empty(), "never reached bob: {missing:?}");
    assert_eq!(bob.reconnects, 1, "bob moved to the other gateway");
}

/// The conversation list names every conversation with its last seq.
#[tokio::test]
async fn the_conversation_list_has_rooms_and_dms_with_their_last_seq() {
    let stack = Stack::start(StackOptions {
        gateways: 1,
        workers: 1,
        ..StackOptions::default()
    })
    .await;
    let alice = user(&stack, 0, "alice").await;
    let bob = user(&stack, 0, "bob").await;
    let http = reqwest::Client::new();
    let r = http
        .post(stack.gateway_url(0, "/api/rooms"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({"name": "general"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (mut a, _) = WsClient::connect_ready(stack.gateway_ports[0], &alice).await;
    for (i, to) in ["user:bob", "user:bob", "room:general"].iter().enumerate() {
        a.send_json(&send(&format!("c{i}"), to, "hi")).await;
        a.recv_type("sent").await;
    }
    let list = |token: String| {
        let http = http.clone();
        let url = stack.gateway_url(0, "/api/conversations");
        async move {
            let v: Value = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["id"].as_str().unwrap().to_owned(),
                        c["last_seq"].as_u64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    // Most recently active first: the room's message came last.
    assert_eq!(
        list(alice).await,
        [
            ("room:general".to_owned(), 1),
            ("dm:alice:bob".to_owned(), 2)
        ]
    );
    // The DM is bob's from its first message, though he never sent one.
    assert_eq!(list(bob).await, [("dm:alice:bob".to_owned(), 2)]);
}
