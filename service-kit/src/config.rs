//! Startup configuration: every setting is a clap flag with an env var. A missing
//! or invalid setting prints one line naming it and exits with code 2.

use std::path::PathBuf;

use clap::Parser;

use crate::secret::Secret;

/// Exit code for bad configuration.
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
    /// Reads what the settings point to, such as secrets given as `*_FILE`.
    fn resolve(&mut self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Checks what clap cannot: ranges, URL forms, cross-field rules.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Parses, resolves and validates, or prints one line naming the setting
    /// and exits 2.
    fn load() -> Self {
        let mut config: Self = parse_or_exit();
        if let Err(e) = config.resolve().and_then(|()| config.validate()) {
            exit_invalid(&e);
        }
        config
    }
}

/// A secret given either inline (`NAME`) or as a file (`NAME_FILE`, the Docker
/// and Kubernetes secrets convention). The file's content, less a trailing
/// newline, becomes the value. Setting both is refused: which one wins would
/// be a guess.
pub fn resolve_secret(
    name: &'static str,
    file_name: &'static str,
    value: &mut Secret,
    file: Option<&PathBuf>,
) -> Result<(), ConfigError> {
    let Some(path) = file else {
        return Ok(());
    };
    if !value.is_empty() {
        return Err(ConfigError::new(
            name,
            format!("set {name} or {file_name}, not both"),
        ));
    }
    let content = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(file_name, format!("cannot read {}: {e}", path.display())))?;
    *value = Secret::new(content.trim_end_matches(['\n', '\r']));
    if value.is_empty() {
        return Err(ConfigError::new(
            file_name,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(())
}

/// Checks a required secret of at least `min` bytes of printable ASCII (it
/// travels in headers), naming both ways to give it when it is missing.
pub fn check_required_secret(
    name: &'static str,
    file_name: &'static str,
    value: &Secret,
    min: usize,
) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::new(
            name,
            format!("required (or {file_name}); there is no default"),
        ));
    }
    check_secret_len(name, value.expose(), min)
}

fn check_secret_len(name: &'static str, value: &str, min: usize) -> Result<(), ConfigError> {
    if value.len() < min {
        return Err(ConfigError::new(
            name,
            format!("must be at least {min} bytes"),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            name,
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// Checks an optional secret: empty means off, otherwise as a required one.
pub fn check_optional_secret(
    name: &'static str,
    value: &Secret,
    min: usize,
) -> Result<(), ConfigError> {
    if value.is_empty() {
        Ok(())
    } else {
        check_secret_len(name, value.expose(), min)
    }
}

/// The JWT secret, shared by user-service (signs) and the services that verify
/// user tokens: `JWT_SECRET` or `JWT_SECRET_FILE`, no default.
#[derive(clap::Args, Debug, Clone)]
pub struct JwtSecretArg {
    /// HS256 secret for user tokens (at least 16 bytes); or JWT_SECRET_FILE.
    #[arg(
        long = "jwt-secret",
        env = "JWT_SECRET",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub jwt_secret: Secret,
    /// File holding the JWT secret (Docker/Kubernetes secrets).
    #[arg(long = "jwt-secret-file", env = "JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
}

impl JwtSecretArg {
    pub fn inline(secret: &str) -> Self {
        Self {
            jwt_secret: Secret::new(secret),
            jwt_secret_file: None,
        }
    }

    pub fn resolve(&mut self) -> Result<(), ConfigError> {
        resolve_secret(
            "JWT_SECRET",
            "JWT_SECRET_FILE",
            &mut self.jwt_secret,
            self.jwt_secret_file.as_ref(),
        )
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_required_secret(
            "JWT_SECRET",
            "JWT_SECRET_FILE",
            &self.jwt_secret,
            MIN_JWT_SECRET,
        )
    }

    pub fn get(&self) -> &Secret {
        &self.jwt_secret
    }
}

/// The service token every internal gRPC call carries and every internal
/// listener demands: `SERVICE_TOKEN` or `SERVICE_TOKEN_FILE`, no default.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceTokenArg {
    /// Shared secret of internal gRPC calls (at least 32 bytes); or SERVICE_TOKEN_FILE.
    #[arg(
        long = "service-token",
        env = "SERVICE_TOKEN",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub service_token: Secret,
    /// File holding the service token (Docker/Kubernetes secrets).
    #[arg(long = "service-token-file", env = "SERVICE_TOKEN_FILE")]
    pub service_token_file: Option<PathBuf>,
}

impl ServiceTokenArg {
    pub fn inline(token: &str) -> Self {
        Self {
            service_token: Secret::new(token),
            service_token_file: None,
        }
    }

    pub fn resolve(&mut self) -> Result<(), ConfigError> {
        resolve_secret(
            "SERVICE_TOKEN",
            "SERVICE_TOKEN_FILE",
            &mut self.service_token,
            self.service_token_file.as_ref(),
        )
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_required_secret(
            "SERVICE_TOKEN",
            "SERVICE_TOKEN_FILE",
            &self.service_token,
            MIN_SERVICE_TOKEN,
        )
    }

    pub fn get(&self) -> &Secret {
        &self.service_token
    }
}

/// The service token's least length: it is the only thing between a reachable
/// internal port and a forged message.
pub const MIN_SERVICE_TOKEN: usize = 32;
/// The JWT secret's least length.
pub const MIN_JWT_SECRET: usize = 16;

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

/// A Redis error at startup that is the configuration's fault (a single-node
/// REDIS_URL pointing at a cluster node) exits 2 with one line naming
/// REDIS_URL; any other is given back, for the caller to report.
pub fn exit_if_bad_redis_config(err: redis::RedisError) -> redis::RedisError {
    if err.kind() == redis::ErrorKind::InvalidClientConfig {
        exit_invalid(&ConfigError::new("REDIS_URL", err.to_string()));
    }
    err
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
        let s = |v: &str| Secret::new(v);
        assert!(check_required_secret("S", "S_FILE", &s("short"), 16).is_err());
        assert!(check_required_secret("S", "S_FILE", &s(""), 16).is_err());
        assert!(check_required_secret("S", "S_FILE", &s("0123456789abcdef"), 16).is_ok());
        assert!(check_required_secret("S", "S_FILE", &s("0123456789 abcdef"), 16).is_err());
        assert!(check_optional_secret("S", &s(""), 16).is_ok());
        assert!(check_optional_secret("S", &s("short"), 16).is_err());
    }

    #[test]
    fn secrets_come_from_files_without_their_newline() {
        let dir = std::env::temp_dir().join(format!("secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwt");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let mut value = Secret::default();
        resolve_secret("S", "S_FILE", &mut value, Some(&path)).unwrap();
        assert_eq!(value.expose(), "0123456789abcdef0123");

        let mut both = Secret::new("inline");
        let e = resolve_secret("S", "S_FILE", &mut both, Some(&path)).unwrap_err();
        assert_eq!(e.name, "S");
        let mut missing = Secret::default();
        let e = resolve_secret("S", "S_FILE", &mut missing, Some(&dir.join("nope"))).unwrap_err();
        assert_eq!(e.name, "S_FILE");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
