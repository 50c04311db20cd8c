//! The conversation list under a heavy user: one user with N conversations
//! (rooms it created, each with a message, so every entry has a preview),
//! then `GET /api/conversations` timed back to back, first page and a full
//! 200-entry page. The list is computed from per-conversation state, so its
//! cost grows with the user's conversations, never with their history.

use std::time::Instant;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt, stream};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    cli::{Cli, ListArgs},
    client, setup,
    stats::Latencies,
};

pub async fn run(cli: &Cli, args: &ListArgs) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let gateway = &cli.gateways[0];
    let user = format!("{}_heavy", cli.run);
    let token = setup::users(&http, gateway, std::slice::from_ref(&user))
        .await?
        .remove(0);
    let rooms: Vec<String> = (0..args.conversations)
        .map(|i| format!("{}-{i}", cli.run.replace('_', "-")))
        .collect();
    create_rooms(&http, gateway, &token, &rooms).await?;
    post_to_each(&setup::ws_url(gateway, &token), &rooms).await?;

    crate::hook::phase("start");
    let mut lines = Vec::new();
    for limit in [50, 200] {
        let mut latencies = Latencies::default();
        let mut listed = 0;
        for _ in 0..args.requests {
            let started = Instant::now();
            let r = http
                .get(format!("{gateway}/api/conversations?limit={limit}"))
                .bearer_auth(&token)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("list: {}", r.status());
            }
            let body: serde_json::Value = r.json().await?;
            latencies.record(started.elapsed().as_micros() as u64);
            listed = body["conversations"].as_array().map_or(0, Vec::len);
        }
        lines.push(format!(
            "  limit={limit} ({listed} per page): {}",
            latencies.summary()
        ));
    }
    crate::hook::phase(&format!("end {}", args.requests * 2));
    Ok(format!(
        "list: conversations={} requests={} per page size, one at a time\n{}",
        args.conversations,
        args.requests,
        lines.join("\n")
    ))
}

async fn create_rooms(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    rooms: &[String],
) -> anyhow::Result<()> {
    let created: Vec<anyhow::Result<()>> = stream::iter(rooms)
        .map(|room| async move {
            let r = http
                .post(format!("{gateway}/api/rooms"))
                .bearer_auth(token)
                .json(&json!({"name": room}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("create room {room}: {} {}", r.status(), r.text().await?);
            }
            Ok(())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    created.into_iter().collect()
}

/// One message into each room, each acknowledged before the list is timed.
async fn post_to_each(url: &str, rooms: &[String]) -> anyhow::Result<()> {
    let (mut sink, mut stream) = client::connect(url).await?.split();
    for (i, room) in rooms.iter().enumerate() {
        let frame = json!({"type": "send", "client_id": format!("l{i}"), "to": format!("room:{room}"), "body": format!("hello {room}")});
        sink.send(Message::text(frame.to_string())).await?;
    }
    let mut acked = 0;
    while acked < rooms.len() {
        let next = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
            .await
            .context("acks stopped coming")?;
        match next {
            Some(Ok(Message::Text(t))) if t.as_str().starts_with("{\"type\":\"sent\"") => {
                acked += 1
            }
            Some(Ok(Message::Text(t))) if t.as_str().starts_with("{\"type\":\"error\"") => {
                bail!("send refused: {t}")
            }
            Some(Ok(_)) => {}
            other => bail!("socket ended: {other:?}"),
        }
    }
    Ok(())
}
