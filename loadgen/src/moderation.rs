//! A moderation action under load: one big room (its users and memberships
//! made in PostgreSQL by scripts/bench, since hashing 10,000 passwords would
//! take minutes), every member connected with a minted token, a few senders
//! posting; halfway through, the owner kicks one sender. Reports the send
//! (ack) p99 before and after, how long the kick took to answer, and when it
//! took effect for the kicked user: their `removed` frame, their first
//! refused send, and whether any message sent after the answer reached them;
//! and when the kick's membership event reached the other members' sockets.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, stream};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    cli::{Cli, ModerationArgs},
    client, setup,
    stats::{Latencies, now_micros, stamp_of},
};

/// When things happened to the kicked user (Unix µs; 0: never).
#[derive(Default)]
struct Victim {
    removed_at: AtomicU64,
    first_refusal_at: AtomicU64,
    /// Messages sent after the kick's answer that still reached them.
    late_deliveries: AtomicU64,
}

/// The kick's membership event on the other members' sockets.
#[derive(Default)]
struct KickEvent {
    sockets: AtomicU64,
    /// Unix µs of its first and last arrival (0: never).
    first_at: AtomicU64,
    last_at: AtomicU64,
}

fn token(secret: &str, user: &str, i: usize) -> String {
    service_kit::jwt::issue(secret, user, &format!("{i:032x}"), 3600)
        .expect("mint token")
        .0
}

pub async fn run(cli: &Cli, args: &ModerationArgs) -> anyhow::Result<String> {
    anyhow::ensure!(
        args.senders >= 2 && args.senders < args.members,
        "need 2 <= senders < members"
    );
    let secret = args.jwt_secret.expose();
    let room = format!("{}-big", cli.run);
    let names: Vec<String> = (0..args.members)
        .map(|i| format!("{}_{i}", cli.run))
        .collect();
    let connected: Vec<anyhow::Result<client::Socket>> =
        stream::iter(names.iter().enumerate().map(|(i, name)| {
            let url = setup::ws_url(
                &cli.gateways[i % cli.gateways.len()],
                &token(secret, name, i),
            );
            async move { client::connect(&url).await }
        }))
        .buffered(64)
        .collect()
        .await;
    let sockets: Vec<client::Socket> = connected.into_iter().collect::<anyhow::Result<_>>()?;

    crate::hook::phase("start");
    let started = Instant::now();
    let half = started + Duration::from_secs(args.duration / 2);
    let deadline = started + Duration::from_secs(args.duration);
    // Unix µs of the kick's answer (0 until then).
    let answered = Arc::new(AtomicU64::new(0));
    let victim = Arc::new(Victim::default());
    let kick_event = Arc::new(KickEvent::default());
    let acks: Arc<Mutex<(Latencies, Latencies)>> = Arc::default();
    let deliveries: Arc<Mutex<(Latencies, Latencies)>> = Arc::default();
    let sent = Arc::new(AtomicU64::new(0));
    let per_sender = f64::from(args.rate) / args.senders as f64;
    let mut tasks = Vec::new();
    // Senders are users 1..=senders; user 1 is the one kicked.
    for (i, ws) in sockets.into_iter().enumerate() {
        let (mut sink, mut stream) = ws.split();
        let (answered, victim, acks, deliveries, kick_event) = (
            answered.clone(),
            victim.clone(),
            acks.clone(),
            deliveries.clone(),
            kick_event.clone(),
        );
        let is_victim = i == 1;
        tasks.push(tokio::spawn(async move {
            let quiet = Duration::from_secs(3);
            while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()) + quiet,
                stream.next(),
            )
            .await
            {
                let text = text.as_str();
                let now = now_micros();
                let after = answered.load(Ordering::Relaxed);
                if text.starts_with("{\"type\":\"message\"")
                    && text.contains("\"member\":{\"action\":\"kick\"")
                {
                    kick_event.sockets.fetch_add(1, Ordering::Relaxed);
                    let _ = kick_event.first_at.compare_exchange(
                        0,
                        now,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    kick_event.last_at.fetch_max(now, Ordering::Relaxed);
                } else if text.starts_with("{\"type\":\"message\"") {
                    if let Some(stamp) = stamp_of(text) {
                        let mut d = deliveries.lock().unwrap();
                        if after > 0 && stamp > after {
                            &mut d.1
                        } else {
                            &mut d.0
                        }
                        .record(now.saturating_sub(stamp));
                        if is_victim && after > 0 && stamp > after {
                            victim.late_deliveries.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else if text.starts_with("{\"type\":\"sent\"") {
                    // The client_id carries its send time: s<i>-<k>-<µs>.
                    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                    let at = v["client_id"]
                        .as_str()
                        .and_then(|c| c.rsplit('-').next())
                        .and_then(|t| t.parse::<u64>().ok());
                    if let Some(at) = at {
                        let mut a = acks.lock().unwrap();
                        if after > 0 && at > after {
                            &mut a.1
                        } else {
                            &mut a.0
                        }
                        .record(now.saturating_sub(at));
                    }
                } else if is_victim && text.starts_with("{\"type\":\"removed\"") {
                    victim.removed_at.store(now, Ordering::Relaxed);
                } else if is_victim
                    && text.starts_with("{\"type\":\"error\"")
                    && text.contains("forbidden")
                {
                    let _ = victim.first_refusal_at.compare_exchange(
                        0,
                        now,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            }
        }));
        if (1..=args.senders).contains(&i) {
            let (sent, room) = (sent.clone(), room.clone());
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sender));
                let mut k = 0_u64;
                while Instant::now() < deadline {
                    tick.tick().await;
                    let t = now_micros();
                    let frame = json!({
                        "type": "send",
                        "client_id": format!("s{i}-{k}-{t}"),
                        "to": format!("room:{room}"),
                        "body": format!("{t} moderation"),
                    });
                    if sink.send(Message::text(frame.to_string())).await.is_err() {
                        break;
                    }
                    k += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }

    tokio::time::sleep_until(half.into()).await;
    let http = reqwest::Client::new();
    let kick_started = now_micros();
    let r = http
        .post(format!("{}/api/rooms/{room}/kick", cli.gateways[0]))
        .bearer_auth(token(secret, &names[0], 0))
        .json(&json!({"user": names[1], "reason": "benchmark"}))
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "kick: {} {}",
        r.status(),
        r.text().await?
    );
    let kick_answered = now_micros();
    answered.store(kick_answered, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    crate::hook::phase(&format!("end {}", sent.load(Ordering::Relaxed)));

    let ms = |at: u64| -> String {
        if at == 0 {
            "never".into()
        } else {
            format!("{:.1} ms", at.saturating_sub(kick_started) as f64 / 1000.0)
        }
    };
    let (ack_before, ack_after) = std::mem::take(&mut *acks.lock().unwrap());
    let (del_before, del_after) = std::mem::take(&mut *deliveries.lock().unwrap());
    Ok(format!(
        "moderation: members={} senders={} rate={}/s duration={}s gateways={}, kick at {}s\n  kick answered after {:.1} ms; for the kicked user: removed frame after {}, first refused send after {}, messages sent after the answer delivered to them: {}\n  the kick's membership event: on {} sockets, the first after {}, the last after {}\n  sent->ack before the kick: {}\n  sent->ack after the kick:  {}\n  delivery before the kick: {}\n  delivery after the kick:  {}",
        args.members,
        args.senders,
        args.rate,
        args.duration,
        cli.gateways.len(),
        args.duration / 2,
        (kick_answered - kick_started) as f64 / 1000.0,
        ms(victim.removed_at.load(Ordering::Relaxed)),
        ms(victim.first_refusal_at.load(Ordering::Relaxed)),
        victim.late_deliveries.load(Ordering::Relaxed),
        kick_event.sockets.load(Ordering::Relaxed),
        ms(kick_event.first_at.load(Ordering::Relaxed)),
        ms(kick_event.last_at.load(Ordering::Relaxed)),
        ack_before.summary(),
        ack_after.summary(),
        del_before.summary(),
        del_after.summary(),
    ))
}
