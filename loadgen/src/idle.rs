//! Idle sockets: resident memory of the gateway per open connection.

use std::time::Duration;

use futures::{StreamExt, stream};

use crate::{
    cli::{Cli, IdleArgs},
    client, setup,
};

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}

pub async fn run(cli: &Cli, args: &IdleArgs) -> anyhow::Result<String> {
    let gateway = &cli.gateways[0];
    let before = rss_kib(args.gateway_pid)?;
    let urls: Vec<String> = (0..args.connections)
        .map(|i| {
            let (token, _) =
                common::jwt::issue(&args.jwt_secret, &format!("{}_{i}", cli.run), 3600)
                    .expect("mint token");
            setup::ws_url(gateway, &token)
        })
        .collect();
    let sockets: Vec<_> = stream::iter(urls)
        .map(|url| async move { client::connect(&url).await })
        .buffer_unordered(64)
        .collect()
        .await;
    let open = sockets.iter().filter(|s| s.is_ok()).count();
    if let Some(Err(e)) = sockets.iter().find(|s| s.is_err()) {
        eprintln!("some connections failed: {e}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(args.gateway_pid)?;
    drop(sockets);
    Ok(format!(
        "idle: connections={open}/{} gateway RSS {before} KiB -> {after} KiB: {:.2} KiB per connection",
        args.connections,
        (after.saturating_sub(before)) as f64 / open.max(1) as f64
    ))
}
