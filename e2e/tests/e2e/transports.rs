//! The delivery path on every transport: a WebSocket, a stream (events,
//! POSTs to both gateways in turn) and long-polling (polls and POSTs to both
//! gateways in turn) carry the same protocol, so the same conversation
//! plays out on each: the offline handshake, a DM across gateways, a room
//! of three, an edit and a delete reaching every member live. Kills and
//! Redis faults on each transport are in `resilience.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use e2e::{Stack, StackOptions};

use crate::{
    chat_client::{ChatClient, Transport},
    helpers::user,
};

/// The message or event `client_id` produced, as `c` received it.
fn got<'a>(c: &'a ChatClient, client_id: &str) -> Option<&'a Value> {
    c.received.values().find(|m| m["client_id"] == client_id)
}

async fn post(stack: &Stack, gateway: usize, token: &str, path: &str, body: Value) -> StatusCode {
    reqwest::Client::new()
        .post(stack.gateway_url(gateway, path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("a call")
        .status()
}

async fn conversation_on(transport: Transport) {
    let stack = Stack::start(StackOptions::default()).await;
    let ports = stack.gateway_ports.clone();
    let alice_t = user(&stack, 0, "alice").await;
    let bob_t = user(&stack, 1, "bob").await;
    let carol_t = user(&stack, 0, "carol").await;
    let label = format!("{transport:?}");

    // Offline handshake: what came while bob was away is in his `offline`
    // frame, and acking it empties his queue.
    let mut alice = ChatClient::connect_with(transport, &ports, "alice", &alice_t, ports[0]).await;
    alice.send("away", "user:bob", "while you were out").await;
    alice.settle(Duration::from_secs(20)).await;
    let mut bob = ChatClient::connect_with(transport, &ports, "bob", &bob_t, ports[1]).await;
    assert!(
        got(&bob, "away").is_some(),
        "{label}: the offline batch carries the DM: {:?}",
        bob.received
    );
    // The ack takes effect on its own time: a later connection's batch
    // lacks the DM within a deadline.
    testkit::eventually(
        "the acked batch to leave the queue",
        Duration::from_secs(10),
        || {
            let (ports, token) = (ports.clone(), bob_t.clone());
            async move {
                let mut again =
                    ChatClient::connect_with(transport, &ports, "bob", &token, ports[0]).await;
                again.pump(Duration::from_millis(100)).await;
                got(&again, "away").is_none().then_some(())
            }
        },
    )
    .await;

    // A live DM across gateways, both ways.
    alice.send("d1", "user:bob", "hi bob").await;
    bob.pump_until("alice's DM", |c| got(c, "d1").is_some())
        .await;
    alice.settle(Duration::from_secs(20)).await;
    bob.send("d2", "user:alice", "hi alice").await;
    alice
        .pump_until("bob's DM", |c| got(c, "d2").is_some())
        .await;
    assert_eq!(got(&alice, "d2").unwrap()["body"], "hi alice", "{label}");

    // A room of three on two gateways.
    assert_eq!(
        post(&stack, 0, &alice_t, "/api/rooms", json!({"name": "ops"})).await,
        StatusCode::CREATED
    );
    for (gw, t) in [(1, &bob_t), (0, &carol_t)] {
        assert_eq!(
            post(&stack, gw, t, "/api/rooms/ops/join", json!({})).await,
            StatusCode::OK
        );
    }
    let mut carol = ChatClient::connect_with(transport, &ports, "carol", &carol_t, ports[0]).await;
    alice.send("r1", "room:ops", "standup in 5").await;
    alice.settle(Duration::from_secs(20)).await;
    let (_, room_seq) = alice.acked["r1"].clone();
    for c in [&mut bob, &mut carol] {
        c.pump_until("the room message", |c| got(c, "r1").is_some())
            .await;
        assert_eq!(got(c, "r1").unwrap()["conversation"], "room:ops", "{label}");
    }

    // An edit of the DM and a delete of the room message reach every member
    // live, as events with their target.
    let (_, dm_seq) = alice.acked["d1"].clone();
    alice
        .send_frame(json!({"type": "edit", "client_id": "e1", "conversation": "dm:alice:bob", "seq": dm_seq, "body": "hi bob!"}))
        .await;
    alice
        .send_frame(json!({"type": "delete", "client_id": "x1", "conversation": "room:ops", "seq": room_seq}))
        .await;
    alice
        .pump_until("both acks", |c| {
            c.acked.contains_key("e1") && c.acked.contains_key("x1")
        })
        .await;
    bob.pump_until("the edit and the delete", |c| {
        got(c, "e1").is_some() && got(c, "x1").is_some()
    })
    .await;
    let edit = got(&bob, "e1").unwrap();
    assert_eq!(
        (&edit["kind"], &edit["target_seq"], &edit["body"]),
        (&json!("edit"), &json!(dm_seq), &json!("hi bob!")),
        "{label}"
    );
    carol
        .pump_until("the delete", |c| got(c, "x1").is_some())
        .await;
    let delete = got(&carol, "x1").unwrap();
    assert_eq!(
        (&delete["kind"], &delete["target_seq"]),
        (&json!("delete"), &json!(room_seq)),
        "{label}"
    );
    assert_eq!(
        got(&carol, "e1"),
        None,
        "{label}: carol is no party to the DM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_plays_out_over_websockets() {
    conversation_on(Transport::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_plays_out_over_streams() {
    conversation_on(Transport::Stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_plays_out_over_long_polling() {
    conversation_on(Transport::LongPoll).await;
}

/// A long-poll connection whose gateway is killed: its polls on the other
/// gateway answer 404 within seconds (its queue would otherwise wait out its
/// expiry, minutes), so the client reconnects and finds what was sent
/// meanwhile in its offline batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_learns_at_once_that_its_gateway_died() {
    let stack = Stack::start(StackOptions::default()).await;
    let ports = stack.gateway_ports.clone();
    let alice_t = user(&stack, 1, "alice").await;
    let bob_t = user(&stack, 0, "bob").await;
    let mut bob =
        ChatClient::connect_with(Transport::LongPoll, &ports, "bob", &bob_t, ports[0]).await;
    let mut alice = ChatClient::connect("alice", &alice_t, ports[1]).await;
    stack.gateways[0].signal("KILL");
    let end = tokio::time::Instant::now() + Duration::from_secs(8);
    while bob.pump(Duration::from_millis(200)).await {
        assert!(
            tokio::time::Instant::now() < end,
            "bob's polls went on for 8 s after his gateway died"
        );
    }
    alice.send("gone", "user:bob", "are you there?").await;
    alice.settle(Duration::from_secs(20)).await;
    bob.use_gateways(&ports[1..]);
    bob.reconnect(ports[1]).await;
    bob.pump_until("the DM sent while he was away", |c| {
        got(c, "gone").is_some()
    })
    .await;
}
