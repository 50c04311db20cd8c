//! The faults, struck one at a time with calm in between, in an order drawn
//! from the seed (every kind once before any repeats).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use e2e::Stack;
use testkit::{
    mongo_server::MongoServer,
    proxy::{Mode, TcpProxy},
};

use crate::{Struck, client::Shared};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillWorker,
    KillGateway,
    KillHistory,
    KillUserService,
    KillRedisConnections,
    KillPubSubConnection,
    StopMongo,
    PauseRedis,
    BlackholeGatewayRedis,
}

const ALL: [Fault; 9] = [
    Fault::KillWorker,
    Fault::KillGateway,
    Fault::KillHistory,
    Fault::KillUserService,
    Fault::KillRedisConnections,
    Fault::KillPubSubConnection,
    Fault::StopMongo,
    Fault::PauseRedis,
    Fault::BlackholeGatewayRedis,
];

/// Calm before each fault.
const CALM: Duration = Duration::from_secs(2);

fn local(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Strikes faults until `duration` has passed; returns what struck when.
pub async fn run(
    stack: &mut Stack,
    mongo: &mut MongoServer,
    link: &TcpProxy,
    shared: &Shared,
    duration: Duration,
    seed: u64,
) -> Vec<Struck> {
    let started = Instant::now();
    let mut order = ALL.to_vec();
    let mut rng = seed | 1;
    for i in (1..order.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        order.swap(i, (rng % (i as u64 + 1)) as usize);
    }
    // MongoDB is down 30 s in a long soak, less in the short one.
    let mongo_down = if duration >= Duration::from_secs(240) {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(8)
    };
    let mut struck = Vec::new();
    let mut k = 0;
    while started.elapsed() + CALM < duration {
        tokio::time::sleep(CALM).await;
        let fault = order[k % order.len()];
        k += 1;
        let at = started.elapsed();
        tracing_line(&format!("chaos: {fault:?} at {:.1}s", at.as_secs_f64()));
        strike(stack, mongo, link, fault, mongo_down, k).await;
        struck.push(Struck {
            fault,
            at,
            lifted: Instant::now(),
            recovered_in: Arc::new(Mutex::new(None)),
        });
    }
    // Let the last fault's recovery show in the acks.
    tokio::time::sleep(CALM).await;
    let acks = shared.acks.lock().unwrap().clone();
    for s in &struck {
        let first = acks
            .iter()
            .filter(|(sent, _)| *sent >= s.lifted)
            .map(|(_, acked)| acked.duration_since(s.lifted))
            .min();
        *s.recovered_in.lock().unwrap() = first;
    }
    struck
}

fn tracing_line(line: &str) {
    println!("{line}");
}

async fn strike(
    stack: &mut Stack,
    mongo: &mut MongoServer,
    link: &TcpProxy,
    fault: Fault,
    mongo_down: Duration,
    k: usize,
) {
    let pause = Duration::from_secs(1);
    match fault {
        Fault::KillWorker => {
            let i = k % stack.workers.len();
            let w = &mut stack.workers[i];
            w.kill_now();
            tokio::time::sleep(pause).await;
            w.relaunch(&[]);
        }
        Fault::KillGateway => {
            let i = k % stack.gateways.len();
            let port = stack.gateway_ports[i];
            stack.gateways[i].kill_now();
            tokio::time::sleep(pause).await;
            stack.gateways[i].relaunch(&[("LISTEN_ADDR".into(), local(port))]);
        }
        Fault::KillHistory => {
            let (public, internal) = (stack.history_port, stack.history_internal_port);
            stack.history.kill_now();
            tokio::time::sleep(pause).await;
            stack.history.relaunch(&[
                ("LISTEN_ADDR".into(), local(public)),
                ("INTERNAL_ADDR".into(), local(internal)),
            ]);
        }
        Fault::KillUserService => {
            let port = stack.user_port;
            stack.user.kill_now();
            tokio::time::sleep(pause).await;
            stack.user.relaunch(&[("LISTEN_ADDR".into(), local(port))]);
        }
        Fault::KillRedisConnections => {
            stack.kill_redis_connections().await;
        }
        Fault::KillPubSubConnection => {
            // Gateway 1 talks to Redis directly (gateway 0 through the link).
            stack.kill_pubsub_connection(1).await;
        }
        Fault::StopMongo => {
            mongo.stop();
            tokio::time::sleep(mongo_down).await;
            mongo.start().await;
        }
        Fault::PauseRedis => {
            let mut redis = stack.storage.redis().await;
            let _: redis::RedisResult<()> = redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(3000)
                .arg("ALL")
                .query_async(&mut redis)
                .await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Fault::BlackholeGatewayRedis => {
            link.set(Mode::Blackhole);
            tokio::time::sleep(Duration::from_secs(5)).await;
            link.set(Mode::Pass);
        }
    }
}
