//! chat-service settings: each a flag and an environment variable.

use std::net::SocketAddr;

use clap::Parser;
use common::{config, telemetry::LogFormat};

#[derive(Parser, Debug, Clone)]
#[command(name = "chat-service", version, about = "Ingress stream worker")]
pub struct Config {
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: String,
    /// Every Redis key and channel starts with this.
    #[arg(long, env = "REDIS_PREFIX", default_value = "chat:")]
    pub redis_prefix: String,
    #[arg(long, env = "USER_SERVICE_URL")]
    pub user_service_url: String,
    #[arg(long, env = "HISTORY_SERVICE_URL")]
    pub history_service_url: String,
    /// HTTP address of /healthz, /readyz and /metrics.
    #[arg(long, env = "OPS_ADDR", default_value = "0.0.0.0:9090")]
    pub ops_addr: SocketAddr,
    /// This worker's stable consumer name in the group (default: host name).
    #[arg(long, env = "CONSUMER_NAME", default_value_t = config::default_instance_id())]
    pub consumer_name: String,
    /// Entries read per XREADGROUP.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 200)]
    pub batch_size: u32,
    /// Entries another consumer left pending this long are claimed (ms).
    #[arg(long, env = "CLAIM_IDLE_MS", default_value_t = 30_000)]
    pub claim_idle_ms: u64,
    /// Deliveries after which an entry goes to the dead-letter stream.
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u32,
    /// How long (sender, client_id) is remembered for dedup (seconds).
    #[arg(long, env = "DEDUP_TTL_SECS", default_value_t = 86_400)]
    pub dedup_ttl_secs: u64,
    /// Longest a room's member list is cached (ms). Membership versions make
    /// changes immediate; this bounds staleness if a version bump was lost.
    #[arg(long, env = "MEMBERSHIP_TTL_MS", default_value_t = 10_000)]
    pub membership_ttl_ms: u64,
    /// A gateway whose heartbeat is older than this is taken as dead (ms).
    #[arg(long, env = "GATEWAY_TTL_MS", default_value_t = 15_000)]
    pub gateway_ttl_ms: u64,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

impl Config {
    /// Parses and validates, or prints one line and exits 2.
    pub fn load() -> Self {
        let config: Self = config::parse_or_exit();
        if let Err(e) = config.validate() {
            config::exit_invalid(&e);
        }
        config
    }

    pub fn validate(&self) -> Result<(), config::ConfigError> {
        config::check_redis_url("REDIS_URL", &self.redis_url)?;
        config::check_prefix("REDIS_PREFIX", &self.redis_prefix)?;
        config::check_http_url("USER_SERVICE_URL", &self.user_service_url)?;
        config::check_http_url("HISTORY_SERVICE_URL", &self.history_service_url)?;
        if self.consumer_name.is_empty() || self.consumer_name.chars().any(char::is_whitespace) {
            return Err(config::ConfigError::new(
                "CONSUMER_NAME",
                "must be non-empty without spaces",
            ));
        }
        if !(1..=5_000).contains(&self.batch_size) {
            return Err(config::ConfigError::new(
                "BATCH_SIZE",
                "must be between 1 and 5000",
            ));
        }
        if self.claim_idle_ms < 1_000 {
            return Err(config::ConfigError::new(
                "CLAIM_IDLE_MS",
                "must be at least 1000",
            ));
        }
        if self.max_deliveries == 0 {
            return Err(config::ConfigError::new(
                "MAX_DELIVERIES",
                "must be at least 1",
            ));
        }
        if self.dedup_ttl_secs < 60 {
            return Err(config::ConfigError::new(
                "DEDUP_TTL_SECS",
                "must be at least 60",
            ));
        }
        if self.gateway_ttl_ms < 1_000 {
            return Err(config::ConfigError::new(
                "GATEWAY_TTL_MS",
                "must be at least 1000",
            ));
        }
        Ok(())
    }
}
