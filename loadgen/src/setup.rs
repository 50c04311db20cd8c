//! Users, tokens and rooms, through the gateways' HTTP API.

use anyhow::{Context, bail};
use futures::{StreamExt, stream};
use serde_json::{Value, json};

pub const PASSWORD: &str = "loadgen-password";

/// Registers and logs in `names` (a few at a time: hashing is deliberately
/// slow); returns their tokens in order.
pub async fn users(
    http: &reqwest::Client,
    gateway: &str,
    names: &[String],
) -> anyhow::Result<Vec<String>> {
    let results: Vec<anyhow::Result<String>> = stream::iter(names.iter().cloned())
        .map(|name| async move { register(http, gateway, &name).await })
        .buffered(4)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn register(http: &reqwest::Client, gateway: &str, name: &str) -> anyhow::Result<String> {
    let body = json!({"username": name, "password": PASSWORD});
    let r = http
        .post(format!("{gateway}/api/register"))
        .json(&body)
        .send()
        .await?;
    if !(r.status().is_success() || r.status() == 409) {
        bail!("register {name}: {} {}", r.status(), r.text().await?);
    }
    let r = http
        .post(format!("{gateway}/api/login"))
        .json(&body)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login {name}: {} {}", r.status(), r.text().await?);
    }
    let v: Value = r.json().await?;
    Ok(v["token"].as_str().context("token")?.to_owned())
}

/// Creates `room` as the first token's user and joins everyone else.
pub async fn room(
    http: &reqwest::Client,
    gateway: &str,
    room: &str,
    tokens: &[String],
) -> anyhow::Result<()> {
    let r = http
        .post(format!("{gateway}/api/rooms"))
        .bearer_auth(&tokens[0])
        .json(&json!({"name": room}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("create room: {} {}", r.status(), r.text().await?);
    }
    let joins: Vec<anyhow::Result<()>> = stream::iter(tokens[1..].iter())
        .map(|t| async move {
            let r = http
                .post(format!("{gateway}/api/rooms/{room}/join"))
                .bearer_auth(t)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("join: {}", r.status());
            }
            Ok(())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    joins.into_iter().collect()
}

/// The WebSocket URL of a gateway's HTTP base.
pub fn ws_url(gateway: &str, token: &str) -> String {
    let base = gateway
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    format!("{base}/ws?token={token}")
}
