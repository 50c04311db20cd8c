//! Idle sockets: resident memory of the gateway per open connection, and the
//! kernel's memory per socket beside it. Connections can come from several
//! loopback source addresses (`--sources 127.0.0.2,127.0.0.3,…`), each good
//! for one ephemeral-port range towards the gateway's port, to get past
//! ~28,000 connections from one address. `--transport stream` holds
//! streams (`GET /api/stream`) instead of WebSockets.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use anyhow::Context;
use futures::{StreamExt, stream};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::{
    cli::{Cli, IdleArgs, IdleTransport},
    client, setup,
};

/// Something held open: a WebSocket, or a stream's TCP connection.
enum Held {
    Socket(#[allow(dead_code)] Box<client::Socket>),
    Stream(#[allow(dead_code)] TcpStream),
}

/// A stream on `gateway` (`ws://host:port`) past its `offline` frame.
async fn open_stream(
    gateway: &str,
    token: &str,
    source: Option<IpAddr>,
) -> anyhow::Result<TcpStream> {
    let authority = gateway
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .context("a gateway URL")?;
    let addr: SocketAddr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .context("resolving the gateway")?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0)).context("bind")?;
    }
    let mut stream = socket.connect(addr).await.context("connect")?;
    let request = format!(
        "GET /api/stream HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(9).any(|w| w == b"\"offline\"") {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(
            n > 0,
            "the stream closed: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
        anyhow::ensure!(
            seen.len() < 12 || seen.starts_with(b"HTTP/1.1 200"),
            "refused: {}",
            String::from_utf8_lossy(&seen)
        );
    }
    Ok(stream)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}

/// The kernel memory TCP sockets hold, in bytes: buffer pages from
/// /proc/net/sockstat, and the slab objects every socket needs (the socket,
/// its inode, file and dentry) from /proc/slabinfo where it is readable.
fn kernel_socket_bytes() -> (u64, Option<u64>) {
    let pages = std::fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|s| {
            let tcp = s.lines().find(|l| l.starts_with("TCP:"))?.to_owned();
            let mut words = tcp.split_whitespace();
            words.position(|w| w == "mem")?;
            words.next()?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    let slab = std::fs::read_to_string("/proc/slabinfo").ok().map(|s| {
        s.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let wanted = ["TCP", "sock_inode_cache", "filp", "dentry"];
                if f.len() > 3 && wanted.contains(&f[0]) {
                    Some(f[1].parse::<u64>().ok()? * f[3].parse::<u64>().ok()?)
                } else {
                    None
                }
            })
            .sum()
    });
    (pages * 4096, slab)
}

pub async fn run(cli: &Cli, args: &IdleArgs) -> anyhow::Result<String> {
    let gateway = &cli.gateways[0];
    let before = rss_kib(args.gateway_pid)?;
    let (buffers_before, slab_before) = kernel_socket_bytes();
    let sources: Vec<Option<IpAddr>> = if args.sources.is_empty() {
        vec![None]
    } else {
        args.sources.iter().copied().map(Some).collect()
    };
    let targets: Vec<(String, Option<IpAddr>)> = (0..args.connections)
        .map(|i| {
            let (token, _) = service_kit::jwt::issue(
                args.jwt_secret.expose(),
                &format!("{}_{i}", cli.run),
                // A session of its own per socket, never revoked.
                &format!("{i:032x}"),
                3600,
            )
            .expect("mint token");
            (token, sources[i % sources.len()])
        })
        .collect();
    let transport = args.transport;
    let sockets: Vec<anyhow::Result<Held>> = stream::iter(targets)
        .map(|(token, source)| async move {
            match transport {
                IdleTransport::Websocket => {
                    client::connect_from(&setup::ws_url(gateway, &token), source)
                        .await
                        .map(|s| Held::Socket(Box::new(s)))
                }
                IdleTransport::Stream => {
                    open_stream(gateway, &token, source).await.map(Held::Stream)
                }
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let open = sockets.iter().filter(|s| s.is_ok()).count();
    if let Some(Err(e)) = sockets.iter().find(|s| s.is_err()) {
        eprintln!("some connections failed: {e:#}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(args.gateway_pid)?;
    let (buffers_after, slab_after) = kernel_socket_bytes();
    drop(sockets);
    // Both ends of every connection live in this kernel.
    let ends = (2 * open.max(1)) as f64;
    let kernel = match (slab_before, slab_after) {
        (Some(b), Some(a)) => format!(
            "{:.2} KiB slab + {:.2} KiB buffers",
            a.saturating_sub(b) as f64 / ends / 1024.0,
            buffers_after.saturating_sub(buffers_before) as f64 / ends / 1024.0
        ),
        _ => format!(
            "{:.2} KiB buffers (slab not readable)",
            buffers_after.saturating_sub(buffers_before) as f64 / ends / 1024.0
        ),
    };
    Ok(format!(
        "idle ({transport:?}): connections={open}/{} from {} source address(es): gateway RSS {before} KiB -> {after} KiB: {:.2} KiB per connection; kernel per socket: {kernel}",
        args.connections,
        sources.len(),
        (after.saturating_sub(before)) as f64 / open.max(1) as f64
    ))
}
