//! The faults the model checker injects while the clients race: a worker
//! killed (and restarted), every Redis connection of the stack killed, and
//! the link from the workers to history-service cut or black-holed, one at a
//! time, in an order drawn from the seed.

use std::time::{Duration, Instant};

use e2e::Stack;
use testkit::proxy::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillWorker,
    KillRedisConnections,
    CutHistoryLink,
    BlackholeHistoryLink,
}

const ALL: [Fault; 4] = [
    Fault::KillWorker,
    Fault::KillRedisConnections,
    Fault::CutHistoryLink,
    Fault::BlackholeHistoryLink,
];

/// Strikes faults until `duration` has passed; returns what struck when (s).
pub async fn run(stack: &mut Stack, duration: Duration, seed: u64) -> Vec<(Fault, f64)> {
    let started = Instant::now();
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut struck = Vec::new();
    let calm = Duration::from_secs(3);
    while started.elapsed() + calm < duration {
        tokio::time::sleep(calm).await;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let fault = ALL[(rng % ALL.len() as u64) as usize];
        struck.push((fault, started.elapsed().as_secs_f64()));
        println!(
            "model: {fault:?} at {:.1}s",
            started.elapsed().as_secs_f64()
        );
        match fault {
            Fault::KillWorker => {
                let i = (rng / 7 % stack.workers.len() as u64) as usize;
                stack.workers[i].kill_now();
                tokio::time::sleep(Duration::from_secs(1)).await;
                stack.workers[i].relaunch(&[]);
            }
            Fault::KillRedisConnections => {
                stack.kill_redis_connections().await;
            }
            Fault::CutHistoryLink => {
                let link = stack.history_link.as_ref().expect("a history link");
                link.set(Mode::Refuse);
                tokio::time::sleep(Duration::from_secs(2)).await;
                link.set(Mode::Pass);
            }
            Fault::BlackholeHistoryLink => {
                let link = stack.history_link.as_ref().expect("a history link");
                link.set(Mode::Blackhole);
                tokio::time::sleep(Duration::from_secs(2)).await;
                link.set(Mode::Pass);
            }
        }
    }
    struck
}
