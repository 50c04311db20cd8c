//! `loadgen`: drives a running chat stack over its public surface (HTTP,
//! WebSocket, streams and long-polls) and reports throughput, latency percentiles and memory.
//!
//!   loadgen fanout --members 500 --senders 5 --rate 200 --duration 20
//!   loadgen dm --pairs 100 --rate 1000 --duration 20
//!   loadgen random --clients 1000 --rate 2000 --duration 20
//!   loadgen random --clients 1000 --rate 1000 --transport stream
//!   loadgen dm --pairs 100 --rate 1000 --duration 20 --read
//!   loadgen list --conversations 1000 --requests 300
//!   loadgen idle --connections 10000 --gateway-pid 1234

mod cli;
mod client;
mod dm;
mod fanout;
mod hook;
mod idle;
mod list;
mod moderation;
mod random;
mod recovery;
mod setup;
mod stats;
mod transport;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let report = match &cli.scenario {
        cli::Scenario::Fanout(args) => fanout::run(&cli, args).await?,
        cli::Scenario::Dm(args) => dm::run(&cli, args).await?,
        cli::Scenario::Random(args) => random::run(&cli, args).await?,
        cli::Scenario::List(args) => list::run(&cli, args).await?,
        cli::Scenario::Idle(args) => idle::run(&cli, args).await?,
        cli::Scenario::Moderation(args) => moderation::run(&cli, args).await?,
    };
    println!("{report}");
    Ok(())
}
