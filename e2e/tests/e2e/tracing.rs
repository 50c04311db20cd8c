//! One DM, one trace: with OTEL_EXPORTER_OTLP_ENDPOINT set, the sending
//! gateway's `send` span, chat-service's `chat.message`, history-service's
//! `history.append` and the delivering gateway's `gateway.deliver` share a
//! trace id (service_kit::trace), exported over OTLP to a receiver in testkit.

use std::{collections::BTreeSet, time::Duration};

use e2e::{Stack, StackOptions};
use testkit::{WsClient, otlp::Receiver};

use crate::helpers::{send, user};

#[tokio::test]
async fn one_dm_is_one_trace_across_three_services() {
    let receiver = Receiver::start().await;
    let otel = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        // Export within a fraction of a second, not the default 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    let stack = Stack::start(StackOptions {
        gateway_env: otel.clone(),
        worker_env: otel.clone(),
        history_env: otel,
        ..StackOptions::default()
    })
    .await;
    let alice = user(&stack, 0, "alice").await;
    let bob = user(&stack, 1, "bob").await;
    let (mut a, _) = WsClient::connect_ready(stack.gateway_ports[0], &alice).await;
    let (mut b, _) = WsClient::connect_ready(stack.gateway_ports[1], &bob).await;
    a.send_json(&send("t1", "user:bob", "traced")).await;
    a.recv_type("sent").await;
    b.recv_type("message").await;

    let wanted = ["send", "chat.message", "history.append", "gateway.deliver"];
    let trace =
        testkit::wait::eventually("one trace with every hop", Duration::from_secs(20), || {
            let spans = receiver.spans();
            async move {
                let root = spans.iter().find(|s| s.name == "send")?;
                let members: Vec<_> = spans
                    .iter()
                    .filter(|s| s.trace_id == root.trace_id)
                    .collect();
                let names: BTreeSet<&str> = members.iter().map(|s| s.name.as_str()).collect();
                wanted.iter().all(|w| names.contains(w)).then(|| {
                    members
                        .iter()
                        .map(|s| (s.service.clone(), s.name.clone()))
                        .collect::<Vec<_>>()
                })
            }
        })
        .await;
    let services: BTreeSet<&str> = trace.iter().map(|(service, _)| service.as_str()).collect();
    assert!(
        ["gateway", "chat-service", "history-service"]
            .iter()
            .all(|s| services.contains(s)),
        "the trace spans {services:?}: {trace:?}"
    );
}
