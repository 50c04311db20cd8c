//! user-service settings: each a flag and an environment variable.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use service_kit::{config, service::ServiceArgs};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "user-service",
    version,
    about = "Users, rooms, memberships and sessions (internal gRPC)"
)]
pub struct Config {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: service_kit::secret::Secret,
    /// File holding the PostgreSQL password; it replaces the one in DATABASE_URL.
    #[arg(long, env = "DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,
    #[command(flatten)]
    pub redis: chat_redis::config::RedisArgs,
    #[command(flatten)]
    pub jwt: config::JwtSecretArg,
    #[command(flatten)]
    pub service_token: config::ServiceTokenArg,
    /// Password hashes computed at once; each holds 19 MiB while it runs, so
    /// this bounds the memory a login burst can take.
    #[arg(long, env = "HASH_CONCURRENCY", default_value_t = 2)]
    pub hash_concurrency: usize,
    /// Password checks that may wait for a hashing slot; beyond, requests are
    /// refused as busy rather than queued without bound.
    #[arg(long, env = "HASH_QUEUE", default_value_t = 512)]
    pub hash_queue: usize,
    /// gRPC listen address (internal: service token required).
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50052")]
    pub listen_addr: SocketAddr,
    /// Lifetime of access tokens, in seconds. A live socket is asked for a
    /// fresh one before its token expires; a revoked session's tokens are
    /// refused at once.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 900)]
    pub token_ttl_secs: i64,
    /// How long a session lives without a refresh, in seconds; every
    /// refresh starts it again.
    #[arg(long, env = "REFRESH_TTL_SECS", default_value_t = 30 * 86_400)]
    pub refresh_ttl_secs: i64,
    /// Live sessions per user; a login beyond it revokes the least recently
    /// seen one.
    #[arg(long, env = "MAX_SESSIONS_PER_USER", default_value_t = 50)]
    pub max_sessions_per_user: i64,
    /// Ingress stream partitions, as the gateways and chat-service have
    /// them: membership events go to their room's partition.
    #[arg(long, env = "INGRESS_PARTITIONS", default_value_t = 1)]
    pub ingress_partitions: usize,
    /// Whether joins, leaves, kicks, bans and role changes appear in their
    /// rooms' timelines as events (false: they are enforced, not shown).
    #[arg(long, env = "MEMBERSHIP_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub membership_events: bool,
    /// Size of the PostgreSQL connection pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    #[command(flatten)]
    pub service: ServiceArgs,
}

impl config::ServiceConfig for Config {
    fn resolve(&mut self) -> Result<(), config::ConfigError> {
        self.jwt.resolve()?;
        self.service_token.resolve()?;
        if let Some(path) = &self.database_password_file {
            let mut password = service_kit::secret::Secret::default();
            config::resolve_secret(
                "DATABASE_PASSWORD",
                "DATABASE_PASSWORD_FILE",
                &mut password,
                Some(path),
            )?;
            self.database_url =
                with_password(self.database_url.expose(), password.expose())?.into();
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), config::ConfigError> {
        let url = self.database_url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(config::ConfigError::new(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        self.redis.validate()?;
        self.jwt.validate()?;
        self.service_token.validate()?;
        config::check_range("HASH_CONCURRENCY", self.hash_concurrency, 1..=64)?;
        config::check_range("HASH_QUEUE", self.hash_queue, 0..=100_000)?;
        config::check_range("TOKEN_TTL_SECS", self.token_ttl_secs, 5..=86_400)?;
        config::check_range(
            "REFRESH_TTL_SECS",
            self.refresh_ttl_secs,
            self.token_ttl_secs..=365 * 86_400,
        )?;
        config::check_range(
            "MAX_SESSIONS_PER_USER",
            self.max_sessions_per_user,
            1..=1_000,
        )?;
        config::check_range("DB_MAX_CONNECTIONS", self.db_max_connections, 1..=1_000)?;
        config::check_range(
            "INGRESS_PARTITIONS",
            self.ingress_partitions,
            1..=chat_redis::keys::MAX_PARTITIONS,
        )?;
        Ok(())
    }
}

/// `url` with its password replaced by `password` (percent-encoded).
fn with_password(url: &str, password: &str) -> Result<String, config::ConfigError> {
    let bad = || config::ConfigError::new("DATABASE_URL", "cannot hold a password (no user@host)");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let (userinfo, host) = rest.split_once('@').ok_or_else(bad)?;
    let user = userinfo.split(':').next().unwrap_or_default();
    if user.is_empty() {
        return Err(bad());
    }
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(format!("{scheme}://{user}:{encoded}@{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_replaces_the_url_password() {
        assert_eq!(
            with_password("postgres://chat:old@db:5432/chat", "n3w/p@ss").unwrap(),
            "postgres://chat:n3w%2Fp%40ss@db:5432/chat"
        );
        assert_eq!(
            with_password("postgres://chat@db/chat", "x").unwrap(),
            "postgres://chat:x@db/chat"
        );
        assert!(with_password("postgres://db/chat", "x").is_err());
    }
}
