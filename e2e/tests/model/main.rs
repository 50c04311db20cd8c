//! A randomized model checker for conversation state, in the spirit of
//! Jepsen's checkers. Clients on both gateways race sends, edits, deletes,
//! exact re-sends, client_id reuse, read markers and reconnects on the same
//! messages, against two workers and several ingress partitions, while a
//! worker is killed, the stack's Redis connections are killed and the link
//! to history-service is cut. Afterwards every conversation is checked
//! against the model implied by what was acknowledged: each client's view
//! (by the documented rule), history over WebSocket, HTTP and gRPC,
//! MongoDB, the conversation list, unread counts and offline queues.
//!
//! MODEL_SECS sets the traffic time (default 60), MODEL_SEED the seed
//! (default 24): the run prints both and how to rerun it.

mod actor;
mod check;
mod faults;
mod view;

use std::{sync::Arc, time::Duration};

use e2e::{Stack, StackOptions};
use serde_json::json;

use crate::actor::{Actor, World};

const USERS: usize = 6;
const ROOM: &str = "model";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_hold_under_races_and_faults() {
    let secs: u64 = env_or("MODEL_SECS", 60);
    let seed: u64 = env_or("MODEL_SEED", 24);
    let rerun = format!(
        "MODEL_SECS={secs} MODEL_SEED={seed} cargo test -p e2e --test model -- --nocapture"
    );
    println!("model checker: seed {seed}, {secs} s of traffic; rerun: {rerun}");
    let mut stack = Stack::start(StackOptions {
        gateways: 2,
        workers: 2,
        history_link: true,
        gateway_env: vec![
            ("RATE_PER_SEC", "200".into()),
            ("RATE_BURST", "200".into()),
            ("ACCOUNT_MESSAGES_PER_SEC", "0".into()),
        ],
        worker_env: vec![("CLAIM_IDLE_MS", "2000".into())],
        ..StackOptions::default()
    })
    .await;
    let users: Vec<String> = (0..USERS).map(|i| format!("model{i}")).collect();
    let mut tokens = Vec::new();
    for u in &users {
        tokens.push(stack.user(0, u).await);
    }
    room(&stack, &tokens).await;
    let world = Arc::new(World::new(stack.gateway_ports.clone(), users.clone(), ROOM));
    let actors: Vec<_> = users
        .iter()
        .zip(&tokens)
        .enumerate()
        .map(|(i, (user, token))| {
            let actor = Actor::new(user, token, world.clone(), seed * 1000 + i as u64);
            tokio::spawn(actor.run(i))
        })
        .collect();
    let struck = faults::run(&mut stack, Duration::from_secs(secs), seed).await;
    world.stop();
    let mut outcomes = Vec::new();
    for a in actors {
        outcomes.push(a.await.expect("client task"));
    }
    let findings = check::run(&stack, &world, &outcomes).await;

    let requests: usize = outcomes.iter().map(|o| o.requests.len()).sum();
    let delivered: usize = outcomes.iter().map(|o| o.delivered).sum();
    let sockets: usize = outcomes.iter().map(|o| o.sockets).sum();
    let resyncs: usize = outcomes.iter().map(|o| o.resyncs).sum();
    println!(
        "model checker: {requests} requests, {} acknowledged, refused {:?}; {} seqs stored in {} conversations; {delivered} deliveries over {sockets} sockets, {resyncs} resyncs; faults: {:?}",
        findings.acked, findings.refused, findings.stored, findings.conversations, struck
    );
    for line in findings.lines.iter().take(40) {
        println!("  counterexample: {line}");
    }
    let all = std::env::temp_dir().join(format!("model-findings-{seed}.txt"));
    if !findings.lines.is_empty() && std::fs::write(&all, findings.lines.join("\n")).is_ok() {
        println!("model checker: every finding is in {}", all.display());
    }
    assert!(findings.acked > 0, "nothing was acknowledged");
    assert!(
        findings.lines.is_empty(),
        "{} findings (first ones above); rerun: {rerun}",
        findings.lines.len()
    );
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The room everybody is in, owned by the first user.
async fn room(stack: &Stack, tokens: &[String]) {
    let http = reqwest::Client::new();
    let r = http
        .post(stack.gateway_url(0, "/api/rooms"))
        .bearer_auth(&tokens[0])
        .json(&json!({ "name": ROOM }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for token in &tokens[1..] {
        let r = http
            .post(stack.gateway_url(0, &format!("/api/rooms/{ROOM}/join")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}
