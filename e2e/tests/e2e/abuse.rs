//! Abuse of the gateway's memory, measured on the real binary: a client that
//! stops reading and asks for big history pages is closed with 4008 before
//! the gateway's resident memory grows past OUTBOUND_QUEUE_BYTES plus slack.

use std::time::Duration;

use e2e::{Stack, StackOptions};
use serde_json::json;
use testkit::WsClient;

use crate::helpers::{send, user};

/// History requests the attacker sends without reading.
const REQUESTS: usize = 100;
/// Bytes queued per socket before 4008 (the gateway's setting in this test).
const QUEUE_BYTES: u64 = 2 << 20;
/// The allowed growth of the gateway's peak resident memory during the
/// attack: the queue bound, a page being built, and allocator slack. Without
/// the byte bound the queue alone would hold ~85 MB (100 pages of ~850 KB).
const ALLOWED_GROWTH_KIB: u64 = 24 * 1024;

#[tokio::test]
async fn a_client_that_stops_reading_big_history_pages_is_closed_within_a_memory_bound() {
    let stack = Stack::start(StackOptions {
        gateways: 1,
        workers: 1,
        gateway_env: vec![
            ("RATE_PER_SEC", "1000".into()),
            ("ACCOUNT_MESSAGES_PER_SEC", "0".into()),
            ("RATE_BURST", "1000".into()),
            ("OUTBOUND_QUEUE_BYTES", QUEUE_BYTES.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let port = stack.gateway_ports[0];
    let alice = user(&stack, 0, "alice").await;
    let mallory = user(&stack, 0, "mallory").await;

    // 200 messages of 4 KiB: one page of history is ~850 KB of JSON.
    let (mut a, _) = WsClient::connect_ready(port, &alice).await;
    let body = "x".repeat(4000);
    for i in 0..200 {
        a.send_json(&send(&format!("c{i}"), "user:mallory", &body))
            .await;
    }
    for _ in 0..200 {
        a.recv_type("sent").await;
    }

    let gateway = &stack.gateways[0];
    let (before, _) = gateway.memory_kib();
    gateway.reset_peak_memory();

    // Mallory asks for the whole conversation, again and again, and never
    // reads a byte.
    let mut m = WsClient::connect_small_buffer(port, &mallory).await;
    let page = json!({
        "type": "history", "ref": "r", "conversation": "dm:alice:mallory", "limit": 200
    })
    .to_string();
    let mut sent = 0;
    for _ in 0..REQUESTS {
        if m.try_send_text(&page).await.is_err() {
            break;
        }
        sent += 1;
    }
    // Let the gateway work through what arrived.
    let settle = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut peak = 0;
    while tokio::time::Instant::now() < settle {
        peak = peak.max(gateway.memory_kib().1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = m.closed_code(Duration::from_secs(20)).await;
    let (_, final_peak) = gateway.memory_kib();
    let peak = peak.max(final_peak);
    let growth = peak.saturating_sub(before);
    println!(
        "outbox abuse: {sent} page requests sent; gateway RSS {before} KiB before, peak {peak} KiB (+{growth} KiB); closed with {code:?}"
    );
    assert_eq!(
        code,
        Some(4008),
        "the non-reading client is a slow consumer"
    );
    assert!(
        growth < ALLOWED_GROWTH_KIB,
        "gateway peak RSS grew {growth} KiB (bound {ALLOWED_GROWTH_KIB} KiB)"
    );

    // The gateway still serves everyone else.
    a.send_json(&send("after", "user:mallory", "still here"))
        .await;
    assert_eq!(a.recv_type("sent").await["client_id"], "after");
}
