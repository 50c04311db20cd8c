//! chat-service settings: each a flag and an environment variable.

use clap::Parser;
use service_kit::{config, service::ServiceArgs};

#[derive(Parser, Debug, Clone)]
#[command(name = "chat-service", version, about = "Ingress stream worker")]
pub struct Config {
    #[command(flatten)]
    pub redis: chat_redis::config::RedisArgs,
    /// user-service's gRPC address (internal).
    #[arg(long, env = "USER_SERVICE_URL")]
    pub user_service_url: String,
    /// history-service's internal gRPC address (its INTERNAL_ADDR).
    #[arg(long, env = "HISTORY_SERVICE_URL")]
    pub history_service_url: String,
    #[command(flatten)]
    pub service_token: config::ServiceTokenArg,
    /// This worker's stable consumer name in the group (default: host name).
    #[arg(long, env = "CONSUMER_NAME", default_value_t = config::default_instance_id())]
    pub consumer_name: String,
    /// Ingress stream partitions: a conversation's sends always go to one
    /// of them (its slot modulo the count), so each is one Redis Cluster
    /// slot. The same on every gateway and chat-service; change it only on
    /// a drained system (docs/scaling.md).
    #[arg(long, env = "INGRESS_PARTITIONS", default_value_t = 1)]
    pub ingress_partitions: usize,
    /// Entries read per XREADGROUP.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 200)]
    pub batch_size: u32,
    /// After a batch that fanned out widely (32 or more online recipients
    /// per message), a read that returns fewer than BATCH_SIZE entries waits
    /// this long and takes what arrived meanwhile into the same batch (ms;
    /// 0 = never). Big rooms then cost fewer deliveries and socket writes;
    /// DMs and small rooms are never delayed.
    #[arg(long, env = "BATCH_LINGER_MS", default_value_t = 3)]
    pub batch_linger_ms: u64,
    /// After any other batch (DMs, small rooms), a read that returns fewer
    /// than BATCH_SIZE entries waits this long for more (ms; 0 = never, the
    /// default). Trades up to this much latency for fewer, larger batches:
    /// for a CPU-bound deployment (bench/README.md: 2 ms cut the CPU per DM
    /// by a fifth on a saturated 2-core machine).
    #[arg(long, env = "NARROW_BATCH_LINGER_MS", default_value_t = 0)]
    pub narrow_batch_linger_ms: u64,
    /// Entries another consumer left pending this long are claimed (ms).
    #[arg(long, env = "CLAIM_IDLE_MS", default_value_t = 30_000)]
    pub claim_idle_ms: u64,
    /// Deliveries after which an entry goes to the dead-letter stream.
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u32,
    /// How long (sender, client_id) is remembered for dedup (seconds).
    #[arg(long, env = "DEDUP_TTL_SECS", default_value_t = 86_400)]
    pub dedup_ttl_secs: u64,
    /// How long after sending a message its sender may still edit it
    /// (seconds; 0 = always). Deletes have no window.
    #[arg(long, env = "EDIT_WINDOW_SECS", default_value_t = 86_400)]
    pub edit_window_secs: u64,
    /// The most DMs a user's conversation list keeps; the least recently
    /// active beyond it leave the list (their history stays).
    #[arg(long, env = "DM_LIST_LIMIT", default_value_t = 1000)]
    pub dm_list_limit: usize,
    /// Longest a room's member list is cached (ms). Membership versions make
    /// changes immediate; this bounds staleness if a version bump was lost.
    #[arg(long, env = "MEMBERSHIP_TTL_MS", default_value_t = 10_000)]
    pub membership_ttl_ms: u64,
    /// A gateway whose heartbeat is older than this is taken as dead (ms).
    #[arg(long, env = "GATEWAY_TTL_MS", default_value_t = chat_redis::presence::DEFAULT_GATEWAY_TTL_MS)]
    pub gateway_ttl_ms: u64,
    /// A worker that has failed on its pending entries this long without
    /// progress is reported unavailable on /readyz (ms).
    #[arg(long, env = "STALL_TIMEOUT_MS", default_value_t = 60_000)]
    pub stall_timeout_ms: u64,
    /// Largest gRPC message sent to history-service (bytes); bigger batches
    /// are split. Must not exceed history-service's GRPC_MAX_MESSAGE_BYTES.
    #[arg(long, env = "GRPC_MAX_MESSAGE_BYTES", default_value_t = 4 << 20)]
    pub grpc_max_message_bytes: usize,
    #[command(flatten)]
    pub service: ServiceArgs,
}

impl config::ServiceConfig for Config {
    fn resolve(&mut self) -> Result<(), config::ConfigError> {
        self.service_token.resolve()
    }

    fn validate(&self) -> Result<(), config::ConfigError> {
        self.service_token.validate()?;
        self.redis.validate()?;
        config::check_http_url("USER_SERVICE_URL", &self.user_service_url)?;
        config::check_http_url("HISTORY_SERVICE_URL", &self.history_service_url)?;
        config::check_instance_name("CONSUMER_NAME", &self.consumer_name)?;
        config::check_range(
            "INGRESS_PARTITIONS",
            self.ingress_partitions,
            1..=chat_redis::keys::MAX_PARTITIONS,
        )?;
        config::check_range("BATCH_SIZE", self.batch_size, 1..=5_000)?;
        config::check_range("BATCH_LINGER_MS", self.batch_linger_ms, 0..=100)?;
        config::check_range(
            "NARROW_BATCH_LINGER_MS",
            self.narrow_batch_linger_ms,
            0..=100,
        )?;
        config::check_range("CLAIM_IDLE_MS", self.claim_idle_ms, 1_000..=3_600_000)?;
        config::check_range("MAX_DELIVERIES", self.max_deliveries, 1..=1_000)?;
        config::check_range("STALL_TIMEOUT_MS", self.stall_timeout_ms, 1_000..=3_600_000)?;
        config::check_range(
            "GRPC_MAX_MESSAGE_BYTES",
            self.grpc_max_message_bytes,
            64 << 10..=256 << 20,
        )?;
        config::check_range("DEDUP_TTL_SECS", self.dedup_ttl_secs, 60..=30 * 86_400)?;
        config::check_range("EDIT_WINDOW_SECS", self.edit_window_secs, 0..=365 * 86_400)?;
        config::check_range("DM_LIST_LIMIT", self.dm_list_limit as u64, 1..=100_000)?;
        config::check_range("MEMBERSHIP_TTL_MS", self.membership_ttl_ms, 0..=3_600_000)?;
        // Gateways beat every 5 s: a shorter window would see live ones as dead.
        config::check_range("GATEWAY_TTL_MS", self.gateway_ttl_ms, 10_000..=600_000)?;
        Ok(())
    }
}
