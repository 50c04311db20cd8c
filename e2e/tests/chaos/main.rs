//! A bounded chaos soak with a loss checker (`scripts/chaos`; 60 s of it in
//! `scripts/test`). Users chat in DMs and a room through the real binaries
//! while faults strike at random: kill -9 of each kind of service (then a
//! restart on the same ports), CLIENT KILL of normal and of pub/sub
//! connections, MongoDB stopped, CLIENT PAUSE, and a gateway's Redis link
//! black-holed. Clients behave as docs/protocol.md asks: re-send what is
//! unacknowledged with the same client_id, recover after `resync` and on
//! every reconnect. Two of the six users are on the HTTP transports (a
//! stream, long-polls). Then the checker counts, from the sender's acks, the
//! recipients' inboxes and history: lost, missed, duplicated, gaps, and the
//! time to recover after each fault. The target is 0, 0, 0, 0.
//!
//! CHAOS_SECS sets the traffic time (default 60); CHAOS_RESULTS a file for
//! the report (default: only printed).

mod client;
mod faults;
mod report;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use e2e::{Stack, StackOptions};
use testkit::{Transport, mongo_server::MongoServer, proxy::TcpProxy};

use crate::{
    client::{Peer, Shared},
    faults::Fault,
};

pub const USERS: usize = 6;

/// Users 0 to 3 on WebSockets, 4 on a stream, 5 on long-polls: the HTTP
/// transports meet every fault too, their POSTs and polls spread over both
/// gateways.
fn transport_of(user: usize) -> Transport {
    match user {
        4 => Transport::Stream,
        5 => Transport::LongPoll,
        _ => Transport::WebSocket,
    }
}
pub const ROOM: &str = "chaos";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_loses_nothing() {
    let secs: u64 = std::env::var("CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()));
    let mut mongo = MongoServer::new();
    mongo.start().await;
    let redis: std::net::SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let link = TcpProxy::start(redis).await;
    let mut stack = Stack::start(StackOptions {
        gateways: 2,
        workers: 2,
        mongodb_uri: Some(mongo.uri()),
        // Gateway 0 reaches Redis through a link the soak black-holes.
        gateway_redis: vec![format!("redis://{}", link.addr)],
        gateway_env: vec![
            ("RATE_PER_SEC", "1000".into()),
            ("ACCOUNT_MESSAGES_PER_SEC", "0".into()),
            ("RATE_BURST", "1000".into()),
        ],
        worker_env: vec![("CLAIM_IDLE_MS", "2000".into())],
        ..StackOptions::default()
    })
    .await;
    let shared = Arc::new(Shared::new(&stack, USERS));
    let mut names = Vec::new();
    for i in 0..USERS {
        names.push(format!("user{i}"));
    }
    let tokens = client::register(&stack, &names).await;
    client::make_room(&stack, &tokens[0], &tokens[1..]).await;

    let peers: Vec<_> = names
        .iter()
        .zip(&tokens)
        .enumerate()
        .map(|(i, (name, token))| {
            let peer = Peer::new(
                name,
                token,
                &names,
                shared.clone(),
                seed + i as u64,
                transport_of(i),
            );
            tokio::spawn(peer.run(i % 2))
        })
        .collect();

    let started = Instant::now();
    let faults = faults::run(
        &mut stack,
        &mut mongo,
        &link,
        &shared,
        Duration::from_secs(secs),
        seed,
    )
    .await;
    shared.stop_sending();
    let mut finished = Vec::new();
    for p in peers {
        finished.push(p.await.expect("peer task"));
    }
    // Each transport took part: every peer sent, was acknowledged and got
    // messages live (a peer that never connects would send nothing, and
    // lose nothing).
    for (i, peer) in finished.iter().enumerate() {
        assert!(
            !peer.acked.is_empty() && peer.inbox.live > 0,
            "{} on {:?}: {} acked, {} received live",
            peer.user,
            transport_of(i),
            peer.acked.len(),
            peer.inbox.live
        );
    }
    let report = report::check(&stack, &finished, &faults, started.elapsed()).await;
    println!("{}", report.markdown(seed, secs));
    if let Ok(path) = std::env::var("CHAOS_RESULTS") {
        std::fs::write(&path, report.markdown(seed, secs)).expect("results file");
    }
    assert!(
        report.clean(),
        "the soak found losses; see the report above"
    );
    drop(stack);
    mongo.stop();
}

/// One fault as it happened, for the report.
pub struct Struck {
    pub fault: Fault,
    pub at: Duration,
    /// When it was lifted (services back, link restored).
    pub lifted: Instant,
    /// Time from `lifted` to the first ack of a message sent after it.
    pub recovered_in: Arc<Mutex<Option<Duration>>>,
}
