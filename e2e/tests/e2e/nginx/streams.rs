//! A stream (server-sent events, frames POSTed) through the production
//! nginx config: events arrive as they are sent (nothing buffers them), the
//! POSTs round-robin over both gateways and still reach the stream, and the
//! ticket in the stream's URL is not logged.

use std::time::Duration;

use e2e::{Stack, StackOptions};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::harness::Nginx;

async fn call(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("a call through nginx");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_stream_flows_through_nginx_and_takes_posts_on_both_gateways() {
    let stack = Stack::start(StackOptions {
        gateways: 2,
        workers: 1,
        ..StackOptions::default()
    })
    .await;
    let nginx = Nginx::start(&stack).await;
    let http = reqwest::Client::new();
    for user in ["nx_alice", "nx_bob"] {
        call(
            &http,
            nginx.url("/api/register"),
            None,
            json!({"username": user, "password": "password123"}),
        )
        .await;
    }
    let login = call(
        &http,
        nginx.url("/api/login"),
        None,
        json!({"username": "nx_alice", "password": "password123"}),
    )
    .await;
    let token = login["token"].as_str().unwrap().to_owned();
    let ticket = call(&http, nginx.url("/api/ws-ticket"), Some(&token), json!({})).await;
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let response = http
        .get(nginx.url(&format!("/api/stream?ticket={ticket}")))
        .send()
        .await
        .expect("the stream through nginx");
    assert_eq!(response.status(), 200, "{}", nginx.logs());
    let mut events = testkit::sse::events(response);
    // Each event as it is sent: a buffering proxy would hold these back
    // until its buffer filled.
    let next = async |events: &mut mpsc::UnboundedReceiver<(String, String)>| {
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s: nothing buffers the stream")
            .expect("the stream is open")
    };
    let (kind, data) = next(&mut events).await;
    assert_eq!(kind, "connection", "{data}");
    let conn = serde_json::from_str::<Value>(&data).unwrap()["conn"]
        .as_str()
        .unwrap()
        .to_owned();
    let hello: Value = serde_json::from_str(&next(&mut events).await.1).unwrap();
    assert_eq!(hello["type"], "hello");
    next(&mut events).await; // offline

    // Four sends, each its own POST: nginx alternates the gateways, and
    // every `sent` comes back on the one stream.
    for i in 0..4 {
        let frame = json!({"type": "send", "client_id": format!("n{i}"), "to": "user:nx_bob", "body": "via nginx"});
        let accepted = call(
            &http,
            nginx.url(&format!("/api/stream/{conn}")),
            Some(&token),
            frame,
        )
        .await;
        assert_eq!(accepted["accepted"], 1);
    }
    let mut acked = Vec::new();
    while acked.len() < 4 {
        let frame: Value = serde_json::from_str(&next(&mut events).await.1).unwrap();
        if frame["type"] == "sent" {
            acked.push(frame["client_id"].as_str().unwrap().to_owned());
        }
    }
    acked.sort();
    assert_eq!(acked, ["n0", "n1", "n2", "n3"]);
    let log = std::fs::read_to_string(nginx.dir.join("access.log")).unwrap_or_default();
    assert!(log.contains("/api/stream"), "the stream is logged: {log}");
    assert!(!log.contains(&ticket), "nginx logged the ticket: {log}");
    for port in &stack.gateway_ports {
        assert!(
            log.contains(&format!("upstream=127.0.0.1:{port} ")),
            "no request went to gateway {port}: {log}"
        );
    }
}
