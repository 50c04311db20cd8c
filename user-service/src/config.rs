//! user-service settings: each a flag and an environment variable.

use std::net::SocketAddr;

use clap::Parser;
use common::{config, telemetry::LogFormat};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "user-service",
    version,
    about = "Users, rooms and memberships (internal gRPC)"
)]
pub struct Config {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Redis, where membership changes are announced to chat-service.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: String,
    /// Every Redis key and channel starts with this.
    #[arg(long, env = "REDIS_PREFIX", default_value = "chat:")]
    pub redis_prefix: String,
    /// HS256 secret shared with the gateways (at least 16 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50052")]
    pub listen_addr: SocketAddr,
    /// HTTP address of /healthz, /readyz and /metrics.
    #[arg(long, env = "OPS_ADDR", default_value = "0.0.0.0:9090")]
    pub ops_addr: SocketAddr,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 86_400)]
    pub token_ttl_secs: i64,
    /// Size of the PostgreSQL connection pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

impl config::ServiceConfig for Config {
    fn validate(&self) -> Result<(), config::ConfigError> {
        if !(self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(config::ConfigError::new(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        config::check_redis_url("REDIS_URL", &self.redis_url)?;
        config::check_prefix("REDIS_PREFIX", &self.redis_prefix)?;
        config::check_secret("JWT_SECRET", &self.jwt_secret)?;
        config::check_range("TOKEN_TTL_SECS", self.token_ttl_secs, 60..=30 * 86_400)?;
        config::check_range("DB_MAX_CONNECTIONS", self.db_max_connections, 1..=1_000)?;
        Ok(())
    }
}
