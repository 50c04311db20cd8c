//! BATCH_LINGER_MS: after a batch that fanned out widely, a short read waits
//! for more entries; after a narrow one (DMs, small rooms) it does not,
//! unless NARROW_BATCH_LINGER_MS is set.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::helpers::{TestEnv, next_of, spawn_env};

const LINGER_MS: u64 = 3_000;
/// Between two sends: well inside the linger window, and ample time for a
/// worker that does not linger to take the first send alone. The second send
/// only shares the first one's batch if the worker waited for it.
const GAP: Duration = Duration::from_millis(500);

/// A room whose members are all online: one more than the wide threshold.
async fn wide_room(env: &TestEnv) -> Vec<String> {
    let names: Vec<String> = (0..=chat_service::worker::WIDE_FANOUT)
        .map(|i| format!("member{i}"))
        .collect();
    let mut registering = tokio::task::JoinSet::new();
    for name in names.clone() {
        let mut users = env.users.clone();
        registering.spawn(async move {
            users
                .register(proto::user::v1::RegisterRequest {
                    username: name,
                    password: "password123".into(),
                    display_name: None,
                })
                .await
                .unwrap()
        });
    }
    registering.join_all().await;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    env.room("big", &refs).await;
    env.gateway_online(&refs).await;
    names
}

async fn worker(env: &TestEnv) {
    worker_lingering_after_narrow(env, 0).await;
}

async fn worker_lingering_after_narrow(env: &TestEnv, narrow_ms: u64) {
    let mut config = env.worker_config("w1");
    config.batch_linger_ms = LINGER_MS;
    config.narrow_batch_linger_ms = narrow_ms;
    env.spawn_worker(config).await;
}

/// The pub/sub payload number that carried the `message` frame of `body`.
async fn payload_of(rx: &mut UnboundedReceiver<Value>, body: &str) -> u64 {
    loop {
        let d = next_of(rx, "message").await;
        if d["frame"]["body"] == body {
            return d["payload"].as_u64().unwrap();
        }
    }
}

/// Sends one message to `to` and waits for it (it sets the worker's idea of
/// the last batch), then two more `GAP` apart; returns the pub/sub payload
/// numbers of those two.
async fn payloads_of_two_sends(
    env: &TestEnv,
    rx: &mut UnboundedReceiver<Value>,
    senders: [&str; 2],
    to: &str,
) -> (u64, u64) {
    env.xadd(senders[0], 1, "first", to, "first").await;
    payload_of(rx, "first").await;
    env.xadd(senders[0], 1, "a", to, "one").await;
    tokio::time::sleep(GAP).await;
    env.xadd(senders[1], 2, "b", to, "two").await;
    (payload_of(rx, "one").await, payload_of(rx, "two").await)
}

#[tokio::test]
async fn after_a_wide_fan_out_a_short_read_lingers() {
    let env = spawn_env().await;
    wide_room(&env).await;
    let mut rx = env.subscribe().await;
    worker(&env).await;
    let (one, two) = payloads_of_two_sends(&env, &mut rx, ["member0", "member1"], "room:big").await;
    assert_eq!(one, two, "both sends in one batch, one publish");
}

/// alice and bob, online on the test gateway, whose deliveries `rx` gets.
async fn online_pair(env: &TestEnv) -> UnboundedReceiver<Value> {
    for u in ["alice", "bob"] {
        env.user(u).await;
    }
    env.gateway_online(&["alice", "bob"]).await;
    env.subscribe().await
}

#[tokio::test]
async fn direct_messages_never_wait() {
    let env = spawn_env().await;
    let mut rx = online_pair(&env).await;
    worker(&env).await;
    let (one, two) = payloads_of_two_sends(&env, &mut rx, ["alice", "alice"], "user:bob").await;
    assert_ne!(one, two, "the first DM went out without waiting");
}

#[tokio::test]
async fn with_a_narrow_linger_direct_messages_share_a_batch() {
    let env = spawn_env().await;
    let mut rx = online_pair(&env).await;
    worker_lingering_after_narrow(&env, LINGER_MS).await;
    let (one, two) = payloads_of_two_sends(&env, &mut rx, ["alice", "alice"], "user:bob").await;
    assert_eq!(one, two, "both DMs in one batch, one publish");
}
