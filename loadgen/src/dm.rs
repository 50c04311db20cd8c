//! Durable DMs: pairs of users on different gateways; each first user sends
//! to its partner at a fixed total rate. Reports the `sent` ack latency (the
//! message is stored) and the delivery latency, with percentiles.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    cli::{Cli, DmArgs},
    client,
    recovery::Recovery,
    setup,
    stats::{Latencies, ack_stamp, now_micros, stamp_of},
};

pub async fn run(cli: &Cli, args: &DmArgs) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let gateway = &cli.gateways[0];
    let names: Vec<String> = (0..args.pairs * 2)
        .map(|i| format!("{}_{i}", cli.run))
        .collect();
    let tokens = setup::users(&http, gateway, &names).await?;
    crate::hook::phase("start");
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let quiet = Duration::from_secs(5);
    let per_pair = f64::from(args.rate) / args.pairs as f64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..args.pairs {
        let gw_a = &cli.gateways[0];
        let gw_b = &cli.gateways[(1).min(cli.gateways.len() - 1)];
        let a = client::connect(&setup::ws_url(gw_a, &tokens[2 * p])).await?;
        let b = client::connect(&setup::ws_url(gw_b, &tokens[2 * p + 1])).await?;
        let to = format!("user:{}", names[2 * p + 1]);
        let (mut a_sink, mut a_stream) = a.split();
        let (mut b_sink, mut b_stream) = b.split();
        let read = args.read;
        // Sender.
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_pair));
            let mut k = 0_u64;
            while Instant::now() < deadline {
                tick.tick().await;
                if Instant::now() >= deadline {
                    break;
                }
                let now = now_micros();
                let frame = format!(
                    r#"{{"type":"send","client_id":"{now}-{k}","to":"{to}","body":"{now} dm"}}"#
                );
                if a_sink.send(Message::text(frame)).await.is_err() {
                    break;
                }
                k += 1;
            }
            (Latencies::default(), Latencies::default(), k, (0, 0))
        }));
        // Acks to the sender.
        tasks.push(tokio::spawn(async move {
            let mut acks = Latencies::default();
            while let Ok(Some(Ok(m))) = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()) + quiet,
                a_stream.next(),
            )
            .await
            {
                if let Message::Text(t) = m
                    && t.as_str().starts_with("{\"type\":\"sent\"")
                    && let Some(stamp) = ack_stamp(t.as_str())
                {
                    acks.record(now_micros().saturating_sub(stamp));
                }
            }
            (acks, Latencies::default(), 0, (0, 0))
        }));
        // Deliveries to the partner, who recovers after `resync` as clients do.
        let mut recovery = Recovery::new(gw_b, &tokens[2 * p + 1]);
        tasks.push(tokio::spawn(async move {
            let mut deliveries = Latencies::default();
            while let Ok(Some(Ok(m))) = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()) + quiet,
                b_stream.next(),
            )
            .await
            {
                let Message::Text(t) = m else { continue };
                let t = t.as_str();
                if t.starts_with("{\"type\":\"message\"") {
                    recovery.saw(t);
                    if let Some(stamp) = stamp_of(t) {
                        deliveries.record(now_micros().saturating_sub(stamp));
                    }
                    if read && let Some(frame) = read_frame(t) {
                        let _ = b_sink.send(Message::text(frame)).await;
                    }
                } else if t.starts_with("{\"type\":\"resync\"") {
                    for body in recovery.recover().await {
                        if let Some(stamp) = body.split(' ').next().and_then(|s| s.parse().ok()) {
                            deliveries.record(now_micros().saturating_sub(stamp));
                        }
                    }
                }
            }
            let recovered = (recovery.resyncs, recovery.recovered);
            (Latencies::default(), deliveries, 0, recovered)
        }));
    }
    let mut acks = Latencies::default();
    let mut deliveries = Latencies::default();
    let mut sent = 0;
    let (mut resyncs, mut recovered) = (0, 0);
    for t in tasks {
        let (a, d, s, (r, found)) = t.await?;
        acks.extend(a);
        deliveries.extend(d);
        sent += s;
        resyncs += r;
        recovered += found;
    }
    crate::hook::phase(&format!("end {}", acks.len()));
    let window = started.elapsed().as_secs_f64() - quiet.as_secs_f64();
    Ok(format!(
        "dm: pairs={} rate={}/s duration={}s gateways={} read-markers={}\n  sent={sent} acked={} delivered={} acked/s={:.0} resyncs={resyncs} recovered={recovered}\n  sent-ack latency: {}\n  delivery latency: {}",
        args.pairs,
        args.rate,
        args.duration,
        cli.gateways.len(),
        if args.read { "on" } else { "off" },
        acks.len(),
        deliveries.len(),
        acks.len() as f64 / window.max(0.001),
        acks.summary(),
        deliveries.summary()
    ))
}

/// The `read` frame a client with the conversation open sends for `message`.
fn read_frame(message: &str) -> Option<String> {
    let m: serde_json::Value = serde_json::from_str(message).ok()?;
    let frame =
        serde_json::json!({"type": "read", "conversation": m["conversation"], "seq": m["seq"]});
    Some(frame.to_string())
}
