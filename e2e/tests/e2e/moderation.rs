//! Moderation takes effect everywhere at once: a member sending from a
//! socket on each of two gateways, with two workers sharing the ingress,
//! is kicked over HTTP. Every send transmitted after the kick's answer is
//! refused, on both sockets, whichever worker handles it; the first
//! refusal comes well within a second of the request; and the room's
//! messages stop reaching the kicked member.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use e2e::{Stack, StackOptions};
use serde_json::{Value, json};
use testkit::WsClient;
use tokio::sync::Mutex;

use crate::helpers::{send, user};

/// A send: when it left, and how it was answered (`sent` or an error code).
struct Outcome {
    at: Instant,
    answer: Option<(String, Instant)>,
}

/// Sends to `room` every 10 ms until `stop`, reading answers in between.
async fn flood(mut ws: WsClient, tag: &'static str, stop: Arc<Mutex<bool>>) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut k = 0;
    let mut quiet_since = None;
    loop {
        if !*stop.lock().await {
            ws.send_json(&send(&format!("{tag}-{k}"), "room:floor", "spam"))
                .await;
            outcomes.push(Outcome {
                at: Instant::now(),
                answer: None,
            });
            k += 1;
        } else if outcomes.iter().all(|o| o.answer.is_some())
            || quiet_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(10)
        {
            return outcomes;
        }
        let end = Instant::now() + Duration::from_millis(10);
        while let Ok(frame) = ws
            .next_frame(end.saturating_duration_since(Instant::now()))
            .await
        {
            let answer = match frame["type"].as_str() {
                Some("sent") => ("sent".to_owned(), frame["client_id"].clone()),
                Some("error") => (
                    frame["code"].as_str().unwrap_or_default().to_owned(),
                    frame["ref"].clone(),
                ),
                _ => continue,
            };
            let index: usize = answer
                .1
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            outcomes[index].answer = Some((answer.0, Instant::now()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_holds_on_every_gateway_and_worker_within_a_second() {
    let stack = Stack::start(StackOptions {
        gateway_env: vec![
            ("RATE_PER_SEC", "1000".into()),
            ("RATE_BURST", "1000".into()),
            ("ACCOUNT_MESSAGES_PER_SEC", "0".into()),
        ],
        ..StackOptions::default()
    })
    .await;
    let owner = user(&stack, 0, "owner").await;
    let troll = user(&stack, 1, "troll").await;
    let http = reqwest::Client::new();
    let call = |gw: usize, path: &str, token: &str, body: Value| {
        http.post(stack.gateway_url(gw, path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    assert_eq!(
        call(0, "/api/rooms", &owner, json!({"name": "floor"}))
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        call(1, "/api/rooms/floor/join", &troll, json!({}))
            .await
            .unwrap()
            .status(),
        200
    );
    let (mut watcher, _) = WsClient::connect_ready(stack.gateway_ports[0], &owner).await;

    let stop = Arc::new(Mutex::new(false));
    let mut floods = Vec::new();
    for (gw, tag) in [(0, "a"), (1, "b")] {
        let (ws, _) = WsClient::connect_ready(stack.gateway_ports[gw], &troll).await;
        floods.push(tokio::spawn(flood(ws, tag, stop.clone())));
    }
    // Let both sockets get sends through first.
    let end = Instant::now() + Duration::from_secs(10);
    let mut seen = 0;
    while seen < 10 {
        assert!(Instant::now() < end, "the troll's messages never arrived");
        if let Ok(f) = watcher.next_frame(Duration::from_millis(200)).await
            && f["type"] == "message"
        {
            seen += 1;
        }
    }

    let asked = Instant::now();
    let r = call(
        1,
        "/api/rooms/floor/kick",
        &owner,
        json!({"user": "troll", "reason": "flood"}),
    )
    .await
    .unwrap();
    let answered = Instant::now();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    *stop.lock().await = true;
    let mut first_refusal = None;
    let (mut accepted_after, mut refused) = (0, 0);
    for f in floods {
        for o in f.await.unwrap() {
            let (answer, at) = o.answer.expect("every send is answered");
            match answer.as_str() {
                "sent" if o.at > answered => accepted_after += 1,
                "sent" => {}
                "forbidden" => {
                    refused += 1;
                    first_refusal = Some(first_refusal.map_or(at, |f: Instant| f.min(at)));
                }
                other => panic!("unexpected answer {other}"),
            }
        }
    }
    assert_eq!(
        accepted_after, 0,
        "sends transmitted after the kick's answer were accepted"
    );
    assert!(refused > 10, "only {refused} refusals");
    let delay = first_refusal.unwrap().duration_since(asked);
    println!(
        "kick: answered in {:?}, first refusal {:?} after the request",
        answered - asked,
        delay
    );
    assert!(
        delay < Duration::from_secs(1),
        "the kick took {delay:?} to hold"
    );

    // The room's traffic no longer reaches the kicked member.
    let (mut t, _) = WsClient::connect_ready(stack.gateway_ports[1], &troll).await;
    watcher
        .send_json(&send("w1", "room:floor", "after the kick"))
        .await;
    watcher.recv_type("sent").await;
    t.send_json(&json!({"type": "ping"})).await;
    loop {
        let f = t.recv().await;
        assert_ne!(f["type"], "message", "a kicked member got {f}");
        if f["type"] == "pong" {
            break;
        }
    }
}
