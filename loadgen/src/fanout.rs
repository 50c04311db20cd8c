//! Room fan-out: every member of one room connected, a few senders posting at
//! a fixed total rate; counts deliveries, loss and end-to-end latency.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    cli::{Cli, FanoutArgs},
    client,
    recovery::Recovery,
    setup,
    stats::{Latencies, now_micros, stamp_of},
};

pub async fn run(cli: &Cli, args: &FanoutArgs) -> anyhow::Result<String> {
    anyhow::ensure!(
        args.senders >= 1 && args.senders <= args.members,
        "need 1 <= senders <= members"
    );
    let http = reqwest::Client::new();
    let gateway = &cli.gateways[0];
    let names: Vec<String> = (0..args.members)
        .map(|i| format!("{}_{i}", cli.run))
        .collect();
    let tokens = setup::users(&http, gateway, &names).await?;
    let room = format!("{}-room", cli.run);
    setup::room(&http, gateway, &room, &tokens).await?;

    let mut sockets = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let gw = &cli.gateways[i % cli.gateways.len()];
        sockets.push(client::connect(&setup::ws_url(gw, token)).await?);
    }

    crate::hook::phase("start");
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    let per_sender = f64::from(args.rate) / args.senders as f64;
    for (i, ws) in sockets.into_iter().enumerate() {
        let (mut sink, mut stream) = ws.split();
        let mut recovery = Recovery::new(&cli.gateways[i % cli.gateways.len()], &tokens[i]);
        readers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut last = Instant::now();
            let quiet = Duration::from_secs(5);
            while let Ok(Some(Ok(message))) = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()) + quiet,
                stream.next(),
            )
            .await
            {
                let Message::Text(text) = message else {
                    continue;
                };
                let text = text.as_str();
                if text.starts_with("{\"type\":\"message\"") {
                    recovery.saw(text);
                    if let Some(stamp) = stamp_of(text) {
                        latencies.record(now_micros().saturating_sub(stamp));
                        last = Instant::now();
                    }
                } else if text.starts_with("{\"type\":\"resync\"") {
                    // The documented recovery: what a lost delivery held
                    // comes back from history.
                    for body in recovery.recover().await {
                        if let Some(stamp) = body.split(' ').next().and_then(|s| s.parse().ok()) {
                            latencies.record(now_micros().saturating_sub(stamp));
                            last = Instant::now();
                        }
                    }
                }
                if Instant::now() > deadline + quiet {
                    break;
                }
            }
            (latencies, last)
        }));
        if i < args.senders {
            let sent = sent.clone();
            let room = room.clone();
            senders.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sender));
                let mut k = 0_u64;
                while Instant::now() < deadline {
                    tick.tick().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let frame = format!(
                        r#"{{"type":"send","client_id":"s{i}-{k}","to":"room:{room}","body":"{} fanout"}}"#,
                        now_micros()
                    );
                    if futures::SinkExt::send(&mut sink, Message::text(frame)).await.is_err() {
                        break;
                    }
                    k += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                sink
            }));
        }
    }
    let mut sinks = Vec::new();
    for s in senders {
        sinks.push(s.await?);
    }
    let mut all = Latencies::default();
    let mut last_delivery = started;
    for r in readers {
        let (l, last) = r.await?;
        all.extend(l);
        last_delivery = last_delivery.max(last);
    }
    drop(sinks);
    let sent = sent.load(Ordering::Relaxed);
    let expected = sent * (args.members as u64 - 1);
    let delivered = all.len() as u64;
    crate::hook::phase(&format!("end {sent}"));
    let elapsed = last_delivery
        .duration_since(started)
        .as_secs_f64()
        .max(0.001);
    Ok(format!(
        "fanout: members={} senders={} rate={}/s duration={}s gateways={}\n  sent={sent} deliveries={delivered}/{expected} ({:.3}% lost) throughput={:.0} deliveries/s\n  end-to-end latency: {}",
        args.members,
        args.senders,
        args.rate,
        args.duration,
        cli.gateways.len(),
        if expected == 0 {
            0.0
        } else {
            100.0 * (expected.saturating_sub(delivered)) as f64 / expected as f64
        },
        delivered as f64 / elapsed,
        all.summary()
    ))
}
