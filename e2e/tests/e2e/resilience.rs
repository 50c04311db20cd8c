//! Tests that try to break the guarantees: load across replicas, kill -9 of a
//! worker and of a gateway, and Redis connections dropped under traffic.

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use e2e::{Stack, StackOptions};
use serde_json::{Value, json};

use crate::{
    chat_client::{ChatClient, Transport},
    helpers::user,
};

fn fast_gateways() -> Vec<(&'static str, String)> {
    vec![
        ("RATE_PER_SEC", "5000".into()),
        ("ACCOUNT_MESSAGES_PER_SEC", "0".into()),
        ("RATE_BURST", "5000".into()),
    ]
}

/// The conversation's whole history through gateway `gateway`'s REST API.
async fn history(stack: &Stack, gateway: usize, token: &str, conversation: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let v: Value = http
            .get(stack.gateway_url(
                gateway,
                &format!("/api/conversations/{conversation}/messages?after={after}&limit=200"),
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = v["messages"].as_array().unwrap().clone();
        if let Some(last) = page.last() {
            after = last["seq"].as_u64().unwrap();
        }
        all.extend(page);
        if v["has_more"] != true {
            return all;
        }
    }
}

/// Every client_id once, seqs 1..=n with no gap, ids matching the acks.
fn assert_exactly_once(
    history: &[Value],
    acked: &HashMap<String, (String, u64)>,
    want: std::ops::RangeInclusive<u64>,
) {
    let n = want.clone().count();
    let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, want.collect::<Vec<_>>(), "gap-free seq, each once");
    let client_ids: BTreeSet<&str> = history
        .iter()
        .map(|m| m["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(client_ids.len(), n, "one message per client_id");
    for m in history {
        let (id, seq) = &acked[m["client_id"].as_str().unwrap()];
        assert_eq!(
            (m["id"].as_str().unwrap(), m["seq"].as_u64().unwrap()),
            (id.as_str(), *seq)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_room_messages_reach_ten_members_on_two_gateways_exactly_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(user(&stack, i % 2, &format!("member{i}")).await);
    }
    let http = reqwest::Client::new();
    let r = http
        .post(stack.gateway_url(0, "/api/rooms"))
        .bearer_auth(&tokens[0])
        .json(&json!({"name": "load"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for t in &tokens[1..] {
        let r = http
            .post(stack.gateway_url(1, "/api/rooms/load/join"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // The nine joins take seqs 1 to 9 before anyone sends.
    let joins =
        testkit::wait::eventually("the nine join events", Duration::from_secs(20), || async {
            let h = history(&stack, 0, &tokens[0], "room:load").await;
            (h.len() == 9).then_some(h)
        })
        .await;
    assert!(joins.iter().all(|m| m["member"]["action"] == "join"));
    let mut clients = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        clients
            .push(ChatClient::connect(&format!("member{i}"), t, stack.gateway_ports[i % 2]).await);
    }
    // Each member sends 100, paced under the default rate limit, all at once.
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                for k in 0..100 {
                    c.send(&format!("m{i}-{k}"), "room:load", &format!("{i}:{k}"))
                        .await;
                    c.pump(Duration::from_millis(60)).await;
                }
                c.settle(Duration::from_secs(60)).await;
                let end = tokio::time::Instant::now() + Duration::from_secs(60);
                while c.received.len() < 900 && tokio::time::Instant::now() < end {
                    c.pump(Duration::from_millis(200)).await;
                }
                c
            })
        })
        .collect();
    let mut seq_of: HashMap<String, u64> = HashMap::new();
    let mut all_acked = HashMap::new();
    for task in tasks {
        let c = task.await.unwrap();
        assert_eq!(
            c.received.len(),
            900,
            "{} got every other member's message",
            c.user
        );
        assert_eq!(c.message_frames, 900, "{} got each exactly once", c.user);
        for m in c.received.values() {
            let seq = m["seq"].as_u64().unwrap();
            let id = m["id"].as_str().unwrap().to_owned();
            assert_eq!(*seq_of.entry(id).or_insert(seq), seq, "one seq per message");
        }
        all_acked.extend(c.acked);
    }
    let mut seqs: Vec<u64> = seq_of.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (10..=1009).collect::<Vec<_>>(),
        "seq gap-free across the room"
    );
    let mut history = history(&stack, 0, &tokens[0], "room:load").await;
    assert_eq!(history.drain(..9).collect::<Vec<_>>(), joins);
    assert_exactly_once(&history, &all_acked, 10..=1009);
}

/// What goes wrong while alice floods bob with DMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// kill -9 of chat-service worker 0, a quarter of the way in.
    KillWorker,
    /// kill -9 of gateway 0 (alice's), a third of the way in.
    KillGateway,
    /// Every Redis connection of the stack dropped, at a third and two thirds.
    DropRedis,
}

/// alice (gateway 0) sends `n` DMs to bob (gateway 1) at full speed while
/// `fault` strikes; she reconnects to gateway 1 if hers dies. Returns both
/// clients once every message is acknowledged.
async fn flood(stack: &Stack, n: usize, fault: Fault) -> (ChatClient, ChatClient, String) {
    flood_on(stack, n, fault, Transport::WebSocket).await
}

/// [`flood`], with both clients on `transport`. On a stream, alice's POSTs
/// go to both gateways in turn; after gateway 0 dies, to gateway 1 only.
async fn flood_on(
    stack: &Stack,
    n: usize,
    fault: Fault,
    transport: Transport,
) -> (ChatClient, ChatClient, String) {
    let alice_token = user(stack, 0, "alice").await;
    let bob_token = user(stack, 1, "bob").await;
    let ports = stack.gateway_ports.clone();
    let alive = match fault {
        Fault::KillGateway => vec![ports[1]],
        _ => ports.clone(),
    };
    let mut alice =
        ChatClient::connect_with(transport, &ports, "alice", &alice_token, ports[0]).await;
    let mut bob = ChatClient::connect_with(transport, &alive, "bob", &bob_token, ports[1]).await;
    for k in 0..n {
        alice
            .send(&format!("k{k}"), "user:bob", &format!("message {k}"))
            .await;
        if k % 20 == 19 {
            alice.pump(Duration::from_millis(20)).await;
            bob.pump(Duration::from_millis(10)).await;
        }
        match fault {
            Fault::KillWorker if k == n / 4 => stack.workers[0].signal("KILL"),
            Fault::KillGateway if k == n / 3 => stack.gateways[0].signal("KILL"),
            Fault::DropRedis if k == n / 3 || k == 2 * n / 3 => {
                let killed = stack.kill_redis_connections().await;
                assert!(killed >= 6, "killed only {killed} connections");
            }
            _ => {}
        }
        if !alice.connected() {
            // Her gateway is gone: reconnect to the other one, re-send.
            alice.use_gateways(&alive);
            alice.reconnect(stack.gateway_ports[1]).await;
        }
    }
    alice.pump(Duration::from_millis(100)).await;
    if !alice.connected() {
        alice.use_gateways(&alive);
        alice.reconnect(stack.gateway_ports[1]).await;
    }
    alice.settle(Duration::from_secs(60)).await;
    (alice, bob, alice_token)
}

/// Pumps bob until he has `n` distinct messages or 30 s pass.
async fn receive_all(bob: &mut ChatClient, n: usize) {
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while bob.received.len() < n && tokio::time::Instant::now() < end {
        bob.pump(Duration::from_millis(200)).await;
    }
}

fn fast_stack() -> StackOptions {
    StackOptions {
        gateway_env: fast_gateways(),
        ..StackOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_mid_stream_loses_nothing_acknowledged() {
    const N: usize = 400;
    let stack = Stack::start(fast_stack()).await;
    let (alice, mut bob, token) = flood(&stack, N, Fault::KillWorker).await;
    receive_all(&mut bob, N).await;
    let acked: BTreeSet<&str> = alice.acked.values().map(|(id, _)| id.as_str()).collect();
    let got: BTreeSet<&str> = bob.received.keys().map(String::as_str).collect();
    assert_eq!(acked.len(), N);
    assert!(
        acked.is_subset(&got),
        "bob misses {} acknowledged messages",
        acked.difference(&got).count()
    );
    assert_exactly_once(
        &history(&stack, 0, &token, "dm:alice:bob").await,
        &alice.acked,
        1..=N as u64,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_gateway_clients_reconnect_resend_and_end_exactly_once() {
    const N: usize = 300;
    let stack = Stack::start(fast_stack()).await;
    // carol is on the gateway that dies and does not come back.
    let carol_token = user(&stack, 0, "carol").await;
    let _carol = ChatClient::connect("carol", &carol_token, stack.gateway_ports[0]).await;
    let (alice, mut bob, token) = flood(&stack, N, Fault::KillGateway).await;
    receive_all(&mut bob, N).await;
    assert_eq!(
        bob.received.len(),
        N,
        "bob got every message (after dedup by id)"
    );
    assert_exactly_once(
        &history(&stack, 1, &token, "dm:alice:bob").await,
        &alice.acked,
        1..=N as u64,
    );

    // The dead gateway's users fall offline within the presence TTL (15 s).
    let http = reqwest::Client::new();
    let r = http
        .post(stack.gateway_url(1, "/api/rooms"))
        .bearer_auth(&carol_token)
        .json(&json!({"name": "probe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let members = testkit::eventually("carol to fall offline", Duration::from_secs(40), || {
        let http = http.clone();
        let url = stack.gateway_url(1, "/api/rooms/probe/members");
        let token = carol_token.clone();
        async move {
            let v: Value = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["members"][0]["online"] == false).then_some(v)
        }
    })
    .await;
    assert_eq!(members["members"][0]["username"], "carol");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_redis_connections_heal_without_losing_acknowledged_messages() {
    const N: usize = 300;
    let stack = Stack::start(fast_stack()).await;
    let (mut alice, mut bob, token) = flood(&stack, N, Fault::DropRedis).await;
    assert_exactly_once(
        &history(&stack, 0, &token, "dm:alice:bob").await,
        &alice.acked,
        1..=N as u64,
    );

    // The gateways re-subscribed: a message sent now arrives live.
    stack.wait_ready().await;
    alice.send("after", "user:bob", "still there?").await;
    alice.settle(Duration::from_secs(30)).await;
    let (id, _) = alice.acked["after"].clone();
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    while !bob.received.contains_key(&id) {
        assert!(
            tokio::time::Instant::now() < end,
            "bob's gateway never re-subscribed"
        );
        bob.pump(Duration::from_millis(200)).await;
    }
}

/// The same faults with alice and bob on `transport` (frames POSTed to
/// both gateways in turn; long-polls too): nothing acknowledged is lost,
/// nothing is stored twice.
async fn faults_on(transport: Transport) {
    const N: usize = 200;
    for fault in [Fault::KillWorker, Fault::KillGateway] {
        let stack = Stack::start(fast_stack()).await;
        let (alice, mut bob, token) = flood_on(&stack, N, fault, transport).await;
        receive_all(&mut bob, N).await;
        let acked: BTreeSet<&str> = alice.acked.values().map(|(id, _)| id.as_str()).collect();
        let got: BTreeSet<&str> = bob.received.keys().map(String::as_str).collect();
        assert_eq!(acked.len(), N);
        assert!(
            acked.is_subset(&got),
            "{transport:?}, {fault:?}: bob misses {} acknowledged messages",
            acked.difference(&got).count()
        );
        assert_exactly_once(
            &history(&stack, 1, &token, "dm:alice:bob").await,
            &alice.acked,
            1..=N as u64,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_streams_a_killed_worker_or_gateway_loses_nothing_acknowledged() {
    faults_on(Transport::Stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_long_polls_a_killed_worker_or_gateway_loses_nothing_acknowledged() {
    faults_on(Transport::LongPoll).await;
}
