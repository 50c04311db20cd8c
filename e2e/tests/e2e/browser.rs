//! The web client in headless Chromium (playwright-core), against the real
//! binaries: two users on two gateways register, DM both ways, talk in a
//! room, recover a message lost on the wire, and reload; their 20-second
//! tokens are refreshed on the live sockets as they go; a device signed out
//! from another loses its connection at once. The browser script is e2e/browser/web_client.mjs.

use std::process::Command;

use e2e::{Stack, StackOptions};

/// Runs `script` (under e2e/browser) against gateways 0 and 1 of `stack`;
/// its stdout must hold `<name>: ok`.
async fn node(
    stack: Stack,
    script: &'static str,
    name: &'static str,
    args: &'static [&'static str],
) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let node_path = std::env::var("PLAYWRIGHT_NODE_PATH").unwrap_or_else(|_| {
        repo.join(".tools/node/node_modules")
            .to_string_lossy()
            .into_owned()
    });
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(repo.join("e2e/browser").join(script))
            .arg(stack.gateway_url(0, ""))
            .arg(stack.gateway_url(1, ""))
            .args(args)
            .env("PLAYWRIGHT_NODE_PATH", node_path)
            .output()
            .map(|o| (o, stack))
    })
    .await
    .unwrap()
    .expect("node runs (scripts/test installs node, Chromium and playwright-core)");
    let (output, _stack) = output;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(&format!("{name}: ok")),
        "browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

/// The gateways refuse WebSockets (as behind a proxy that strips
/// `Upgrade`): the web client falls back to the stream by itself, and two
/// users on two gateways chat. The script is e2e/browser/fallback.mjs.
#[tokio::test]
async fn the_web_client_falls_back_to_streaming_without_websockets() {
    let stack = Stack::start(StackOptions {
        gateway_env: vec![("TRANSPORTS", "stream".into())],
        ..StackOptions::default()
    })
    .await;
    node(stack, "fallback.mjs", "fallback", &["streaming"]).await;
}

/// Only long-polling is served: the web client falls back twice, to it.
#[tokio::test]
async fn the_web_client_falls_back_to_long_polling_last() {
    let stack = Stack::start(StackOptions {
        gateway_env: vec![("TRANSPORTS", "poll".into())],
        ..StackOptions::default()
    })
    .await;
    node(stack, "fallback.mjs", "fallback", &["long-polling"]).await;
}

#[tokio::test]
async fn the_web_client_works_in_a_real_browser() {
    // Tokens short enough to be refreshed on the live sockets during the run.
    let stack = Stack::start(StackOptions {
        user_env: vec![("TOKEN_TTL_SECS", "20".into())],
        ..StackOptions::default()
    })
    .await;
    node(stack, "web_client.mjs", "web client", &[]).await;
}

/// Invite links, room display names and blocking in the web client: a
/// private room joined by opening its link, a blocked user's DM refused on
/// their page, their room message folded away, an unblock from the member
/// list. The script is e2e/browser/blocks.mjs.
#[tokio::test]
async fn the_web_client_joins_by_link_names_a_room_and_blocks() {
    node(
        Stack::start(StackOptions::default()).await,
        "blocks.mjs",
        "blocks",
        &[],
    )
    .await;
}

/// Running a room in the web client: a private room, an invite accepted,
/// role changes, a mute, and a removal the removed user's page shows. The
/// script is e2e/browser/rooms.mjs.
#[tokio::test]
async fn the_web_client_runs_a_private_room() {
    node(
        Stack::start(StackOptions::default()).await,
        "rooms.mjs",
        "rooms",
        &[],
    )
    .await;
}
