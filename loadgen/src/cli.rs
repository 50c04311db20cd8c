//! Command line: where the stack is, and which scenario to run.

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Load generator for the chat stack")]
pub struct Cli {
    /// Gateway base URLs (HTTP); clients are spread over them round-robin.
    #[arg(
        long,
        env = "LOADGEN_GATEWAYS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8081,http://127.0.0.1:8082"
    )]
    pub gateways: Vec<String>,
    /// Prefix of the usernames and rooms this run creates (must be unique per run).
    #[arg(long, default_value_t = default_run_id())]
    pub run: String,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// One room: M senders post at a fixed total rate, every member receives.
    Fanout(FanoutArgs),
    /// Pairs of users on different gateways exchange durable DMs at a fixed rate.
    Dm(DmArgs),
    /// N clients, each sending DMs to a random other client: nearly every
    /// message opens a new conversation.
    Random(RandomArgs),
    /// One user with many conversations: `GET /api/conversations` latency.
    List(ListArgs),
    /// Opens idle sockets and reports the gateway's resident memory per socket.
    Idle(IdleArgs),
    /// A big room under load, and a kick halfway: when it takes effect, and
    /// the send latency before and after. Its users and memberships must
    /// exist already (scripts/bench makes them in PostgreSQL).
    Moderation(ModerationArgs),
}

#[derive(Args, Debug)]
pub struct ModerationArgs {
    /// Members `<run>_0` (the owner) .. `<run>_<members-1>` of room `<run>-big`.
    #[arg(long, default_value_t = 10_000)]
    pub members: usize,
    /// Members 1..=senders post; member 1 is kicked halfway.
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// Messages per second over all senders (each reaches every member).
    #[arg(long, default_value_t = 4)]
    pub rate: u32,
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// HS256 secret of the stack, to mint the members' tokens.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: service_kit::secret::Secret,
}

#[derive(Args, Debug)]
pub struct RandomArgs {
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Messages per second, all clients together.
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Seed of the random recipient choices (same seed, same pairs).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The clients' transport: WebSockets, streams (events down, POSTs up
    /// to every gateway in turn) or long-polls.
    #[arg(long, value_enum, default_value_t = crate::transport::Transport::Websocket)]
    pub transport: crate::transport::Transport,
}

#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[arg(long, default_value_t = 200)]
    pub members: usize,
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
}

#[derive(Args, Debug)]
pub struct DmArgs {
    #[arg(long, default_value_t = 50)]
    pub pairs: usize,
    /// Messages per second, all pairs together.
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Each receiver sends a `read` frame for every message it gets, as a
    /// client with the conversation open does.
    #[arg(long)]
    pub read: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Conversations of the one user (rooms, each with one message).
    #[arg(long, default_value_t = 1000)]
    pub conversations: usize,
    /// Timed requests per page size.
    #[arg(long, default_value_t = 300)]
    pub requests: usize,
}

#[derive(Args, Debug)]
pub struct IdleArgs {
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// The gateway process to measure (its RSS from /proc).
    #[arg(long)]
    pub gateway_pid: u32,
    /// HS256 secret of the stack: tokens are minted locally, so no user
    /// needs registering (idle sockets need only a valid token).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: service_kit::secret::Secret,
    /// Local addresses to connect from, round-robin (e.g.
    /// 127.0.0.2,127.0.0.3): each gives another ~28,000 ephemeral ports
    /// towards the gateway. Default: any.
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<std::net::IpAddr>,
    /// What to hold open: WebSockets, or streams (`GET /api/stream`, the
    /// server-sent event transport).
    #[arg(long, value_enum, default_value_t = IdleTransport::Websocket)]
    pub transport: IdleTransport,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleTransport {
    Websocket,
    Stream,
}

fn default_run_id() -> String {
    format!("lg{}", chat_model::time::now_ms() % 10_000_000)
}
