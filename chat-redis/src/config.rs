//! Where Redis is: the settings every service shares, as flags and
//! environment variables (flattened into each service's configuration).

use service_kit::config::ConfigError;

/// Where Redis is, shared by every service.
#[derive(clap::Args, Debug, Clone)]
pub struct RedisArgs {
    /// `redis://` or `rediss://` URL; with REDIS_CLUSTER, a comma-separated
    /// list of seed nodes (one is enough, more are tried in turn).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: String,
    /// Use the Redis Cluster client (Redis 7 or later, cluster mode enabled).
    #[arg(long, env = "REDIS_CLUSTER", default_value_t = false, action = clap::ArgAction::Set)]
    pub redis_cluster: bool,
    /// Every Redis key and channel starts with this.
    #[arg(long = "redis-prefix", env = "REDIS_PREFIX", default_value = "chat:")]
    pub prefix: String,
}

impl RedisArgs {
    pub fn new(url: impl Into<String>, cluster: bool) -> Self {
        Self {
            redis_url: url.into(),
            redis_cluster: cluster,
            prefix: "chat:".into(),
        }
    }

    pub fn endpoints(&self) -> crate::connection::Endpoints {
        crate::connection::Endpoints::new(&self.redis_url, self.redis_cluster)
    }

    /// Keys of the deployment: every Redis name starts with [`Self::prefix`].
    pub fn keys(&self) -> crate::keys::Keys {
        crate::keys::Keys::new(self.prefix.clone())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        service_kit::config::check_prefix("REDIS_PREFIX", &self.prefix)?;
        let endpoints = self.endpoints();
        if endpoints.urls.is_empty() {
            return Err(ConfigError::new("REDIS_URL", "is empty"));
        }
        if endpoints.urls.len() > 1 && !endpoints.cluster {
            return Err(ConfigError::new(
                "REDIS_URL",
                "several URLs are seed nodes of a cluster: set REDIS_CLUSTER=true",
            ));
        }
        for url in &endpoints.urls {
            check_redis_url("REDIS_URL", url)?;
        }
        Ok(())
    }
}

/// Checks a `redis://` or `rediss://` URL.
pub fn check_redis_url(name: &'static str, url: &str) -> Result<(), ConfigError> {
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| ConfigError::new(name, format!("not a Redis URL ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_redis_url("X", "redis://127.0.0.1:6379").is_ok());
        assert!(check_redis_url("X", "nope://x").is_err());
        let seeds = "redis://a:7000, redis://b:7001";
        assert!(RedisArgs::new(seeds, true).validate().is_ok());
        assert_eq!(RedisArgs::new(seeds, true).endpoints().urls.len(), 2);
        let e = RedisArgs::new(seeds, false).validate().unwrap_err();
        assert!(e.to_string().contains("REDIS_CLUSTER"), "{e}");
        assert!(RedisArgs::new("", true).validate().is_err());
    }
}
