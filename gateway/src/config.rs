//! gateway settings: each a flag and an environment variable.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use service_kit::{config, service::ServiceArgs};

#[derive(Parser, Debug, Clone)]
#[command(name = "gateway", version, about = "WebSocket and HTTP edge")]
pub struct Config {
    #[command(flatten)]
    pub redis: chat_redis::config::RedisArgs,
    #[command(flatten)]
    pub jwt: config::JwtSecretArg,
    #[command(flatten)]
    pub service_token: config::ServiceTokenArg,
    /// user-service's gRPC address (internal).
    #[arg(long, env = "USER_SERVICE_URL")]
    pub user_service_url: String,
    /// history-service's internal gRPC address (its INTERNAL_ADDR).
    #[arg(long, env = "HISTORY_SERVICE_URL")]
    pub history_service_url: String,
    /// HTTP and WebSocket listen address (public; also /healthz).
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,
    /// This gateway's id, unique among replicas (default: host name).
    #[arg(long, env = "GATEWAY_ID", default_value_t = config::default_instance_id())]
    pub gateway_id: String,
    /// Comma-separated origins allowed to open /ws; empty allows any.
    #[arg(long, env = "ALLOWED_ORIGINS", default_value = "")]
    pub allowed_origins: String,
    /// Transports served, comma-separated: `websocket` (`/ws`), `stream`
    /// (`/api/stream` with POSTed frames) and `poll` (`/api/poll`).
    #[arg(long, env = "TRANSPORTS", default_value = "websocket,stream,poll")]
    pub transports: String,
    /// Largest inbound WebSocket frame answered with `too_large` (bytes).
    #[arg(long, env = "MAX_FRAME_BYTES", default_value_t = 16 * 1024)]
    pub max_frame_bytes: usize,
    /// Messages per second per connection, sustained.
    #[arg(long, env = "RATE_PER_SEC", default_value_t = 20)]
    pub rate_per_sec: u32,
    /// Messages per connection allowed in a burst.
    #[arg(long, env = "RATE_BURST", default_value_t = 40)]
    pub rate_burst: u32,
    /// Messages (sends, edits, deletes) per second per account, across
    /// every socket and gateway; 0: no limit.
    #[arg(long, env = "ACCOUNT_MESSAGES_PER_SEC", default_value_t = 50)]
    pub account_messages_per_sec: u32,
    /// Messages per day (24 hours from the first of the window) per
    /// account; 0: no limit.
    #[arg(long, env = "ACCOUNT_MESSAGES_PER_DAY", default_value_t = 20_000)]
    pub account_messages_per_day: u32,
    /// Frames queued per connection before it is closed with 4008.
    #[arg(long, env = "OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,
    /// Bytes queued per connection before it is closed with 4008.
    #[arg(long, env = "OUTBOUND_QUEUE_BYTES", default_value_t = 2 << 20)]
    pub outbound_queue_bytes: usize,
    /// A gateway whose heartbeat is older than this is taken as dead (ms),
    /// for the REST view of who is online; the same as chat-service's.
    #[arg(long, env = "GATEWAY_TTL_MS", default_value_t = chat_redis::presence::DEFAULT_GATEWAY_TTL_MS)]
    pub gateway_ttl_ms: u64,
    /// Server ping interval (ms).
    #[arg(long, env = "HEARTBEAT_MS", default_value_t = 25_000)]
    pub heartbeat_ms: u64,
    /// A connection silent this long is closed (ms).
    #[arg(long, env = "IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
    /// Most sockets this gateway holds at once.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,
    /// Most sockets one user holds on this gateway (beyond: 429).
    #[arg(long, env = "MAX_CONNECTIONS_PER_USER", default_value_t = 20)]
    pub max_connections_per_user: u32,
    /// Most sockets from one client address on this gateway (beyond: 429).
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: u32,
    /// Ingress stream entries waiting for chat-service beyond which `send` is
    /// refused with `unavailable` and a retry hint.
    #[arg(long, env = "INGRESS_BACKLOG_LIMIT", default_value_t = 100_000)]
    pub ingress_backlog_limit: u64,
    /// Ingress stream partitions: a conversation's sends always go to one
    /// of them (its slot modulo the count), so each is one Redis Cluster
    /// slot. The same on every gateway and chat-service; change it only on
    /// a drained system (docs/scaling.md).
    #[arg(long, env = "INGRESS_PARTITIONS", default_value_t = 1)]
    pub ingress_partitions: usize,
    /// How long the oldest ingress entry no worker has read yet may wait
    /// (ms) before `send` is refused with `unavailable` and a retry hint:
    /// past saturation, load is shed at the edge so what is accepted stays
    /// fast. 0 = never on this ground.
    #[arg(long, env = "INGRESS_MAX_WAIT_MS", default_value_t = 1_000)]
    pub ingress_max_wait_ms: u64,
    /// Under steady traffic (sends closer together than this on average),
    /// how long a send waits for others to share its write to Redis (ms;
    /// 0 = never). A lone send never waits (`ingress/appender.rs`).
    #[arg(long, env = "INGRESS_LINGER_MS", default_value_t = 0)]
    pub ingress_linger_ms: u64,
    /// How long shutdown waits for sockets to close (ms).
    #[arg(long, env = "SHUTDOWN_GRACE_MS", default_value_t = 8_000)]
    pub shutdown_grace_ms: u64,
    /// Failed logins per username from one client address per window before 429.
    #[arg(long, env = "LOGIN_FAILURES_PER_CLIENT", default_value_t = 5)]
    pub login_failures_per_client: u32,
    /// Failed logins per username from all addresses per window before 429
    /// (higher, so one stranger cannot lock a user out).
    #[arg(long, env = "LOGIN_FAILURES_PER_USER", default_value_t = 100)]
    pub login_failures_per_user: u32,
    /// Failed logins per client address, all usernames, per window before 429.
    #[arg(long, env = "LOGIN_FAILURES_PER_IP", default_value_t = 50)]
    pub login_failures_per_ip: u32,
    /// The failed-login window (seconds).
    #[arg(long, env = "LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900)]
    pub login_failure_window_secs: u64,
    /// Registrations per client address per window before 429.
    #[arg(long, env = "REGISTRATIONS_PER_IP", default_value_t = 20)]
    pub registrations_per_ip: u32,
    /// Rooms one user may create per window before 429.
    #[arg(long, env = "ROOMS_PER_USER", default_value_t = 20)]
    pub rooms_per_user: u32,
    /// Joins and leaves one user may make per minute before 429: each puts
    /// a membership event in front of every member of the room.
    #[arg(long, env = "MEMBERSHIP_CHANGES_PER_USER", default_value_t = 30)]
    pub membership_changes_per_user: u32,
    /// WebSocket tickets one user may mint per minute before 429.
    #[arg(long, env = "TICKETS_PER_USER", default_value_t = 60)]
    pub tickets_per_user: u32,
    /// The window of the registration and room-creation limits (seconds).
    #[arg(long, env = "CREATION_WINDOW_SECS", default_value_t = 3_600)]
    pub creation_window_secs: u64,
    /// Take the client address from the last X-Forwarded-For entry (set this
    /// only behind a proxy that appends it, like the bundled nginx).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,
    #[command(flatten)]
    pub service: ServiceArgs,
}

impl config::ServiceConfig for Config {
    fn resolve(&mut self) -> Result<(), config::ConfigError> {
        self.jwt.resolve()?;
        self.service_token.resolve()
    }

    /// One check per setting, in the order of the README's table; long
    /// because the gateway has many settings, and kept flat so each rule is
    /// one line next to its neighbours.
    fn validate(&self) -> Result<(), config::ConfigError> {
        self.redis.validate()?;
        self.jwt.validate()?;
        self.service_token.validate()?;
        config::check_http_url("USER_SERVICE_URL", &self.user_service_url)?;
        config::check_http_url("HISTORY_SERVICE_URL", &self.history_service_url)?;
        config::check_instance_name("GATEWAY_ID", &self.gateway_id)?;
        let names: Vec<&str> = self.transports.split(',').map(str::trim).collect();
        if names.is_empty()
            || names
                .iter()
                .any(|n| !matches!(*n, "websocket" | "stream" | "poll"))
        {
            return Err(config::ConfigError::new(
                "TRANSPORTS",
                "must list websocket, stream and poll, or some of them, comma-separated",
            ));
        }
        for origin in self.origins() {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(config::ConfigError::new(
                    "ALLOWED_ORIGINS",
                    format!("{origin:?} is not an http(s) origin"),
                ));
            }
        }
        config::check_range("MAX_FRAME_BYTES", self.max_frame_bytes, 256..=1 << 20)?;
        config::check_range("RATE_PER_SEC", self.rate_per_sec, 1..=1_000_000)?;
        config::check_range("RATE_BURST", self.rate_burst, 1..=1_000_000)?;
        config::check_range(
            "ACCOUNT_MESSAGES_PER_SEC",
            self.account_messages_per_sec,
            0..=1_000_000,
        )?;
        config::check_range(
            "ACCOUNT_MESSAGES_PER_DAY",
            self.account_messages_per_day,
            0..=100_000_000,
        )?;
        config::check_range("OUTBOUND_QUEUE", self.outbound_queue, 8..=1_000_000)?;
        config::check_range(
            "OUTBOUND_QUEUE_BYTES",
            self.outbound_queue_bytes,
            64 << 10..=1 << 30,
        )?;
        config::check_range("GATEWAY_TTL_MS", self.gateway_ttl_ms, 10_000..=600_000)?;
        config::check_range("HEARTBEAT_MS", self.heartbeat_ms, 100..=600_000)?;
        config::check_range(
            "IDLE_TIMEOUT_MS",
            self.idle_timeout_ms,
            self.heartbeat_ms + 1..=3_600_000,
        )?;
        config::check_range("MAX_CONNECTIONS", self.max_connections, 1..=10_000_000)?;
        config::check_range(
            "MAX_CONNECTIONS_PER_USER",
            self.max_connections_per_user,
            1..=1_000_000,
        )?;
        config::check_range(
            "MAX_CONNECTIONS_PER_IP",
            self.max_connections_per_ip,
            1..=10_000_000,
        )?;
        config::check_range(
            "INGRESS_BACKLOG_LIMIT",
            self.ingress_backlog_limit,
            100..=1_000_000_000,
        )?;
        config::check_range(
            "INGRESS_PARTITIONS",
            self.ingress_partitions,
            1..=chat_redis::keys::MAX_PARTITIONS,
        )?;
        config::check_range("INGRESS_MAX_WAIT_MS", self.ingress_max_wait_ms, 0..=600_000)?;
        config::check_range("INGRESS_LINGER_MS", self.ingress_linger_ms, 0..=100)?;
        config::check_range("SHUTDOWN_GRACE_MS", self.shutdown_grace_ms, 0..=60_000)?;
        config::check_range(
            "LOGIN_FAILURES_PER_CLIENT",
            self.login_failures_per_client,
            1..=1_000_000,
        )?;
        config::check_range(
            "LOGIN_FAILURES_PER_USER",
            self.login_failures_per_user,
            1..=1_000_000,
        )?;
        config::check_range(
            "LOGIN_FAILURES_PER_IP",
            self.login_failures_per_ip,
            1..=1_000_000,
        )?;
        config::check_range(
            "LOGIN_FAILURE_WINDOW_SECS",
            self.login_failure_window_secs,
            1..=86_400,
        )?;
        config::check_range(
            "REGISTRATIONS_PER_IP",
            self.registrations_per_ip,
            1..=1_000_000,
        )?;
        config::check_range("ROOMS_PER_USER", self.rooms_per_user, 1..=1_000_000)?;
        config::check_range("TICKETS_PER_USER", self.tickets_per_user, 1..=1_000_000)?;
        config::check_range(
            "MEMBERSHIP_CHANGES_PER_USER",
            self.membership_changes_per_user,
            1..=1_000_000,
        )?;
        config::check_range(
            "CREATION_WINDOW_SECS",
            self.creation_window_secs,
            1..=86_400,
        )?;
        Ok(())
    }
}

/// Which transports a gateway serves.
#[derive(Debug, Clone, Copy)]
pub struct Transports {
    pub websocket: bool,
    pub stream: bool,
    pub poll: bool,
}

impl Config {
    pub fn transports(&self) -> Transports {
        let names: Vec<&str> = self.transports.split(',').map(str::trim).collect();
        Transports {
            websocket: names.contains(&"websocket"),
            stream: names.contains(&"stream"),
            poll: names.contains(&"poll"),
        }
    }

    pub fn origins(&self) -> Vec<String> {
        self.allowed_origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect()
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}
