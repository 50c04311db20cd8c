//! Random-pair DMs: N clients spread over the gateways, each sending at its
//! share of a fixed total rate to a random other client, so nearly every
//! message opens a new conversation (per-conversation keys created on first
//! use, cold caches): the shape of real DM traffic, unlike `dm`'s fixed
//! pairs. Reports the `sent` ack and delivery latency with p95, where a
//! bimodal tail shows first. `--transport stream|poll` runs the same
//! traffic over the HTTP transports.

use std::time::{Duration, Instant};

use crate::{
    cli::{Cli, RandomArgs},
    setup,
    stats::{Latencies, Timeline, ack_stamp, now_micros, stamp_of},
    transport,
};

/// A small deterministic generator per client (xorshift64*): the pairs are
/// random but a rerun with the same seed picks the same ones.
struct Pick(u64);

impl Pick {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below as u64) as usize
    }
}

pub async fn run(cli: &Cli, args: &RandomArgs) -> anyhow::Result<String> {
    anyhow::ensure!(args.clients >= 2, "--clients must be at least 2");
    let http = reqwest::Client::new();
    let names: Vec<String> = (0..args.clients)
        .map(|i| format!("{}_{i}", cli.run))
        .collect();
    let tokens = setup::users(&http, &cli.gateways[0], &names).await?;
    // Everyone online before anyone sends: a DM to a client not connected
    // yet would go to its offline queue, not be delivered live.
    let mut sockets = Vec::with_capacity(args.clients);
    for (i, token) in tokens.iter().enumerate() {
        sockets.push(transport::open(args.transport, &http, &cli.gateways, i, token).await?);
    }
    crate::hook::phase("start");
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let quiet = Duration::from_secs(5);
    let every = Duration::from_secs_f64(args.clients as f64 / f64::from(args.rate));
    let started = Instant::now();
    let started_micros = now_micros();
    let mut tasks = Vec::with_capacity(args.clients);
    for (i, (mut sink, mut stream)) in sockets.into_iter().enumerate() {
        let names = names.clone();
        let mut pick = Pick(args.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Sender: a random other client each time, from a random phase.
        let sender = tokio::spawn(async move {
            tokio::time::sleep(every.mul_f64(pick.next(1000) as f64 / 1000.0)).await;
            let mut tick = tokio::time::interval(every);
            let mut k = 0_u64;
            while Instant::now() < deadline {
                tick.tick().await;
                // A tick can land past the deadline (at low rates a client's
                // period outlasts the run): that send would be outside the
                // window the report counts.
                if Instant::now() >= deadline {
                    break;
                }
                let mut to = pick.next(names.len() - 1);
                if to >= i {
                    to += 1;
                }
                let now = now_micros();
                let frame = format!(
                    r#"{{"type":"send","client_id":"{now}-{k}","to":"user:{}","body":"{now} dm"}}"#,
                    names[to]
                );
                if sink.send(frame).await.is_err() {
                    break;
                }
                k += 1;
            }
            k
        });
        // Receiver: its own acks and the DMs others send it.
        let receiver = tokio::spawn(async move {
            let (mut acks, mut deliveries) = (Latencies::default(), Latencies::default());
            let mut timeline = Timeline::new(started_micros);
            // Sends the gateway shed (`unavailable`), and other errors.
            let (mut shed, mut errors) = (0_u64, 0_u64);
            while let Ok(Some(t)) = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()) + quiet,
                stream.next(),
            )
            .await
            {
                let t = t.as_str();
                if t.starts_with("{\"type\":\"sent\"") {
                    if let Some(stamp) = ack_stamp(t) {
                        let latency = now_micros().saturating_sub(stamp);
                        acks.record(latency);
                        timeline.record(stamp, latency);
                    }
                } else if t.starts_with("{\"type\":\"message\"")
                    && let Some(stamp) = stamp_of(t)
                {
                    deliveries.record(now_micros().saturating_sub(stamp));
                } else if t.starts_with("{\"type\":\"error\"") {
                    if t.contains("\"code\":\"unavailable\"") {
                        shed += 1;
                    } else {
                        errors += 1;
                    }
                }
            }
            (acks, deliveries, timeline, shed, errors)
        });
        tasks.push((sender, receiver));
    }
    let (mut acks, mut deliveries, mut sent) = (Latencies::default(), Latencies::default(), 0);
    let (mut shed, mut errors) = (0, 0);
    let mut timeline = Timeline::new(started_micros);
    for (sender, receiver) in tasks {
        sent += sender.await?;
        let (a, d, t, s, e) = receiver.await?;
        acks.extend(a);
        timeline.extend(t);
        deliveries.extend(d);
        shed += s;
        errors += e;
    }
    crate::hook::phase(&format!("end {}", acks.len()));
    let window = started.elapsed().as_secs_f64() - quiet.as_secs_f64();
    Ok(format!(
        "random ({:?}): clients={} rate={}/s duration={}s gateways={} seed={}\n  sent={sent} acked={} shed={shed} errors={errors} delivered={} acked/s={:.0}\n  sent-ack latency: {}\n  delivery latency: {}\n  sent-ack p50/p99 ms by second sent: {}",
        args.transport,
        args.clients,
        args.rate,
        args.duration,
        cli.gateways.len(),
        args.seed,
        acks.len(),
        deliveries.len(),
        acks.len() as f64 / window.max(0.001),
        acks.summary(),
        deliveries.summary(),
        timeline.summary()
    ))
}
