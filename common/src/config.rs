//! Startup configuration: every setting is a clap flag with an env var. A missing
//! or invalid setting prints one line naming it and exits with code 2.

use clap::Parser;

/// Exit code for bad configuration, as design.md §6 fixes it.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// A configuration value that failed validation after parsing.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &'static str, reason: impl Into<String>) -> Self {
        Self {
            name,
            reason: reason.into(),
        }
    }
}

/// A service's settings: parsed from flags and environment, then validated.
pub trait ServiceConfig: Parser {
    /// Checks what clap cannot: ranges, URL forms, cross-field rules.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Parses and validates, or prints one line naming the setting and exits 2.
    fn load() -> Self {
        let config: Self = parse_or_exit();
        if let Err(e) = config.validate() {
            exit_invalid(&e);
        }
        config
    }
}

/// Parses `T` from the command line and environment. `--help` and `--version`
/// print and exit 0; any error prints one line and exits 2.
pub fn parse_or_exit<T: Parser>() -> T {
    match T::try_parse() {
        Ok(config) => config,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                std::process::exit(0);
            }
            eprintln!("{}", one_line(&err.to_string()));
            std::process::exit(EXIT_BAD_CONFIG);
        }
    }
}

/// Prints a validation error as one line and exits 2.
pub fn exit_invalid(err: &ConfigError) -> ! {
    eprintln!("error: {err}");
    std::process::exit(EXIT_BAD_CONFIG);
}

/// Folds clap's multi-line message (which ends in a usage block) into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|line| !line.starts_with("Usage:"))
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks that a numeric setting lies in `range`.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    name: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            name,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// Checks an instance name (consumer, gateway id): 1 to 128 characters, no
/// spaces or braces (it becomes part of Redis keys and channels).
pub fn check_instance_name(name: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty()
        || value.len() > 128
        || value
            .chars()
            .any(|c| c.is_whitespace() || c == '{' || c == '}')
    {
        return Err(ConfigError::new(
            name,
            "1 to 128 characters, no spaces or braces",
        ));
    }
    Ok(())
}

/// Checks a `redis://` or `rediss://` URL.
pub fn check_redis_url(name: &'static str, url: &str) -> Result<(), ConfigError> {
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| ConfigError::new(name, format!("not a Redis URL ({e})")))
}

/// Checks an `http://host:port` URL of an upstream gRPC service.
pub fn check_http_url(name: &'static str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::new(name, "must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ConfigError::new(name, "has no host"));
    }
    Ok(())
}

/// Checks a JWT secret is long enough to resist brute force.
pub fn check_secret(name: &'static str, secret: &str) -> Result<(), ConfigError> {
    if secret.len() < 16 {
        return Err(ConfigError::new(name, "must be at least 16 bytes"));
    }
    Ok(())
}

/// Checks a Redis key prefix: printable, no spaces or braces (braces are hash tags).
pub fn check_prefix(name: &'static str, prefix: &str) -> Result<(), ConfigError> {
    if prefix.len() > 64
        || prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}')
    {
        return Err(ConfigError::new(
            name,
            "at most 64 characters, no spaces, control characters or braces",
        ));
    }
    Ok(())
}

/// The default gateway/consumer identity: the host name.
pub fn default_instance_id() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_fold_into_one_line() {
        let msg = "error: the following required arguments were not provided:\n  --redis-url <REDIS_URL>\n\nUsage: gateway --redis-url <REDIS_URL>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(msg),
            "error: the following required arguments were not provided: --redis-url <REDIS_URL>"
        );
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_http_url("X", "http://localhost:50051").is_ok());
        assert!(check_http_url("X", "localhost:50051").is_err());
        assert!(check_http_url("X", "http://").is_err());
        assert!(check_redis_url("X", "redis://127.0.0.1:6379").is_ok());
        assert!(check_redis_url("X", "nope://x").is_err());
    }

    #[test]
    fn ranges_and_instance_names_are_checked() {
        assert!(check_range("N", 5, 1..=10).is_ok());
        let e = check_range("N", 0, 1..=10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: N: must be between 1 and 10"
        );
        assert!(check_instance_name("I", "gw-1").is_ok());
        assert!(check_instance_name("I", "").is_err());
        assert!(check_instance_name("I", "a b").is_err());
        assert!(check_instance_name("I", "a{b}").is_err());
    }

    #[test]
    fn prefixes_and_secrets_are_checked() {
        assert!(check_prefix("P", "chat:").is_ok());
        assert!(check_prefix("P", "").is_ok());
        assert!(check_prefix("P", "a b").is_err());
        assert!(check_prefix("P", "a{b").is_err());
        assert!(check_secret("S", "short").is_err());
        assert!(check_secret("S", "0123456789abcdef").is_ok());
    }
}
