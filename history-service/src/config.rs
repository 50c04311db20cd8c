//! history-service settings: each a flag and an environment variable.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use service_kit::{config, service::ServiceArgs};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "history-service",
    version,
    about = "Message storage (public gRPC)"
)]
pub struct Config {
    #[command(flatten)]
    pub redis: chat_redis::config::RedisArgs,
    /// MongoDB connection string; the database is MONGODB_DATABASE.
    #[arg(long, env = "MONGODB_URI")]
    pub mongodb_uri: String,
    #[arg(long, env = "MONGODB_DATABASE", default_value = "chat")]
    pub mongodb_database: String,
    /// Public gRPC address: GetHistory and ListOffline for holders of a user's
    /// JWT (or the operator token), reflection and health.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50051")]
    pub listen_addr: SocketAddr,
    /// Internal gRPC address: every call, service token required. Only the
    /// gateways and chat-service should be able to reach it.
    #[arg(long, env = "INTERNAL_ADDR", default_value = "0.0.0.0:50061")]
    pub internal_addr: SocketAddr,
    #[command(flatten)]
    pub jwt: config::JwtSecretArg,
    #[command(flatten)]
    pub service_token: config::ServiceTokenArg,
    /// Operator credential that may read any conversation and offline queue on
    /// the public port (at least 32 bytes); unset, nobody has that power.
    #[arg(
        long,
        env = "OPERATOR_TOKEN",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub operator_token: service_kit::secret::Secret,
    /// File holding the operator token.
    #[arg(long, env = "OPERATOR_TOKEN_FILE")]
    pub operator_token_file: Option<PathBuf>,
    /// user-service's gRPC address, asked whether a user is a room's member.
    #[arg(long, env = "USER_SERVICE_URL")]
    pub user_service_url: String,
    /// Newest offline messages kept per user.
    #[arg(long, env = "OFFLINE_LIMIT", default_value_t = 100)]
    pub offline_limit: u32,
    /// An offline queue (and its dropped count) expires this long after its
    /// user was last connected or its first message since (seconds).
    #[arg(long, env = "OFFLINE_TTL_SECS", default_value_t = 30 * 86_400)]
    pub offline_ttl_secs: u64,
    /// Archived messages kept per conversation in the Redis recent window.
    #[arg(long, env = "RECENT_LIMIT", default_value_t = 500)]
    pub recent_limit: u32,
    /// Archive stream partitions: a conversation's messages always go to one
    /// of them, so each is one Redis Cluster slot; every instance's
    /// archiver works them all. Change it only on a drained archive
    /// (docs/scaling.md).
    #[arg(long, env = "ARCHIVE_PARTITIONS", default_value_t = 1)]
    pub archive_partitions: usize,
    /// Messages per MongoDB insert_many.
    #[arg(long, env = "ARCHIVE_BATCH", default_value_t = 500)]
    pub archive_batch: u32,
    /// This instance's name in the archive consumer group (default: host name).
    #[arg(long, env = "INSTANCE_ID", default_value_t = config::default_instance_id())]
    pub instance_id: String,
    /// Largest gRPC message accepted on the internal port (bytes); chat-service
    /// splits its Append calls to fit (its own GRPC_MAX_MESSAGE_BYTES).
    #[arg(long, env = "GRPC_MAX_MESSAGE_BYTES", default_value_t = 4 << 20)]
    pub grpc_max_message_bytes: usize,
    #[command(flatten)]
    pub service: ServiceArgs,
}

impl config::ServiceConfig for Config {
    fn resolve(&mut self) -> Result<(), config::ConfigError> {
        self.jwt.resolve()?;
        self.service_token.resolve()?;
        config::resolve_secret(
            "OPERATOR_TOKEN",
            "OPERATOR_TOKEN_FILE",
            &mut self.operator_token,
            self.operator_token_file.as_ref(),
        )
    }

    fn validate(&self) -> Result<(), config::ConfigError> {
        self.redis.validate()?;
        self.jwt.validate()?;
        self.service_token.validate()?;
        config::check_optional_secret(
            "OPERATOR_TOKEN",
            &self.operator_token,
            config::MIN_SERVICE_TOKEN,
        )?;
        config::check_http_url("USER_SERVICE_URL", &self.user_service_url)?;
        if self.internal_addr == self.listen_addr && self.listen_addr.port() != 0 {
            return Err(config::ConfigError::new(
                "INTERNAL_ADDR",
                "must differ from LISTEN_ADDR: the internal calls need their own listener",
            ));
        }
        if !(self.mongodb_uri.starts_with("mongodb://")
            || self.mongodb_uri.starts_with("mongodb+srv://"))
        {
            return Err(config::ConfigError::new(
                "MONGODB_URI",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        if self.mongodb_database.is_empty()
            || self.mongodb_database.len() > 63
            || self
                .mongodb_database
                .chars()
                .any(|c| "/\\. \"$".contains(c) || c.is_control())
        {
            return Err(config::ConfigError::new(
                "MONGODB_DATABASE",
                "1 to 63 characters, none of / \\ . space \" $",
            ));
        }
        config::check_range("OFFLINE_LIMIT", self.offline_limit, 1..=10_000)?;
        config::check_range("OFFLINE_TTL_SECS", self.offline_ttl_secs, 60..=365 * 86_400)?;
        config::check_range("RECENT_LIMIT", self.recent_limit, 1..=100_000)?;
        config::check_range(
            "ARCHIVE_PARTITIONS",
            self.archive_partitions,
            1..=chat_redis::keys::MAX_PARTITIONS,
        )?;
        config::check_range("ARCHIVE_BATCH", self.archive_batch, 1..=10_000)?;
        config::check_range(
            "GRPC_MAX_MESSAGE_BYTES",
            self.grpc_max_message_bytes,
            64 << 10..=256 << 20,
        )?;
        config::check_instance_name("INSTANCE_ID", &self.instance_id)?;
        Ok(())
    }
}
